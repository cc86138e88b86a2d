"""S/N maps with the small-sample statistics of Mawet et al. (2014).

For a test pixel at separation r, the 1-FWHM-diameter aperture centred on it
is compared with the ``n = floor(2 pi / (2 arcsin(fwhm / 2 r)))`` - 1
non-overlapping apertures on the same ring (Mawet et al. 2014, eq. 9):
``S/N = (f0 - mean(f)) / (std(f, ddof=1) sqrt(1 + 1/n))``.
This follows `vip_hci.metrics.snr` (apertures placed clockwise from the test
pixel), vectorised: aperture sums come from one FFT convolution with the
exact-overlap disc (photutils), read at the ring positions by cubic-spline
interpolation, instead of one photometry call per aperture and pixel.
"""
import numpy as np

from .exceptions import InputShapeError
from .geometry import star_center

__all__ = ["aperture_sum_image", "ring_apertures", "ring_statistics", "snr_map", "snr_at"]


def aperture_sum_image(image, fwhm_px):
    """Flux in a 1-FWHM-diameter aperture centred on every pixel.

    Parameters
    ----------
    image : ndarray, shape (y, x)
    fwhm_px : float

    Returns
    -------
    ndarray, shape (y, x), float64
        Exact-overlap aperture sums (as photutils' ``method="exact"``).
    """
    from photutils.aperture import CircularAperture
    from scipy.signal import fftconvolve

    radius = fwhm_px / 2.0
    half = int(np.ceil(radius)) + 1
    kernel = CircularAperture((half, half), radius).to_mask(method="exact")
    kernel = kernel.to_image((2 * half + 1, 2 * half + 1))
    # the disc is symmetric: convolution equals correlation
    return fftconvolve(np.asarray(image, dtype=np.float64), kernel, mode="same")


def ring_apertures(sep_px, fwhm_px):
    """Number of independent apertures and their angular step on a ring.

    Parameters
    ----------
    sep_px : float or ndarray
        Separation from the star (> fwhm_px / 2).
    fwhm_px : float

    Returns
    -------
    n_ap : int or ndarray of int
        Apertures on the ring, the test aperture included.
    step_rad : float or ndarray
    """
    step_rad = 2.0 * np.arcsin(np.minimum(fwhm_px / 2.0 / np.asarray(sep_px), 1.0))
    return np.floor(2.0 * np.pi / step_rad).astype(int), step_rad


def ring_statistics(flux_image, ys, xs, fwhm_px, center):
    """Background apertures on the ring of each test position (Mawet et al. 2014).

    Parameters
    ----------
    flux_image : ndarray, shape (y, x)
        Output of `aperture_sum_image`.
    ys, xs : ndarray, shape (n,)
        Test positions (pixels, may be fractional), farther than fwhm/2 from
        the star.
    fwhm_px : float
    center : tuple of float
        Star pixel (yc, xc).

    Returns
    -------
    mean, std : ndarray, shape (n,)
        Mean and sample standard deviation (ddof=1) of the background
        aperture fluxes, the test aperture excluded.
    n_bg : ndarray of int, shape (n,)
        Number of background apertures.
    """
    from scipy.ndimage import map_coordinates, spline_filter

    # cubic spline: bilinear reads of aperture sums smooth pixel-scale noise
    # and underestimate the ring scatter by up to ~15 %
    coeffs = spline_filter(flux_image, order=3, mode="constant")
    yc, xc = center
    dy, dx = ys - yc, xs - xc
    n_ap, step = ring_apertures(np.hypot(dy, dx), fwhm_px)
    total = np.zeros(ys.size)
    total_sq = np.zeros(ys.size)
    for k in range(1, int(n_ap.max()) if n_ap.size else 1):
        sel = np.nonzero(n_ap > k)[0]
        cos_k, sin_k = np.cos(k * step[sel]), np.sin(k * step[sel])
        # clockwise rotation by k steps, as vip_hci.metrics.indep_ap_centers
        y_k = yc + cos_k * dy[sel] - sin_k * dx[sel]
        x_k = xc + cos_k * dx[sel] + sin_k * dy[sel]
        f = map_coordinates(coeffs, [y_k, x_k], order=3, mode="constant", cval=0.0,
                            prefilter=False)
        total[sel] += f
        total_sq[sel] += f * f
    n_bg = n_ap - 1
    mean = total / n_bg
    var = (total_sq - n_bg * mean ** 2) / (n_bg - 1)
    return mean, np.sqrt(np.maximum(var, 0.0)), n_bg


def snr_map(image, fwhm_px, *, inner_radius_px=None, outer_radius_px=None):
    """S/N of every pixel (Mawet et al. 2014), as `vip_hci.metrics.snrmap`.

    Parameters
    ----------
    image : ndarray, shape (y, x)
        Speckle-subtracted, north-up image with the star on (ny // 2, nx // 2).
    fwhm_px : float
        PSF FWHM, the aperture diameter.
    inner_radius_px, outer_radius_px : float, optional
        Pixels are evaluated for ``inner <= r < outer``; defaults as vip-hci:
        ``fwhm`` and ``min(ny, nx) / 2 - 0.5 fwhm``.

    Returns
    -------
    ndarray, shape (y, x), float32
        Zero outside the evaluated zone and where the image is exactly zero
        (masked pixels), as in vip-hci.

    Raises
    ------
    InputShapeError
        If the image is not 2-d.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputShapeError("an S/N map needs a 2-d image", image.shape)
    inner = fwhm_px if inner_radius_px is None else inner_radius_px
    outer = min(image.shape) / 2 - 0.5 * fwhm_px if outer_radius_px is None else outer_radius_px
    center = star_center(image.shape)
    yy, xx = np.indices(image.shape)
    rad = np.hypot(yy - center[0], xx - center[1])
    ys, xs = np.nonzero((rad >= max(inner, fwhm_px / 2 + 1e-6)) & (rad < outer) & (image != 0))
    flux = aperture_sum_image(image, fwhm_px)
    mean, std, n_bg = ring_statistics(flux, ys.astype(float), xs.astype(float),
                                       fwhm_px, center)
    out = np.zeros(image.shape, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = (flux[ys, xs] - mean) / (std * np.sqrt(1.0 + 1.0 / n_bg))
    out[ys, xs] = np.nan_to_num(snr, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def snr_at(image, x, y, fwhm_px, *, exclude_negative_lobes=False):
    """S/N of one (sub-pixel) position with exact photometry, by `vip_hci.metrics.snr`.

    Parameters
    ----------
    image : ndarray, shape (y, x)
    x, y : float
        Position in pixels.
    fwhm_px : float
    exclude_negative_lobes : bool
        Leave the two background apertures beside the source out of the noise:
        the negative ADI lobes of a real source sit there and inflate it.

    Returns
    -------
    float
    """
    from vip_hci.metrics import snr

    return float(snr(np.asarray(image, dtype=float), (float(x), float(y)), float(fwhm_px),
                     exclude_negative_lobes=exclude_negative_lobes))
