"""Light reaching the IRDIS detector for one frame (ADU/s, before the flat)."""
import numpy as np

from . import instrument as ins
from .detector import BACKGROUND_ADU_S
from .scene import FieldModel, FieldSpec, companion_offset_px

#: FLAT,LAMP illumination (ADU/s) of the left and right fields.
LAMP_ADU_S = (4000.0, 3800.0)


class IrdisScene:
    """Both IRDIS fields of one sequence.

    Parameters
    ----------
    sky : `sky.SequenceSky`
    coronagraph : str
        ``INS COMB ICOR`` of the sequence.
    pupil : `numpy.ndarray`, shape (n, n)
    static_opd_nm : dict of str to `numpy.ndarray`
        Quasi-static aberrations per field ('left', 'right').
    """

    def __init__(self, sky, coronagraph, pupil, static_opd_nm):
        self.sky = sky
        self.fields = {}
        for f, lam in zip(sky.fields, sky.wavelengths_um):
            spec = FieldSpec(wavelength_um=lam, pixscale_arcsec=ins.IRDIS_PIXSCALE_ARCSEC,
                             anamorphism=ins.IRDIS_ANAMORPHISM, shape=(ins.FIELD_SIZE,) * 2,
                             center_xy=sky.centers_xy[f], star_flux_adu_s=sky.star_flux_adu_s[f],
                             mask_radius_arcsec=ins.CORONAGRAPH_RADIUS_ARCSEC[coronagraph],
                             stamp_size=320)
            self.fields[f] = FieldModel(spec, pupil, static_opd_nm[f], sky.ao)

    def light(self, kind, derot_deg, nd_transmission, extra_opd_nm=None):
        """Star and companions in both fields.

        Parameters
        ----------
        kind : str
            'object' or 'center' (coronagraphic), 'flux' or 'acq' (unocculted).
        derot_deg : float
            Derotation angle theta of the frame (places the companions).
        nd_transmission : float
        extra_opd_nm : `numpy.ndarray`, optional
            Frame-to-frame aberrations (+ waffle for CENTER frames).

        Returns
        -------
        light : `numpy.ndarray`, shape (1024, 2048), float32
            ADU/s, without background.
        """
        coro = kind in ("object", "center")
        out = np.empty(ins.IRDIS_SHAPE, dtype=np.float32)
        for i, (f, model) in enumerate(self.fields.items()):
            img = model.star(coro, extra_opd_nm if coro else None)
            for comp in self.sky.companions:
                dx, dy = companion_offset_px(comp.sep_arcsec, comp.pa_deg, derot_deg,
                                             ins.IRDIS_PIXSCALE_ARCSEC, ins.IRDIS_ANAMORPHISM)
                model.add_source(img, dx, dy, comp.contrast[i] * model.spec.star_flux_adu_s)
            out[:, i * ins.FIELD_SIZE:(i + 1) * ins.FIELD_SIZE] = img * np.float32(nd_transmission)
        return out


def background_adu_s(iflt):
    """Thermal and sky background (ADU/s/pixel) through filter combination ``iflt``."""
    return BACKGROUND_ADU_S[iflt]


def lamp_light():
    """FLAT,LAMP illumination (ADU/s), shape (1024, 2048), float32."""
    out = np.empty(ins.IRDIS_SHAPE, dtype=np.float32)
    out[:, :ins.FIELD_SIZE] = LAMP_ADU_S[0]
    out[:, ins.FIELD_SIZE:] = LAMP_ADU_S[1]
    return out
