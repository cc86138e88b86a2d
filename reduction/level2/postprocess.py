"""Level-2 post-processing of one sequence: images, S/N map, limits, candidates."""
import dataclasses
import functools

import numpy as np

from .exceptions import InputShapeError
from .geometry import crop_center
from .params import Level2Params

__all__ = ["Level2Result", "make_algorithm", "run_postprocess", "candidate_spectra"]


@dataclasses.dataclass(frozen=True)
class Level2Result:
    """What `run_postprocess` produces.

    Attributes
    ----------
    image : ndarray, shape (y, x), float32
        Final north-up, east-left image, star on (ny // 2, nx // 2).
    channel_images : ndarray, shape (wavelength, y, x), or None
        Per-channel ADI images of a 4-d cube (None for 3-d cubes and PCA-ASDI).
    snr_map : ndarray, shape (y, x), float32
    contrast : `astropy.table.Table`
        See `reduction.level2.contrast.contrast_curve`.
    candidates : list of dict
        See `reduction.level2.detection.find_candidates`; ``flux``,
        ``throughput`` and ``contrast`` come from the negative-fake-companion
        fit (`reduction.level2.detection.with_flux`).
    fwhm_px : float
    star_flux : float
        Star flux in a 1-FWHM aperture (mean over channels).
    ncomp : int or None
        Components used (None for stack and median).
    pixscale_arcsec : float
    params : Level2Params
    """

    image: np.ndarray
    channel_images: np.ndarray | None
    snr_map: np.ndarray
    contrast: object
    candidates: list
    fwhm_px: float
    star_flux: float
    ncomp: int | None
    pixscale_arcsec: float
    params: Level2Params


def make_algorithm(params, n_frames, fwhm_px, wavelengths_um=None):
    """The speckle subtraction as ``f(cube, angles_deg) -> image``.

    Parameters
    ----------
    params : Level2Params
    n_frames : int
        Frames per channel (for the default ncomp).
    fwhm_px : float
    wavelengths_um : ndarray, optional
        Needed by "pca_asdi".

    Returns
    -------
    algorithm : callable
        Accepts (time, y, x) cubes, or (wavelength, time, y, x) cubes whose
        channels are processed one by one and averaged ("pca_asdi" processes
        them jointly: in ``asdi_mode`` "single" by `reduction.level2.asdi.pca_asdi`,
        whose image covers only the field every rescaled channel fills, a
        disc of radius ``(n // 2) wavelength_min / wavelength_max``; "double"
        by vip-hci).
    ncomp : int or None
    """
    from . import psfsub

    rot = {"imlib": params.imlib, "interpolation": params.interpolation}
    ncomp = params.ncomp or psfsub.default_ncomp(n_frames)
    mask_px = int(round(params.mask_center_fwhm * fwhm_px))
    if params.algorithm == "stack":
        adi, ncomp = functools.partial(psfsub.stack_adi, **rot), None
    elif params.algorithm == "median":
        adi, ncomp = functools.partial(psfsub.median_adi, collapse=params.collapse, **rot), None
    elif params.algorithm == "pca":
        adi = functools.partial(psfsub.pca_adi, ncomp=ncomp, collapse=params.collapse,
                                mask_center_px=mask_px, **rot)
    elif params.algorithm == "pca_annular":
        adi = functools.partial(psfsub.pca_adi_annular, ncomp=ncomp, fwhm_px=fwhm_px,
                                collapse=params.collapse, radius_int_px=mask_px, **rot)
    else:
        if wavelengths_um is None:
            raise InputShapeError("pca_asdi needs wavelengths_um")
        if params.ncomp is None:
            ncomp = psfsub.default_ncomp_asdi(np.size(wavelengths_um), n_frames)
        if params.asdi_mode == "single":
            # the fast single-pass PCA-ASDI (same model as vip-hci's, 10-30x faster)
            from . import asdi

            return functools.partial(asdi.pca_asdi, wavelengths_um=wavelengths_um,
                                     ncomp=ncomp, collapse=params.collapse,
                                     mask_center_px=mask_px, **rot), ncomp
        return functools.partial(psfsub.pca_asdi, wavelengths_um=wavelengths_um,
                                 ncomp=ncomp, collapse=params.collapse,
                                 mode=params.asdi_mode, **rot), ncomp

    def algorithm(cube, angles_deg):
        if cube.ndim == 4:
            return np.mean([adi(c, angles_deg) for c in cube], axis=0).astype(np.float32)
        return adi(cube, angles_deg)

    return algorithm, ncomp


