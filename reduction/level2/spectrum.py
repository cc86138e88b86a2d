"""IFS (or IRDIS DBI) spectrum of a candidate: contrast per channel.

`candidate_spectrum`: each channel is processed on its own with an ADI
algorithm, the candidate's aperture flux is measured at its position, and
divided by that channel's throughput (fake companions at the same separation,
other position angles) and star flux.

`candidate_spectrum_joint`: the channels are processed together (PCA-ASDI,
whose spectral rescaling removes far more speckle than ADI alone when the
field rotates little) by an algorithm returning one image per channel. The
spectral rescaling moves the companion across the speckle model, so its
flux is partly subtracted in a way that depends on the wavelength: the
throughput of each channel is measured the same way, with fake companions of
the candidate's brightness at its separation, processed jointly.
"""
import numpy as np

from .contrast import inject_companions
from .exceptions import InputShapeError
from .geometry import star_center, xy_to_sep_pa
from .snr import aperture_sum_image, ring_statistics

__all__ = ["candidate_spectrum", "candidate_spectrum_joint"]


def _checked_inputs(cube, psf_norm, star_flux, fwhm_px):
    """(cube float32, channels, star flux and FWHM per channel) of valid spectrum inputs.

    Raises
    ------
    InputShapeError
        If the cube is not 4-d or per-channel inputs have the wrong length.
    """
    cube = np.asarray(cube, dtype=np.float32)
    n_chan = cube.shape[0] if cube.ndim == 4 else 0
    if cube.ndim != 4 or np.ndim(psf_norm) != 3 or np.shape(psf_norm)[0] != n_chan:
        raise InputShapeError("a spectrum needs a (wavelength, time, y, x) cube and one "
                              "PSF per channel", cube.shape)
    try:
        star_flux = np.broadcast_to(np.asarray(star_flux, dtype=float), (n_chan,))
        fwhm_px = np.broadcast_to(np.asarray(fwhm_px, dtype=float), (n_chan,))
    except ValueError as exc:
        raise InputShapeError("star_flux and fwhm_px need one value per channel",
                              cube.shape) from exc
    return cube, n_chan, star_flux, fwhm_px


def candidate_spectrum(cube, angles_deg, psf_norm, star_flux, fwhm_px, x, y, algorithm,
                       *, n_branches=3):
    """Contrast of a candidate in every spectral channel, with 1-sigma errors.

    Parameters
    ----------
    cube : ndarray, shape (wavelength, time, y, x)
    angles_deg : ndarray, shape (time,)
    psf_norm : ndarray, shape (wavelength, s, s)
        Unit templates per channel.
    star_flux : ndarray, shape (wavelength,)
        Star flux per channel (1-FWHM aperture, cube units).
    fwhm_px : ndarray, shape (wavelength,)
    x, y : float
        Candidate position in the final (north-up) image.
    algorithm : callable
        ``algorithm(cube3d, angles_deg) -> image``, the per-channel ADI processing.
    n_branches : int
        Fake companions used for each channel's throughput.

    Returns
    -------
    contrast : ndarray, shape (wavelength,)
        Candidate/star flux ratio per channel.
    contrast_err : ndarray, shape (wavelength,)
    throughput : ndarray, shape (wavelength,)

    Raises
    ------
    InputShapeError
        If the cube is not 4-d or per-channel inputs have the wrong length.
    """
    from scipy.ndimage import map_coordinates

    cube, n_chan, star_flux, fwhm_px = _checked_inputs(cube, psf_norm, star_flux, fwhm_px)
    center = star_center(cube.shape)
    sep_px, pa_deg = xy_to_sep_pa(x, y, cube.shape)
    contrast, error, thr = (np.zeros(n_chan) for _ in range(3))
    for k in range(n_chan):
        image = algorithm(cube[k], angles_deg)
        flux_image = aperture_sum_image(image, fwhm_px[k])
        f0 = map_coordinates(flux_image, [[y], [x]], order=1)[0]
        _, std, n_bg = ring_statistics(flux_image, np.array([y]), np.array([x]),
                                       fwhm_px[k], center)
        # fake companions as bright as ~20 sigma, away from the candidate
        fc_flux = max(20 * std[0], abs(f0))
        ratios = []
        for b in range(n_branches):
            pa_fc = pa_deg + 360.0 * (b + 1) / (n_branches + 1)
            fc_cube = inject_companions(cube[k], psf_norm[k], angles_deg, [sep_px],
                                        [pa_fc], [fc_flux])
            got = aperture_sum_image(algorithm(fc_cube, angles_deg), fwhm_px[k]) - flux_image
            xf = center[1] - sep_px * np.sin(np.radians(pa_fc))
            yf = center[0] + sep_px * np.cos(np.radians(pa_fc))
            ratios.append(map_coordinates(got, [[yf], [xf]], order=1)[0] / fc_flux)
        thr[k] = np.mean(ratios)
        contrast[k] = f0 / thr[k] / star_flux[k]
        error[k] = std[0] * np.sqrt(1 + 1 / n_bg[0]) / thr[k] / star_flux[k]
    return contrast, error, thr


