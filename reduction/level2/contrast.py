"""Detection limits: 5-sigma contrast versus separation.

Noise: standard deviation of the fluxes of independent 1-FWHM apertures on
each ring of the speckle-subtracted image (variance averaged over 8 rotations
of the ring of apertures, so one unlucky placement does not set the limit).
Throughput: fake companions made from the sequence's own PSF are injected in
several azimuthal branches, the same algorithm is re-run, and the recovered
over injected aperture flux is measured. The threshold is the Student-t equivalent of a Gaussian
``sigma`` with ``n = 2 pi r / FWHM`` resolution elements (Mawet et al. 2014):
``t_ppf(Phi(sigma), n - 1) sqrt(1 + 1/n)``. Same recipe as
`vip_hci.metrics.contrast_curve`, without its plots and prints.
"""
import numpy as np

from .exceptions import InputShapeError
from .geometry import star_center
from .snr import aperture_sum_image, ring_apertures

__all__ = ["student_threshold", "noise_per_separation", "inject_companions",
           "throughput", "contrast_curve", "flux_ratio_to_mag"]


def flux_ratio_to_mag(ratio):
    """Contrast as a magnitude difference, ``-2.5 log10(ratio)`` (NaN if <= 0).

    Parameters
    ----------
    ratio : float or ndarray

    Returns
    -------
    float or ndarray
    """
    ratio = np.asarray(ratio, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 0, -2.5 * np.log10(np.where(ratio > 0, ratio, 1.0)), np.nan)


def student_threshold(sep_px, fwhm_px, sigma=5.0):
    """Small-sample threshold equivalent to a Gaussian ``sigma`` (Mawet et al. 2014).

    Parameters
    ----------
    sep_px : float or ndarray
    fwhm_px : float
    sigma : float

    Returns
    -------
    float or ndarray
        Multiple of the aperture noise; tends to ``sigma`` far from the star.
    """
    from scipy import stats

    n_res = np.maximum(np.floor(2 * np.pi * np.asarray(sep_px) / fwhm_px), 2)
    return stats.t.ppf(stats.norm.cdf(sigma), n_res - 1) * np.sqrt(1 + 1 / n_res)


def noise_per_separation(image, sep_px, fwhm_px, *, n_turns=8, exclude_xy=()):
    """Mean and standard deviation of independent aperture fluxes per ring.

    Parameters
    ----------
    image : ndarray, shape (y, x)
    sep_px : ndarray, shape (n,)
        Ring radii (> fwhm / 2).
    fwhm_px : float
    n_turns : int
        Placements of the ring of apertures, rotated by fractions of their
        spacing, over which the variance is averaged.
    exclude_xy : sequence of (x, y)
        Detected sources: apertures closer than 3 FWHM to one are left out (the
        source and its ADI self-subtraction lobes), so a real companion does not
        count as noise (and raise the limit) on its ring.

    Returns
    -------
    noise : ndarray, shape (n,)
        Sample standard deviation (ddof=1) of the aperture sums, root of the
        mean variance over the placements.
    mean : ndarray, shape (n,)
    """
    from scipy.ndimage import map_coordinates, spline_filter

    # cubic spline: bilinear reads of aperture sums smooth the ring scatter
    # (5-8 % low noise at 2-4 FWHM against exact photometry)
    flux = spline_filter(aperture_sum_image(image, fwhm_px), order=3)
    yc, xc = star_center(image.shape)
    noise, mean = [], []
    for sep in np.atleast_1d(sep_px):
        n_ap, step = ring_apertures(sep, fwhm_px)
        # the variance is averaged over n_turns placements of the aperture ring:
        # one placement of ~2 pi r / FWHM apertures scatters by 1 / sqrt(2 n)
        ang = (np.arange(n_ap)[None, :] + np.arange(n_turns)[:, None] / n_turns) * step
        ys, xs = yc + sep * np.sin(ang), xc + sep * np.cos(ang)
        f = map_coordinates(flux, [ys.ravel(), xs.ravel()], order=3,
                            prefilter=False).reshape(ang.shape)
        keep = np.ones(ang.shape, bool)
        for x, y in exclude_xy:
            keep &= np.hypot(xs - x, ys - y) >= 3.0 * fwhm_px
        if keep.sum(axis=1).min() < 3:  # too few apertures left: keep them all
            keep[:] = True
        f = np.where(keep, f, np.nan)
        noise.append(np.sqrt(np.mean(np.nanvar(f, axis=1, ddof=1))))
        mean.append(np.nanmean(f))
    return np.array(noise), np.array(mean)