def run_postprocess(cube, angles_deg, psf, pixscale_arcsec, wavelengths_um=None,
                    params=Level2Params()):
    """Speckle subtraction, S/N map, contrast curve and candidates of a sequence.

    The candidates' fluxes are fitted by negative fake companions, and the
    contrast curve is measured on the cube with the candidates removed.

    Parameters
    ----------
    cube : ndarray, shape (time, y, x) or (wavelength, time, y, x)
        Centred master cube, star on pixel (ny // 2, nx // 2).
    angles_deg : ndarray, shape (time,)
        Derotation angles theta (deg; rotating by +theta puts north up).
    psf : ndarray, shape (y, x) or (wavelength, y, x)
        Off-axis star PSF at the cube's flux scale.
    pixscale_arcsec : float
    wavelengths_um : ndarray, shape (wavelength,), optional
        Needed for 4-d cubes with "pca_asdi".
    params : Level2Params

    Returns
    -------
    Level2Result

    Raises
    ------
    InputShapeError
        On inconsistent shapes.
    reduction.level2.exceptions.PSFError
        If the PSF cannot be fitted.
    reduction.level2.exceptions.TooFewFramesError
        If ncomp is too large for the sequence.
    """
    from . import contrast, detection, snr
    from .psf import normalize_psf

    cube = crop_center(np.asarray(cube, dtype=np.float32), params.outer_radius_px)
    angles_deg = np.asarray(angles_deg, dtype=float).ravel()
    if cube.ndim not in (3, 4) or cube.shape[-3] != angles_deg.size:
        raise InputShapeError("cube must be (time, y, x) or (wavelength, time, y, x) "
                              "with one angle per frame", cube.shape)
    psf = np.asarray(psf, dtype=float)
    if cube.ndim == 4 and (psf.ndim != 3 or psf.shape[0] != cube.shape[0]):
        raise InputShapeError("a 4-d cube needs one PSF per channel", psf.shape)
    psf_norm, star_flux, fwhm = normalize_psf(psf)
    fwhm_px = float(np.mean(fwhm))
    algorithm, ncomp = make_algorithm(params, cube.shape[-3], fwhm_px, wavelengths_um)

    channel_images = None
    if cube.ndim == 4 and params.algorithm != "pca_asdi":
        channel_images = np.stack([algorithm(c, angles_deg) for c in cube])
        image = channel_images.mean(axis=0).astype(np.float32)
    else:
        image = algorithm(cube, angles_deg)
    snr_image = snr.snr_map(image, fwhm_px)
    # Sources above the threshold are real: fit their fluxes by negative fake
    # companions and measure the limits on the cube without them (their ADI
    # lobes and their leak into the principal components would raise the
    # limit on their ring: ~0.6 mag at 5x the limit on the synthetic test cube).
    inner_px = params.residual_zone_fwhm * fwhm_px
    sources = detection.find_peaks(snr_image, fwhm_px, threshold=params.snr_threshold,
                                   inner_radius_px=inner_px)
    found = detection.find_candidates(image, snr_image, fwhm_px, pixscale_arcsec,
                                      threshold=params.snr_threshold, inner_radius_px=inner_px)
    weights = np.asarray(star_flux) / np.mean(star_flux) if np.ndim(star_flux) else None
    cube_clean, fluxes = detection.remove_candidates(cube, angles_deg, psf_norm, algorithm,
                                                     found, fwhm_px, image_shape=image.shape,
                                                     channel_weights=weights)
    image_clean = algorithm(cube_clean, angles_deg) if found else image
    curve = contrast.contrast_curve(
        cube_clean, angles_deg, psf_norm, star_flux, fwhm_px, algorithm,
        pixscale_arcsec=pixscale_arcsec, sigma=params.sigma, n_branches=params.n_branches,
        rad_sep_fwhm=params.fc_rad_sep_fwhm, fc_snr=params.fc_snr, image_no_fc=image_clean,
        exclude_xy=sources)
    sep, thr = np.asarray(curve["sep_px"]), np.asarray(curve["throughput"])
    candidates = detection.find_candidates(
        image, snr_image, fwhm_px, pixscale_arcsec, star_flux=float(np.mean(star_flux)),
        throughput_fn=lambda s: np.interp(s, sep, thr),
        threshold=params.snr_threshold, inner_radius_px=inner_px)
    # same image and S/N map: the same candidates, in the same order, as ``found``
    candidates = [detection.with_flux(c, f, float(np.mean(star_flux)))
                  for c, f in zip(candidates, fluxes)]
    return Level2Result(image=image, channel_images=channel_images, snr_map=snr_image,
                        contrast=curve, candidates=candidates, fwhm_px=fwhm_px,
                        star_flux=float(np.mean(star_flux)), ncomp=ncomp,
                        pixscale_arcsec=float(pixscale_arcsec), params=params)


