"""What falls on one detector field: star, speckles, waffle spots, companions.

A `FieldModel` holds what is fixed for a sequence in one field (or one IFS
channel): the optics, the star centre, the AO halo maps. Its methods return
images in ADU/s (before flat field, background and noise), so the costly parts
are computed once and each frame only adds its speckle evolution and its
companions.
"""
import dataclasses

import numpy as np

from . import optics

_ARCSEC_RAD = np.pi / 180.0 / 3600.0


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """Fixed description of one field (IRDIS half) or IFS channel.

    Attributes
    ----------
    wavelength_um : float
    pixscale_arcsec : float
    anamorphism : (float, float)
        Correction factors (x, y): one raw pixel covers ``pixscale * factor`` on the sky.
    shape : (int, int)
        Image (ny, nx).
    center_xy : (float, float)
        Star position (0-based pixels).
    star_flux_adu_s : float
        Total flux of the unocculted star (ADU/s, no ND).
    mask_radius_arcsec : float
        Coronagraph focal mask radius (0: none).
    stamp_size : int or None
        Side of the region where the coherent image is computed (None: whole image).
    """

    wavelength_um: float
    pixscale_arcsec: float
    anamorphism: tuple
    shape: tuple
    center_xy: tuple
    star_flux_adu_s: float
    mask_radius_arcsec: float
    stamp_size: int = None

    @property
    def pix_rad_xy(self):
        """Sky angle (rad) of one raw pixel along x and y."""
        p = self.pixscale_arcsec * _ARCSEC_RAD
        return (p * self.anamorphism[0], p * self.anamorphism[1])


def companion_offset_px(sep_arcsec, pa_deg, derot_deg, pixscale_arcsec, anamorphism):
    """Raw-frame offset (dx, dy) in pixels of a source at (sep, PA) from the star.

    The detector angle is ``alpha = PA - theta``; the raw frame is compressed
    by the anamorphism factors (SPHERE-DATA.md, Geometry).

    Parameters
    ----------
    sep_arcsec, pa_deg : float
        Separation and position angle (east of north) on the sky.
    derot_deg : float or `numpy.ndarray`
        Derotation angle theta of the frame(s).
    pixscale_arcsec : float
    anamorphism : (float, float)

    Returns
    -------
    dx, dy : float or `numpy.ndarray`
    """
    r = sep_arcsec / pixscale_arcsec
    alpha = np.radians(pa_deg - np.asarray(derot_deg))
    return -r * np.sin(alpha) / anamorphism[0], r * np.cos(alpha) / anamorphism[1]


def _add_stamp(image, stamp, x0, y0):
    """Add ``stamp`` into ``image`` with its [0, 0] pixel at (x0, y0), clipping at edges."""
    ny, nx = stamp.shape
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + ny, image.shape[0]), min(x0 + nx, image.shape[1])
    if ye > ys and xe > xs:
        image[ys:ye, xs:xe] += stamp[ys - y0:ye - y0, xs - x0:xe - x0]


