"""Off-axis PSF from OBJECT,FLUX frames: centre, FWHM, flux, normalised stamp."""
from dataclasses import dataclass
import warnings

import numpy as np

from .geometry import recentre
from .normalise import normalise_flux
from .params import PSFParams

__all__ = ["PSFMeasurement", "measure_psf", "average_psfs"]


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


#: VLT UT3 pupil as SPHERE sees it: diameter and linear central obstruction.
VLT_DIAMETER_M = 8.0
VLT_OBSTRUCTION = 0.14


def ideal_peak_fraction(wavelength_um, pixscale_arcsec, *, diameter_m=VLT_DIAMETER_M,
                        obstruction=VLT_OBSTRUCTION, oversample=8, n_pupil=128):
    """Fraction of a star's flux in the central pixel of a perfect (Strehl 1) PSF.

    The diffraction pattern of the obstructed circular pupil is computed by a
    matrix Fourier transform straight onto a pixel grid oversampled
    ``oversample`` times, then averaged over the central detector pixel, so the
    pixel's own blurring (a few percent at IRDIS sampling) is included.

    Parameters
    ----------
    wavelength_um : float
        Wavelength (micron).
    pixscale_arcsec : float
        Detector pixel scale (arcsec).

    Returns
    -------
    float
    """
    # Pupil plane: coordinates in units of D; focal plane: in units of lambda/D.
    x = (np.arange(n_pupil) - (n_pupil - 1) / 2) / n_pupil
    xx, yy = np.meshgrid(x, x)
    r = np.hypot(xx, yy)
    pupil = ((r <= 0.5) & (r >= 0.5 * obstruction)).astype(float)
    lod_arcsec = np.degrees(wavelength_um * 1e-6 / diameter_m) * 3600.0
    pix_lod = pixscale_arcsec / lod_arcsec
    u = (np.arange(oversample) - (oversample - 1) / 2) / oversample * pix_lod
    mft = np.exp(-2j * np.pi * np.outer(u, x))            # (oversample, n_pupil)
    field = mft @ pupil @ mft.T                            # central pixel, oversampled
    # Fraction of the total power per (lambda/D)^2 (Parseval: the total is the
    # pupil area); times the pixel's area, averaged over the pixel.
    fraction_per_lod2 = np.abs(field) ** 2 / (n_pupil ** 2 * pupil.sum())
    return float(fraction_per_lod2.mean() * pix_lod ** 2)


def strehl_estimate(psf_stamp, flux_adu_s, wavelength_um, pixscale_arcsec):
    """Strehl ratio of an off-axis PSF: its peak fraction over a perfect PSF's.

    Parameters
    ----------
    psf_stamp : array_like, shape (ny, nx)
        Background-subtracted PSF with the star on its central pixel (ADU/s).
    flux_adu_s : float
        Total flux of the star in the same units.
    wavelength_um, pixscale_arcsec : float

    Returns
    -------
    float
        Strehl ratio, or NaN when the flux is not positive.
    """
    stamp = np.asarray(psf_stamp, dtype=float)
    if not flux_adu_s or flux_adu_s <= 0:
        return float("nan")
    peak = stamp[stamp.shape[0] // 2, stamp.shape[1] // 2]
    return float(peak / flux_adu_s / ideal_peak_fraction(wavelength_um, pixscale_arcsec))


def average_psfs(per_file):
    """Average the PSF measurements of several FLUX files, field by field.

    Parameters
    ----------
    per_file : list of list of PSFMeasurement
        For each FLUX file, one measurement per field (IRDIS) or channel (IFS).

    Returns
    -------
    stamp : ndarray, float32, shape (n_fields, ny, nx)
    flux_adu_s, fwhm_px : ndarray, shape (n_fields,)
    spread : float
        Largest relative scatter of the flux between files (0 for one file): a
        PSF that changes during the sequence makes its photometry doubtful.
    """
    stamps = [[p.image for p in per] for per in per_file]
    fluxes = np.array([[p.flux_adu_s for p in per] for per in per_file])
    fwhms = [[p.fwhm_px for p in per] for per in per_file]
    spread = 0.0
    if len(per_file) > 1:
        spread = float(np.max(fluxes.std(axis=0) / np.abs(fluxes.mean(axis=0))))
    return (np.mean(stamps, axis=0).astype(np.float32), fluxes.mean(axis=0),
            np.mean(fwhms, axis=0), spread)