def candidate_spectra(cube, angles_deg, psf, wavelengths_um, result):
    """Spectrum (contrast per channel, with errors) of every candidate of a 4-d result.

    With single-pass PCA-ASDI (the IFS recipe) the channels are processed
    together exactly as for the result's image, and each channel's
    throughput is measured with fake companions of the candidate's contrast
    at its separation (`reduction.level2.spectrum.candidate_spectrum_joint`).
    Otherwise every channel is processed alone by PCA-ADI (the result's
    algorithm when it is an ADI one) as `reduction.level2.spectrum.candidate_spectrum`.

    Parameters
    ----------
    cube : ndarray, shape (wavelength, time, y, x)
        The master cube given to `run_postprocess` (cropped the same way here).
    angles_deg : ndarray, shape (time,)
    psf : ndarray, shape (wavelength, y, x)
    wavelengths_um : ndarray, shape (wavelength,)
    result : Level2Result
        `run_postprocess` of the same inputs; its candidates are measured.

    Returns
    -------
    list of dict
        One per candidate of ``result.candidates``, in order: ``wavelength_um``,
        ``contrast``, ``contrast_err``, ``throughput`` (arrays, one value per
        channel), and ``band_contrast``, ``band_contrast_err``: the flux ratio
        over the whole band, the channels' contrasts weighted by the star's
        flux in each (errors added as fully correlated: speckle noise is).

    Raises
    ------
    InputShapeError
        If the cube is not 4-d or the wavelengths do not match its channels.
    """
    from . import asdi, spectrum
    from .psf import normalize_psf

    params = result.params
    cube = crop_center(np.asarray(cube, dtype=np.float32), params.outer_radius_px)
    wavelengths_um = np.asarray(wavelengths_um, dtype=float).ravel()
    if cube.ndim != 4 or wavelengths_um.size != cube.shape[0]:
        raise InputShapeError("spectra need a (wavelength, time, y, x) cube and one "
                              "wavelength per channel", cube.shape)
    if not result.candidates:
        return []
    angles_deg = np.asarray(angles_deg, dtype=float).ravel()
    psf_norm, star_flux, fwhm = normalize_psf(np.asarray(psf, dtype=float))
    out = []
    if params.algorithm == "pca_asdi" and params.asdi_mode == "single":
        mask_px = int(round(params.mask_center_fwhm * result.fwhm_px))

        def channel_images(c, a):
            return asdi.pca_asdi(c, a, wavelengths_um, result.ncomp, imlib=params.imlib,
                                 interpolation=params.interpolation,
                                 collapse=params.collapse, mask_center_px=mask_px,
                                 channels=True)[1]

        base = channel_images(cube, angles_deg)
        for c in result.candidates:
            values = spectrum.candidate_spectrum_joint(
                cube, angles_deg, psf_norm, star_flux, fwhm, c["x"], c["y"], channel_images,
                contrast_guess=c["contrast"], base_images=base, n_branches=params.n_branches)
            out.append(_with_band(values, star_flux, wavelengths_um))
        return out
    adi = params if params.algorithm not in ("pca_asdi", "stack") else \
        dataclasses.replace(params, algorithm="pca", ncomp=None)
    algorithm, _ = make_algorithm(adi, cube.shape[1], result.fwhm_px)
    for c in result.candidates:
        values = spectrum.candidate_spectrum(cube, angles_deg, psf_norm, star_flux, fwhm,
                                             c["x"], c["y"], algorithm,
                                             n_branches=params.n_branches)
        out.append(_with_band(values, star_flux, wavelengths_um))
    return out


def _with_band(values, star_flux, wavelengths_um):
    """Spectrum dict of (contrast, error, throughput) with its band-averaged contrast."""
    contrast, error, thr = values
    ok = np.isfinite(contrast) & np.isfinite(error)
    weight = np.where(ok, np.asarray(star_flux, dtype=float), 0.0)
    total = weight.sum()
    band = float(np.sum(weight * np.nan_to_num(contrast)) / total) if total > 0 else np.nan
    band_err = float(np.sum(weight * np.nan_to_num(error)) / total) if total > 0 else np.nan
    return {"wavelength_um": wavelengths_um, "contrast": contrast, "contrast_err": error,
            "throughput": thr, "band_contrast": band, "band_contrast_err": band_err}