def candidate_spectrum_joint(cube, angles_deg, psf_norm, star_flux, fwhm_px, x, y,
                             channel_images, *, contrast_guess, base_images=None,
                             n_branches=3):
    """Contrast of a candidate per channel, channels processed jointly (PCA-ASDI).

    Parameters
    ----------
    cube : ndarray, shape (wavelength, time, y, x)
    angles_deg : ndarray, shape (time,)
    psf_norm : ndarray, shape (wavelength, s, s)
        Unit templates per channel (`reduction.level2.psf.normalize_psf`).
    star_flux : ndarray, shape (wavelength,)
        Star flux per channel in a 1-FWHM aperture of that channel.
    fwhm_px : ndarray, shape (wavelength,)
        FWHM per channel: each channel is measured in its own 1-FWHM aperture.
    x, y : float
        Candidate position in the channel images (north up, star on the
        central pixel).
    channel_images : callable
        ``channel_images(cube4d, angles_deg) -> (wavelength, m, m)``, e.g.
        `reduction.level2.asdi.pca_asdi` with ``channels=True`` (second output).
    contrast_guess : float
        Broadband contrast of the candidate (throughput corrected): the fake
        companions get this contrast in every channel, so they load the
        speckle model as the candidate does. Not finite or not positive: 20
        times the local noise of each channel.
    base_images : ndarray, shape (wavelength, m, m), optional
        ``channel_images(cube, angles_deg)`` if already computed.
    n_branches : int
        Fake companions (one per processing), at the candidate's separation,
        evenly spaced in position angle away from it.

    Returns
    -------
    contrast : ndarray, shape (wavelength,)
        Candidate/star flux ratio per channel.
    contrast_err : ndarray, shape (wavelength,)
        1-sigma, from the scatter of the background apertures on the
        candidate's ring (Mawet et al. 2014 small-sample factor).
    throughput : ndarray, shape (wavelength,)
        Mean over the branches.

    Raises
    ------
    InputShapeError
        If the cube is not 4-d or per-channel inputs have the wrong length.
    """
    from scipy.ndimage import map_coordinates

    cube, n_chan, star_flux, fwhm_px = _checked_inputs(cube, psf_norm, star_flux, fwhm_px)
    base = channel_images(cube, angles_deg) if base_images is None else base_images
    center = star_center(base.shape)
    sep_px, pa_deg = xy_to_sep_pa(x, y, base.shape)
    flux_images = [aperture_sum_image(base[k], fwhm_px[k]) for k in range(n_chan)]
    f0, std, n_bg = np.zeros(n_chan), np.zeros(n_chan), np.zeros(n_chan)
    for k in range(n_chan):
        f0[k] = map_coordinates(flux_images[k], [[y], [x]], order=1)[0]
        _, s, n = ring_statistics(flux_images[k], np.array([y]), np.array([x]), fwhm_px[k],
                                  center)
        std[k], n_bg[k] = s[0], n[0]
    if np.isfinite(contrast_guess) and contrast_guess > 0:
        fc_flux = contrast_guess * star_flux
    else:
        fc_flux = 20.0 * std
    ratios = np.zeros((n_branches, n_chan))
    for b in range(n_branches):
        pa_fc = pa_deg + 360.0 * (b + 1) / (n_branches + 1)
        fc_cube = inject_companions(cube, psf_norm, angles_deg, [sep_px], [pa_fc],
                                    fc_flux[None])
        got = channel_images(fc_cube, angles_deg)
        xf = center[1] - sep_px * np.sin(np.radians(pa_fc))
        yf = center[0] + sep_px * np.cos(np.radians(pa_fc))
        for k in range(n_chan):
            diff = aperture_sum_image(got[k], fwhm_px[k]) - flux_images[k]
            ratios[b, k] = map_coordinates(diff, [[yf], [xf]], order=1)[0] / fc_flux[k]
    thr = ratios.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        good = thr > 0
        contrast = np.where(good, f0 / thr / star_flux, np.nan)
        error = np.where(good, std * np.sqrt(1 + 1 / n_bg) / thr / star_flux, np.nan)
    return contrast, error, thr