def inject_companions(cube, psf_norm, angles_deg, sep_px, pa_deg, flux,
                      *, imlib="ndimage-fourier"):
    """Add point sources that land at given sky positions after derotation.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x) or (wavelength, time, y, x)
    psf_norm : ndarray, shape (s, s) or (wavelength, s, s)
        Unit template (`reduction.level2.psf.normalize_psf`).
    angles_deg : ndarray, shape (time,)
        Derotation angles.
    sep_px, pa_deg, flux : array_like, shape (n,)
        Separations, position angles (north through east) and fluxes
        (1-FWHM aperture, cube units; per wavelength for a 4-d cube:
        shape (n, wavelength)).
    imlib : str
        vip-hci sub-pixel shift method.

    Returns
    -------
    ndarray, same shape as ``cube``, float32
        A new cube; the input is not modified.
    """
    from vip_hci.fm import cube_inject_companions

    out = np.array(cube, dtype=np.float32)
    for sep, pa, f in zip(np.atleast_1d(sep_px), np.atleast_1d(pa_deg),
                          np.atleast_1d(flux) if np.ndim(flux) < 2 else flux):
        # vip's theta counts counter-clockwise from +x; PA from north (+y) to east (-x)
        out = cube_inject_companions(out, psf_norm, np.asarray(angles_deg, float),
                                     flevel=f if np.ndim(f) == 0 else np.asarray(f),
                                     rad_dists=[float(sep)], theta=float(pa) + 90.0,
                                     imlib=imlib, copy_array=False)
    return out.astype(np.float32, copy=False)


def throughput(cube, angles_deg, psf_norm, fwhm_px, algorithm, sep_px, flux,
               *, n_branches=3, rad_sep_fwhm=3.0, image_no_fc=None):
    """Fraction of a point source's flux that survives the speckle subtraction.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x) or (wavelength, time, y, x)
    angles_deg : ndarray, shape (time,)
    psf_norm : ndarray
        Unit template.
    fwhm_px : float
    algorithm : callable
        ``algorithm(cube, angles_deg) -> image (y, x)``, the processing measured.
    sep_px : ndarray, shape (n,)
        Separations of the fake companions.
    flux : ndarray, shape (n,) (or (n, wavelength))
        Injected flux per separation (aim at S/N of tens: bright enough to
        measure, faint enough not to bias the PCA).
    n_branches : int
        Azimuthal branches, each injected and processed separately.
    rad_sep_fwhm : float
        Minimum radial spacing of companions injected together.
    image_no_fc : ndarray, shape (y, x), optional
        The algorithm's result without fake companions (computed if None).

    Returns
    -------
    ndarray, shape (n_branches, n), float
        Throughput per branch and separation.
    """
    from scipy.ndimage import map_coordinates

    sep_px = np.atleast_1d(np.asarray(sep_px, dtype=float))
    flux = np.asarray(flux, dtype=float)
    if image_no_fc is None:
        image_no_fc = algorithm(cube, angles_deg)
    base = aperture_sum_image(image_no_fc, fwhm_px)
    yc, xc = star_center(image_no_fc.shape)
    # companions closer than rad_sep_fwhm go to different passes
    n_pass = max(1, int(np.ceil(rad_sep_fwhm * fwhm_px / np.min(np.diff(sep_px)))))\
        if sep_px.size > 1 else 1
    n_pass = min(n_pass, sep_px.size)
    injected = flux if flux.ndim == 1 else flux.mean(axis=1)
    result = np.full((n_branches, sep_px.size), np.nan)
    for branch in range(n_branches):
        for start in range(n_pass):
            idx = np.arange(start, sep_px.size, n_pass)
            # a slight spiral keeps the passes from sampling one azimuth only
            pa = 360.0 * branch / n_branches + 15.0 * start / n_pass
            fc_cube = inject_companions(cube, psf_norm, angles_deg, sep_px[idx],
                                        np.full(idx.size, pa), flux[idx])
            frame = algorithm(fc_cube, angles_deg)
            got = aperture_sum_image(frame, fwhm_px) - base
            x = xc - sep_px[idx] * np.sin(np.radians(pa))
            y = yc + sep_px[idx] * np.cos(np.radians(pa))
            result[branch, idx] = map_coordinates(got, [y, x], order=3) / injected[idx]
    return result