class FieldModel:
    """One field's optics and star, with the static parts computed once.

    Parameters
    ----------
    spec : `FieldSpec`
    pupil : `numpy.ndarray`, shape (n, n)
    static_opd_nm : `numpy.ndarray`, shape (n, n)
        Quasi-static aberrations of this field (fixed in pupil tracking).
    ao : `optics.AOConditions`
    """

    def __init__(self, spec, pupil, static_opd_nm, ao):
        self.spec = spec
        self.pupil = pupil
        self.static_opd_nm = static_opd_nm
        self.ao = ao
        self.strehl = optics.strehl_ratio(spec.wavelength_um, ao)
        ny, nx = spec.shape
        y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
        dx, dy = x - spec.center_xy[0], y - spec.center_xy[1]
        halo = optics.halo_image(dx, dy, spec.wavelength_um, spec.pix_rad_xy, ao)
        r_arcsec = np.hypot(dx * spec.anamorphism[0], dy * spec.anamorphism[1]) * spec.pixscale_arcsec
        self._halo = halo * np.float32(spec.star_flux_adu_s)
        self._halo_coro = self._halo * optics.mask_transmission(r_arcsec, spec.mask_radius_arcsec)
        self._mask_r_arcsec = r_arcsec
        size = spec.stamp_size
        if size is None:
            self._origin = (0, 0)
            self._stamp_shape = spec.shape
            self._taper = np.float32(1.0)
        else:
            from scipy.signal.windows import tukey

            self._origin = (int(round(spec.center_xy[0])) - size // 2,
                            int(round(spec.center_xy[1])) - size // 2)
            self._stamp_shape = (size, size)
            w = tukey(size, alpha=0.2).astype(np.float32)
            self._taper = np.outer(w, w)
        self._mft = optics.mft_matrices(
            pupil.shape[0], spec.wavelength_um, spec.pix_rad_xy, self._stamp_shape,
            (spec.center_xy[0] - self._origin[0], spec.center_xy[1] - self._origin[1]))
        self._unocc = self._coherent(static_opd_nm, coronagraph=False)

    def _coherent(self, opd_nm, coronagraph):
        """Star's coherent image (ADU/s) on the stamp, AO Strehl applied, edges tapered."""
        s = self.spec
        cx = s.center_xy[0] - self._origin[0]
        cy = s.center_xy[1] - self._origin[1]
        img = optics.coherent_image(self.pupil, opd_nm, s.wavelength_um, s.pix_rad_xy,
                                    self._stamp_shape, (cx, cy), coronagraph=coronagraph,
                                    matrices=self._mft)
        return img * np.float32(self.strehl * s.star_flux_adu_s) * self._taper

    def star(self, coronagraph, extra_opd_nm=None):
        """Image of the star (ADU/s, no ND).

        Parameters
        ----------
        coronagraph : bool
            Coronagraphic (OBJECT, CENTER) or unocculted (FLUX, acquisition) image.
        extra_opd_nm : `numpy.ndarray`, shape (n, n), optional
            Frame-to-frame aberration change and/or waffle pattern.

        Returns
        -------
        image : `numpy.ndarray`, shape ``spec.shape``, float32
        """
        if not coronagraph and extra_opd_nm is None:
            coh = self._unocc
        else:
            opd = self.static_opd_nm if extra_opd_nm is None else self.static_opd_nm + extra_opd_nm
            coh = self._coherent(opd, coronagraph)
        image = (self._halo_coro if coronagraph else self._halo).copy()
        _add_stamp(image, coh, *self._origin)
        return image

    def add_source(self, image, dx_pix, dy_pix, flux_adu_s, stamp_size=64):
        """Add an off-axis point source (e.g. a companion) to ``image`` in place.

        Parameters
        ----------
        image : `numpy.ndarray`, shape ``spec.shape``
        dx_pix, dy_pix : float
            Offset from the star (raw pixels).
        flux_adu_s : float
            Total flux of the source (ADU/s).
        stamp_size : int
            Side of the computed stamp (pixels).
        """
        s = self.spec
        x, y = s.center_xy[0] + dx_pix, s.center_xy[1] + dy_pix
        x0, y0 = int(round(x)) - stamp_size // 2, int(round(y)) - stamp_size // 2
        cx, cy = x - x0, y - y0
        coh = optics.coherent_image(self.pupil, self.static_opd_nm, s.wavelength_um,
                                    s.pix_rad_xy, (stamp_size, stamp_size), (cx, cy))
        yy, xx = np.mgrid[0:stamp_size, 0:stamp_size]
        halo = optics.halo_image(xx - cx, yy - cy, s.wavelength_um, s.pix_rad_xy, self.ao)
        r = np.hypot(dx_pix * s.anamorphism[0], dy_pix * s.anamorphism[1]) * s.pixscale_arcsec
        mask = float(optics.mask_transmission(r, s.mask_radius_arcsec))
        stamp = (self.strehl * coh + halo) * np.float32(flux_adu_s * mask)
        _add_stamp(image, stamp, x0, y0)
