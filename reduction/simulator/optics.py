"""Telescope, AO and coronagraph optics: pupil plane to focal plane.

Images are computed with a matrix Fourier transform (MFT, Soummer et al. 2007,
Opt. Express 15, 15935) rather than a zero-padded FFT: it samples the focal
plane directly at the detector's pixel scale (with its anamorphism) at any
wavelength and on any sub-pixel centre, which an FFT grid cannot do.

The long-exposure image of a star is ``S * |E|**2 + (1 - S) * H`` where ``E`` is
the coherent field of the pupil with its static aberrations (the quasi-static
speckles), ``S = exp(-sigma**2)`` the Strehl ratio of the AO residuals and ``H``
the AO residual halo, proportional to the residual phase power spectrum
(von Karman turbulence, reduced by the servo-lag factor inside the square
controlled region of the 40 x 40 actuator deformable mirror). The coronagraph is
ideal (Sivaramakrishnan & Lloyd 2005): the pupil's coherent field is removed,
and the focal mask attenuates the halo near the star.

Intensities are fractions of the star's total flux per pixel.
"""
import dataclasses
import functools

import numpy as np

from . import instrument as ins

_ARCSEC_RAD = np.pi / 180.0 / 3600.0


@dataclasses.dataclass(frozen=True)
class AOConditions:
    """Atmosphere and adaptive optics during a sequence.

    Attributes
    ----------
    seeing_arcsec : float
        Seeing FWHM at 500 nm (arcsec).
    tau0_s : float
        Coherence time (s); the servo-lag residual grows as tau0**(-5/3).
    outer_scale_m : float
        Von Karman outer scale (m).
    """

    seeing_arcsec: float = 0.8
    tau0_s: float = 0.005
    outer_scale_m: float = 25.0

    def r0_m(self, wavelength_um):
        """Fried parameter (m) at ``wavelength_um``."""
        r0_500 = 0.98 * 0.5e-6 / (self.seeing_arcsec * _ARCSEC_RAD)
        return r0_500 * (wavelength_um / 0.5) ** 1.2

    @property
    def servo_factor(self):
        """Residual fraction of the turbulent PSD inside the controlled region."""
        return 1.5e-3 * (0.005 / self.tau0_s) ** (5.0 / 3.0)


def vlt_pupil(n_pix, supersample=4):
    """VLT UT pupil (8 m, 14 % central obstruction, four spiders).

    Parameters
    ----------
    n_pix : int
        Pupil diameter in pixels (the array is n_pix x n_pix).
    supersample : int
        Sub-pixels per pixel and axis, to give edge pixels grey values.

    Returns
    -------
    pupil : `numpy.ndarray`, shape (n_pix, n_pix), float32
        Transmission in [0, 1]; pixel size ``PUPIL_DIAMETER_M / n_pix`` m.
    """
    n_sub = n_pix * supersample
    dx = ins.PUPIL_DIAMETER_M / n_sub
    c = (np.arange(n_sub) - (n_sub - 1) / 2.0) * dx
    x, y = np.meshgrid(c, c)
    r = np.hypot(x, y)
    radius = ins.PUPIL_DIAMETER_M / 2.0
    clear = (r <= radius) & (r >= radius * ins.CENTRAL_OBSCURATION)
    for ang in np.radians(ins.SPIDER_ANGLES_DEG):
        along = x * np.cos(ang) + y * np.sin(ang)
        across = -x * np.sin(ang) + y * np.cos(ang)
        clear &= ~((along > 0) & (np.abs(across) < ins.SPIDER_WIDTH_M / 2.0))
    return clear.reshape(n_pix, supersample, n_pix, supersample).mean(axis=(1, 3)).astype(np.float32)


def power_law_opd_nm(rng, pupil, rms_nm, slope=2.0):
    """Random wavefront error with a power-law PSD ``f**-slope``.

    Piston, tip and tilt are removed over the pupil (the AO keeps the star
    centred), then the map is scaled to ``rms_nm`` inside the pupil.

    Parameters
    ----------
    rng : `numpy.random.Generator`
    pupil : `numpy.ndarray`, shape (n, n)
        Pupil transmission (defines where the rms is measured).
    rms_nm : float
        Root mean square over the pupil (nm).
    slope : float
        Exponent of the power spectral density.

    Returns
    -------
    opd_nm : `numpy.ndarray`, shape (n, n), float32
    """
    n = pupil.shape[0]
    m = 2 * n  # generate on a larger grid so the screen is not periodic over the pupil
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(m), np.fft.fftfreq(m)))
    f[0, 0] = np.inf
    noise = rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m))
    screen = np.fft.ifft2(noise * f ** (-slope / 2.0)).real[:n, :n]
    inside = pupil > 0.5
    c = np.arange(n) - (n - 1) / 2.0
    x, y = np.meshgrid(c, c)
    basis = np.stack([np.ones(inside.sum()), x[inside], y[inside]], axis=1)
    coef, *_ = np.linalg.lstsq(basis, screen[inside], rcond=None)
    screen = screen - (coef[0] + coef[1] * x + coef[2] * y)
    screen *= rms_nm / np.sqrt(np.mean(screen[inside] ** 2))
    return screen.astype(np.float32)