def contrast_curve(cube, angles_deg, psf_norm, star_flux, fwhm_px, algorithm, *,
                   pixscale_arcsec, sigma=5.0, n_branches=3, rad_sep_fwhm=3.0,
                   fc_snr=50.0, inner_radius_fwhm=1.0, image_no_fc=None, exclude_xy=()):
    """Sigma-equivalent detection limit (contrast) versus separation.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x) or (wavelength, time, y, x)
    angles_deg : ndarray, shape (time,)
    psf_norm : ndarray
        Unit template (`reduction.level2.psf.normalize_psf`).
    star_flux : float
        Star flux in a 1-FWHM aperture, cube units.
    fwhm_px : float
    algorithm : callable
        ``algorithm(cube, angles_deg) -> image (y, x)``.
    pixscale_arcsec : float
    sigma : float
        Gaussian-equivalent confidence (5).
    n_branches : int
    rad_sep_fwhm : float
    fc_snr : float
        Fake companion flux in units of the local aperture noise.
    inner_radius_fwhm : float
        First separation.
    image_no_fc : ndarray, shape (y, x), optional
        Algorithm result without fake companions (computed if None).
    exclude_xy : sequence of (x, y)
        Positions of detected sources, left out of the noise (`noise_per_separation`).

    Returns
    -------
    `astropy.table.Table`
        Columns ``sep_px``, ``sep_arcsec``, ``noise`` (aperture flux),
        ``throughput``, ``contrast_gauss`` (flux ratio, Gaussian sigma),
        ``contrast_5sigma`` (flux ratio, Student-t corrected),
        ``contrast_mag_5sigma``; one row per pixel of separation from
        ``inner_radius_fwhm`` FWHM to the frame edge minus one FWHM.

    Raises
    ------
    InputShapeError
        If the frame leaves no separation to sample.
    """
    from astropy.table import Table

    if image_no_fc is None:
        image_no_fc = algorithm(cube, angles_deg)
    half = min(image_no_fc.shape) // 2
    sep = np.arange(np.ceil(inner_radius_fwhm * fwhm_px), half - fwhm_px, 1.0)
    if sep.size < 2:
        raise InputShapeError("frame too small for a contrast curve", image_no_fc.shape)
    noise, _ = noise_per_separation(image_no_fc, sep, fwhm_px, exclude_xy=exclude_xy)
    # fake companions one FWHM apart, throughput interpolated in between
    sep_fc = np.arange(sep[0], sep[-1] + 1e-9, fwhm_px)
    flux_fc = fc_snr * np.interp(sep_fc, sep, noise)
    if np.ndim(star_flux):
        flux_fc = flux_fc[:, None] * np.asarray(star_flux)[None] / np.mean(star_flux)
    thr = throughput(cube, angles_deg, psf_norm, fwhm_px, algorithm, sep_fc, flux_fc,
                     n_branches=n_branches, rad_sep_fwhm=rad_sep_fwhm,
                     image_no_fc=image_no_fc)
    thr_sep = np.interp(sep, sep_fc, np.nanmean(thr, axis=0))
    star = float(np.mean(star_flux))
    with np.errstate(divide="ignore", invalid="ignore"):
        gauss = np.where(thr_sep > 0, sigma * noise / thr_sep / star, np.nan)
        student = np.where(thr_sep > 0,
                           student_threshold(sep, fwhm_px, sigma) * noise / thr_sep / star,
                           np.nan)
    return Table({"sep_px": sep, "sep_arcsec": sep * pixscale_arcsec, "noise": noise,
                  "throughput": thr_sep, "contrast_gauss": gauss,
                  "contrast_5sigma": student,
                  "contrast_mag_5sigma": flux_ratio_to_mag(student)})
