"""Off-axis PSF from OBJECT,FLUX frames: centre, FWHM, flux, normalised stamp."""
from dataclasses import dataclass
import warnings

import numpy as np

from .geometry import recentre
from .normalise import normalise_flux
from .params import PSFParams

__all__ = ["PSFMeasurement", "measure_psf"]


@dataclass(frozen=True)
class PSFMeasurement:
    """Result of `measure_psf`.

    Attributes
    ----------
    image : `numpy.ndarray`, shape (size, size), float32
        PSF stamp in ADU/s without ND, local background removed, star on the central
        pixel, anamorphism corrected.
    centre_xy : tuple of float
        Fitted star position (x, y), 0-based, in the input field.
    flux_adu_s : float
        Aperture flux of the star (ADU/s, ND corrected), background subtracted.
    fwhm_px : float
        Geometric mean of the fitted Gaussian FWHMs along x and y (pixels).
    background_adu_s : float
        Local background per pixel removed (ADU/s, ND corrected).
    """
    image: np.ndarray
    centre_xy: tuple
    flux_adu_s: float
    fwhm_px: float
    background_adu_s: float


def _fit_gaussian(image, x0, y0, half):
    """2D Gaussian fit in a box; returns (x, y, fwhm_x, fwhm_y)."""
    from astropy.modeling import fitting, models
    from astropy.stats import gaussian_sigma_to_fwhm

    ny, nx = image.shape
    ya, yb = max(y0 - half, 0), min(y0 + half + 1, ny)
    xa, xb = max(x0 - half, 0), min(x0 + half + 1, nx)
    yy, xx = np.mgrid[ya:yb, xa:xb]
    stamp = image[ya:yb, xa:xb]
    model = (models.Gaussian2D(amplitude=image[y0, x0], x_mean=x0, y_mean=y0,
                               x_stddev=2.0, y_stddev=2.0)
             + models.Const2D(amplitude=np.median(stamp)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # judged by the result, not by fitter warnings
        fit = fitting.TRFLSQFitter()(model, xx, yy, stamp)
    x, y = fit.x_mean_0.value, fit.y_mean_0.value
    if not (np.isfinite(x) and np.isfinite(y)) or abs(x - x0) > half or abs(y - y0) > half:
        x, y = float(x0), float(y0)  # fall back to the brightest pixel
    return (x, y, abs(fit.x_stddev_0.value) * gaussian_sigma_to_fwhm,
            abs(fit.y_stddev_0.value) * gaussian_sigma_to_fwhm)


def measure_psf(frames, dit_s, nd_filter, *, guess_xy=None, search_px=40,
                scale_xy=(1.0, 1.0), params=PSFParams()):
    """Measure the off-axis PSF of one field.

    Parameters
    ----------
    frames : array_like, shape (n, ny, nx) or (ny, nx)
        Background-subtracted, flat-fielded, bad-pixel-corrected FLUX frames (ADU
        per frame) of one field; averaged over the first axis.
    dit_s : float
        DIT of the frames (s).
    nd_filter : str
        Neutral density in the beam (``ESO INS4 FILT2 NAME``).
    guess_xy : tuple of float, optional
        Expected star position; the brightest point within ``search_px`` of it is
        fitted. None searches the whole image.
    search_px : int, optional
        Search radius around ``guess_xy`` (pixels).
    scale_xy : tuple of float, optional
        Anamorphism correction of the stamp (`~reduction.level1.geometry.ANAMORPHISM_XY`).
    params : `~reduction.level1.params.PSFParams`, optional
        Stamp size and photometric apertures.

    Returns
    -------
    psf : `PSFMeasurement`

    Raises
    ------
    ValueError
        If the frames hold no finite pixel near the guess.
    UnknownNDFilterError
        For an unknown ND name.
    """
    from astropy.stats import SigmaClip
    from photutils.aperture import (ApertureStats, CircularAnnulus, CircularAperture,
                                    aperture_photometry)
    from scipy import ndimage

    data = np.asarray(frames, dtype=np.float32)
    image = data.mean(axis=0) if data.ndim == 3 else data
    image = normalise_flux(np.nan_to_num(image), dit_s, nd_filter)
    smooth = ndimage.gaussian_filter(image, 2.0)
    if guess_xy is not None:
        yy, xx = np.indices(image.shape)
        far = np.hypot(xx - guess_xy[0], yy - guess_xy[1]) > search_px
        smooth[far] = -np.inf
    if not np.isfinite(smooth).any():
        raise ValueError("no pixel to search for the PSF")
    y0, x0 = np.unravel_index(np.argmax(smooth), smooth.shape)
    x, y, fwhm_x, fwhm_y = _fit_gaussian(image, int(x0), int(y0), 8)
    r_in, r_out = params.annulus_px
    bkg = ApertureStats(image, CircularAnnulus((x, y), r_in, r_out),
                        sigma_clip=SigmaClip(sigma=3.0)).median
    bkg = float(bkg) if np.isfinite(bkg) else 0.0
    phot = aperture_photometry(image - bkg, CircularAperture((x, y), params.aperture_radius_px))
    stamp = recentre(image - bkg, (x, y), params.size_px, scale_xy=scale_xy)
    # The resampling preserves surface brightness; divide by the area scale so the
    # stamp keeps the star's total flux.
    stamp /= np.float32(scale_xy[0] * scale_xy[1])
    return PSFMeasurement(stamp, (float(x), float(y)), float(phot["aperture_sum"][0]),
                          float(np.sqrt(fwhm_x * fwhm_y)), bkg)