def waffle_opd_nm(n_pix, amplitude_nm, cycles_per_pupil=10):
    """Deformable-mirror waffle pattern that makes four satellite spots.

    A product of cosines along x and y puts the spots at
    (+/-k, +/-k) lambda/D: the diagonal 'x' pattern.

    Returns
    -------
    opd_nm : `numpy.ndarray`, shape (n_pix, n_pix), float32
    """
    u = (np.arange(n_pix) - (n_pix - 1) / 2.0) / n_pix
    cx = np.cos(2 * np.pi * cycles_per_pupil * u)
    return (amplitude_nm * np.outer(cx, cx)).astype(np.float32)


def mft_matrices(n_pupil, wavelength_um, pix_rad_xy, shape, center_xy):
    """The two matrices of a matrix Fourier transform to detector pixels.

    Parameters
    ----------
    n_pupil : int
        Pupil array size (the pupil spans ``PUPIL_DIAMETER_M``).
    wavelength_um : float
    pix_rad_xy : (float, float)
        Sky angle (rad) covered by one pixel along x and y.
    shape : (int, int)
        Output (ny, nx).
    center_xy : (float, float)
        Output pixel (x, y), possibly fractional, of the optical axis.

    Returns
    -------
    ey : `numpy.ndarray`, shape (ny, n_pupil), complex64
    ex_t : `numpy.ndarray`, shape (n_pupil, nx), complex64
    """
    lam = wavelength_um * 1e-6
    u = (np.arange(n_pupil) - (n_pupil - 1) / 2.0) * (ins.PUPIL_DIAMETER_M / n_pupil)
    ax = (np.arange(shape[1]) - center_xy[0]) * pix_rad_xy[0]
    ay = (np.arange(shape[0]) - center_xy[1]) * pix_rad_xy[1]
    ey = np.exp((-2j * np.pi / lam) * np.outer(ay, u)).astype(np.complex64)
    ex_t = np.exp((-2j * np.pi / lam) * np.outer(u, ax)).astype(np.complex64)
    return ey, ex_t


def mft_field(field, matrices):
    """Focal-plane field of a pupil-plane field, sampled on detector pixels.

    Parameters
    ----------
    field : `numpy.ndarray`, shape (n, n), complex
        Pupil-plane field (rows along y).
    matrices : tuple
        From `mft_matrices`.

    Returns
    -------
    efield : `numpy.ndarray`, shape (ny, nx), complex64
        Normalised (with `_norm`) so that ``|efield|**2`` summed over the whole
        plane equals ``sum(|field|**2) / sum(pupil**2)`` (Parseval).
    """
    ey, ex_t = matrices
    return ey @ field.astype(np.complex64) @ ex_t


def _norm(pupil, wavelength_um, pix_rad_xy):
    """Intensity factor turning |MFT|**2 into a fraction of flux per pixel (Parseval)."""
    dx = ins.PUPIL_DIAMETER_M / pupil.shape[0]
    lam = wavelength_um * 1e-6
    return dx ** 2 * pix_rad_xy[0] * pix_rad_xy[1] / (lam ** 2 * float(np.sum(pupil ** 2)))


def coherent_image(pupil, opd_nm, wavelength_um, pix_rad_xy, shape, center_xy,
                   coronagraph=False, matrices=None):
    """Diffraction-limited image of the aberrated pupil (no AO residuals).

    Parameters
    ----------
    pupil : `numpy.ndarray`, shape (n, n)
    opd_nm : `numpy.ndarray`, shape (n, n)
        Wavefront error (nm), static + per-frame + waffle.
    wavelength_um : float
    pix_rad_xy : (float, float)
        Pixel size on the sky (rad) along x and y.
    shape : (int, int)
        Output (ny, nx).
    center_xy : (float, float)
        Pixel position of the source.
    coronagraph : bool
        Apply the ideal coronagraph (remove the pupil's coherent field).
    matrices : tuple, optional
        Precomputed `mft_matrices` for these wavelength, pixels, shape and centre.

    Returns
    -------
    image : `numpy.ndarray`, shape (ny, nx), float32
        Fraction of the source flux per pixel.
    """
    field = pupil * np.exp(1j * 2 * np.pi * opd_nm / (wavelength_um * 1e3))
    if coronagraph:
        field = field - pupil * (np.sum(pupil * field) / np.sum(pupil ** 2))
    if matrices is None:
        matrices = mft_matrices(pupil.shape[0], wavelength_um, pix_rad_xy, shape, center_xy)
    e = mft_field(field, matrices)
    return ((e.real ** 2 + e.imag ** 2) * _norm(pupil, wavelength_um, pix_rad_xy)).astype(np.float32)


