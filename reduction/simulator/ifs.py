"""IFS cubes as delivered by ``sph_ifs_science_dr``: 39 channels x 291 x 291.

The raw lenslet spectra are not simulated: each channel is the image of the
star at that wavelength (speckles scale with lambda), calibrated, background
subtracted, in ADU per DIT, with photon and read noise.
"""
import numpy as np

from . import instrument as ins
from .scene import FieldModel, FieldSpec, companion_offset_px

IFS_GAIN_E_ADU = 1.8
IFS_READ_NOISE_ADU = 2.0


class IfsScene:
    """The 39 channels of one IFS sequence.

    Parameters
    ----------
    sky : `sky.SequenceSky`
        With the single field 'cube' and one wavelength per channel.
    coronagraph : str
    pupil : `numpy.ndarray`, shape (n, n)
    static_opd_nm : `numpy.ndarray`, shape (n, n)
    """

    def __init__(self, sky, coronagraph, pupil, static_opd_nm):
        self.sky = sky
        size = ins.IFS_CUBE_SIZE
        self.channels = [
            FieldModel(FieldSpec(wavelength_um=lam, pixscale_arcsec=ins.IFS_PIXSCALE_ARCSEC,
                                 anamorphism=ins.IFS_ANAMORPHISM, shape=(size, size),
                                 center_xy=sky.centers_xy["cube"], star_flux_adu_s=flux,
                                 mask_radius_arcsec=ins.CORONAGRAPH_RADIUS_ARCSEC[coronagraph]),
                       pupil, static_opd_nm, sky.ao)
            for lam, flux in zip(sky.wavelengths_um, sky.star_flux_adu_s["cube"])]

    def cube(self, kind, derot_deg, nd_transmission, dit_s, rng, extra_opd_nm=None):
        """One reduced cube.

        Parameters
        ----------
        kind : str
            'object', 'center' or 'flux'.
        derot_deg : float
            Derotation angle theta (IFS offset included).
        nd_transmission : float
        dit_s : float
        rng : `numpy.random.Generator`
            Noise.
        extra_opd_nm : `numpy.ndarray`, optional

        Returns
        -------
        cube : `numpy.ndarray`, shape (39, 291, 291), float32
            ADU per DIT.
        """
        coro = kind in ("object", "center")
        out = np.empty((len(self.channels),) + (ins.IFS_CUBE_SIZE,) * 2, dtype=np.float32)
        for k, model in enumerate(self.channels):
            img = model.star(coro, extra_opd_nm if coro else None)
            for comp in self.sky.companions:
                dx, dy = companion_offset_px(comp.sep_arcsec, comp.pa_deg, derot_deg,
                                             ins.IFS_PIXSCALE_ARCSEC, ins.IFS_ANAMORPHISM)
                model.add_source(img, dx, dy, comp.contrast[k] * model.spec.star_flux_adu_s, stamp_size=48)
            out[k] = img * np.float32(nd_transmission * dit_s)
        sigma = np.sqrt(np.maximum(out, 0.0) / IFS_GAIN_E_ADU + IFS_READ_NOISE_ADU ** 2)
        out += sigma * rng.standard_normal(out.shape, dtype=np.float32)
        return out
