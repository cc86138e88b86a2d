"""IFS (or IRDIS DBI) spectrum of a candidate: contrast per channel.

Each channel is processed on its own with an ADI algorithm (spectral
differential imaging would distort the spectrum), the candidate's aperture
flux is measured at its position, and divided by that channel's throughput
(fake companions at the same separation, other position angles) and star flux.
"""
import numpy as np

from .contrast import inject_companions
from .exceptions import InputShapeError
from .geometry import star_center, xy_to_sep_pa
from .snr import aperture_sum_image, ring_statistics

__all__ = ["candidate_spectrum"]


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

    cube = np.asarray(cube, dtype=np.float32)
    if cube.ndim != 4 or np.ndim(psf_norm) != 3 or np.shape(psf_norm)[0] != cube.shape[0]:
        raise InputShapeError("a spectrum needs a (wavelength, time, y, x) cube and one "
                              "PSF per channel", cube.shape)
    n_chan = cube.shape[0]
    try:
        star_flux = np.broadcast_to(np.asarray(star_flux, dtype=float), (n_chan,))
        fwhm_px = np.broadcast_to(np.asarray(fwhm_px, dtype=float), (n_chan,))
    except ValueError as exc:
        raise InputShapeError("star_flux and fwhm_px need one value per channel",
                              cube.shape) from exc
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