def _piston_filter(f):
    """1 - |pupil transfer|^2: spatial frequencies below ~1/D only move the core
    (piston, tip-tilt), they scatter no light into the halo (Sasiela's filter)."""
    from scipy.special import j1

    x = np.pi * ins.PUPIL_DIAMETER_M * np.maximum(np.asarray(f, dtype=float), 1e-12)
    return 1.0 - (2.0 * j1(x) / x) ** 2


def _filtered_von_karman(f2, outer_scale_m):
    return _piston_filter(np.sqrt(f2)) * (f2 + outer_scale_m ** -2.0) ** (-11.0 / 6.0)


@functools.lru_cache(maxsize=8)
def _von_karman_integrals(fc, outer_scale_m):
    """Integrals of the piston-filtered von Karman shape over the controlled square
    |fx|, |fy| < fc and over the whole plane (numerical: the filter has no closed form)."""
    # the disk inside the square and the whole plane: radial integrals on a log grid
    f = np.geomspace(1e-4, 1e3, 20000)
    integrand = 2 * np.pi * f * _filtered_von_karman(f ** 2, outer_scale_m)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(f))])
    disk, plane = np.interp(fc, f, cum), cum[-1]
    # corners between the inscribed disk and the square: smooth there, a grid suffices
    n = 400
    g = (np.arange(n) + 0.5) * fc / n
    f2 = g[:, None] ** 2 + g[None, :] ** 2
    corner = np.where(f2 > fc ** 2, _filtered_von_karman(f2, outer_scale_m), 0.0).sum() \
        * (fc / n) ** 2
    return disk + 4 * corner, plane


def ao_residual_variance_rad2(wavelength_um, ao):
    """Phase variance (rad**2) of the AO residuals at ``wavelength_um``, piston and
    tip-tilt (frequencies below ~1/D) excluded: they move the image, not its Strehl."""
    fc = ins.N_ACTUATORS / (2 * ins.PUPIL_DIAMETER_M)
    inside, total = _von_karman_integrals(fc, ao.outer_scale_m)
    return 0.023 * ao.r0_m(wavelength_um) ** (-5.0 / 3.0) * (
        ao.servo_factor * inside + total - inside)


def strehl_ratio(wavelength_um, ao):
    """Strehl ratio of the AO residuals (Marechal: exp(-sigma**2))."""
    return float(np.exp(-ao_residual_variance_rad2(wavelength_um, ao)))


def halo_image(dx_pix, dy_pix, wavelength_um, pix_rad_xy, ao):
    """AO residual halo: the part of the light the AO does not correct.

    Parameters
    ----------
    dx_pix, dy_pix : `numpy.ndarray`
        Pixel offsets from the source along x and y (broadcastable).
    wavelength_um : float
    pix_rad_xy : (float, float)
    ao : `AOConditions`

    Returns
    -------
    image : `numpy.ndarray`, float32
        Fraction of the source flux per pixel; sums to ``1 - S`` over the plane.
    """
    lam = wavelength_um * 1e-6
    fx = np.asarray(dx_pix) * (pix_rad_xy[0] / lam)
    fy = np.asarray(dy_pix) * (pix_rad_xy[1] / lam)
    fc = ins.N_ACTUATORS / (2 * ins.PUPIL_DIAMETER_M)
    psd = 0.023 * ao.r0_m(wavelength_um) ** (-5.0 / 3.0) * _filtered_von_karman(
        fx ** 2 + fy ** 2, ao.outer_scale_m)
    psd = np.where((np.abs(fx) < fc) & (np.abs(fy) < fc), psd * ao.servo_factor, psd)
    sigma2 = ao_residual_variance_rad2(wavelength_um, ao)
    scale = (1.0 - np.exp(-sigma2)) / sigma2 * pix_rad_xy[0] * pix_rad_xy[1] / lam ** 2
    return (psd * scale).astype(np.float32)


def mask_transmission(r_arcsec, radius_arcsec):
    """Intensity transmission of a coronagraphic focal mask of radius ``radius_arcsec``."""
    if radius_arcsec <= 0:
        return np.ones_like(np.asarray(r_arcsec, dtype=np.float32))
    return (1.0 - np.exp(-(np.asarray(r_arcsec) / radius_arcsec) ** 4)).astype(np.float32)
