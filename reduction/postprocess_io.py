"""Level 2 on any pre-processed ADI/ASDI cube: FITS in, products out ("bring your own cube").

The thin file layer of ``spheredc postprocess``: read and check the FITS
inputs, call the pure `reduction.level2.run_postprocess`, write the products
into a folder. No database. Inputs follow SPHERE-DATA.md: centred cube with
the star on pixel (ny // 2, nx // 2), derotation angles theta in degrees
(rotating a frame by +theta puts north up; for pupil-tracking data of other
instruments this is the parallactic angle plus their offsets), PSF at the
cube's flux scale, wavelengths in micrometres.

Products: ``final_image.fits``, ``snr_map.fits``, ``contrast_curve.fits``
(table) and ``.png``, ``candidates.json``, ``hci.fits`` (HCI-FITS, DIVA
format), ``final_image.png`` and ``snr_map.png`` previews (asinh stretch,
north arrow, scale bar).
"""
import json
import math
import pathlib

import numpy as np

from .level2 import Level2Params, run_postprocess
from .level2.exceptions import InputFileError, InputShapeError
from .previews import write_contrast_plot, write_level2_preview

__all__ = ["SUMMARY_KEYS", "read_fits_array", "read_inputs", "candidates_summary",
           "summary_document", "write_products", "postprocess_files"]

#: Candidate keys printed by ``spheredc postprocess --json`` (the issue's contract
#: first, then uncertainties).
SUMMARY_KEYS = ("x", "y", "sep_arcsec", "pa_deg", "snr", "contrast_mag", "sep_err_arcsec",
                "pa_err_deg", "dra_arcsec", "ddec_arcsec", "contrast_err_mag")


def read_fits_array(path, what):
    """The first data array of a FITS file, as float.

    Parameters
    ----------
    path : str or path-like
    what : str
        Role of the file in messages ("cube", "angles", ...).

    Returns
    -------
    ndarray

    Raises
    ------
    InputFileError
        If the file is missing, not FITS, holds no image data or non-finite values.
    """
    from astropy.io import fits

    path = pathlib.Path(path)
    if not path.is_file():
        raise InputFileError(f"{what} file not found", str(path))
    try:
        with fits.open(path, memmap=False) as hdul:
            data = next((h.data for h in hdul if getattr(h, "is_image", False)
                         and h.data is not None and h.data.size), None)
            if data is None:
                raise InputFileError(f"no image data in the {what} file", str(path))
            data = np.array(data, dtype=np.float32 if what == "cube" else float)
    except InputFileError:
        raise
    except (OSError, ValueError, TypeError) as exc:  # astropy's errors on non-FITS input
        raise InputFileError(f"cannot read the {what} file as FITS ({exc})", str(path)) from exc
    if not np.isfinite(data).all():
        n_bad = int(np.size(data) - np.isfinite(data).sum())
        raise InputFileError(f"{n_bad} NaN or infinite values in the {what}", str(path))
    return data


def read_inputs(cube_path, angles_path, psf_path, wavelengths_path=None):
    """Read and check the inputs of a post-processing run.

    Parameters
    ----------
    cube_path, angles_path, psf_path : str or path-like
        Cube (time, y, x) or (wavelength, time, y, x); angles (time,) in
        degrees (any shape with one value per frame); PSF (y, x) or
        (wavelength, y, x) (a single 2-d PSF serves every channel).
    wavelengths_path : str or path-like, optional
        One wavelength per channel, micrometres (values above 100 are read as
        nanometres); required for 4-d cubes.

    Returns
    -------
    cube : ndarray, float32
    angles_deg : ndarray, shape (time,)
    psf : ndarray
    wavelengths_um : ndarray, shape (wavelength,), or None

    Raises
    ------
    InputFileError
        Unreadable file or non-finite values.
    InputShapeError
        Shapes that do not fit together.
    """
    cube = read_fits_array(cube_path, "cube")
    angles_deg = read_fits_array(angles_path, "angles").ravel()
    psf = read_fits_array(psf_path, "psf")
    wavelengths_um = None
    if wavelengths_path is not None:
        wavelengths_um = read_fits_array(wavelengths_path, "wavelengths").ravel()
        if np.median(wavelengths_um) > 100:
            wavelengths_um = wavelengths_um / 1000.0
    if cube.ndim not in (3, 4):
        raise InputShapeError("the cube must be (time, y, x) or (wavelength, time, y, x)",
                              cube.shape)
    if angles_deg.size != cube.shape[-3]:
        raise InputShapeError(f"{angles_deg.size} angles for {cube.shape[-3]} frames",
                              cube.shape)
    if cube.shape[-3] < 3:
        raise InputShapeError("ADI needs at least 3 frames", cube.shape)
    if psf.ndim not in (2, 3):
        raise InputShapeError("the PSF must be (y, x) or (wavelength, y, x)", psf.shape)
    if cube.ndim == 3 and psf.ndim == 3:
        if psf.shape[0] != 1:
            raise InputShapeError("a 3-d cube needs a single 2-d PSF", psf.shape)
        psf = psf[0]
    if cube.ndim == 4:
        if wavelengths_um is None:
            raise InputShapeError("a 4-d cube needs --wavelengths", cube.shape)
        if wavelengths_um.size != cube.shape[0]:
            raise InputShapeError(f"{wavelengths_um.size} wavelengths for "
                                  f"{cube.shape[0]} channels", cube.shape)
        if psf.ndim == 2:
            psf = np.repeat(psf[None], cube.shape[0], axis=0)
        elif psf.shape[0] != cube.shape[0]:
            raise InputShapeError(f"{psf.shape[0]} PSF channels for {cube.shape[0]} "
                                  "cube channels", psf.shape)
    return cube, angles_deg, psf, wavelengths_um


def _json_number(value):
    value = float(value)
    return value if math.isfinite(value) else None  # NaN is not JSON


def candidates_summary(result):
    """The candidates as JSON-ready dicts (NaN as None).

    Parameters
    ----------
    result : reduction.level2.Level2Result

    Returns
    -------
    list of dict
        Keys `SUMMARY_KEYS`; x, y are 0-based pixels of the final image.
    """
    return [{key: _json_number(c[key]) for key in SUMMARY_KEYS} for c in result.candidates]


def write_products(result, out_dir, *, inputs=None):
    """Write a level-2 result into a folder.

    Parameters
    ----------
    result : reduction.level2.Level2Result
    out_dir : str or path-like
        Created if needed; files of an earlier run are replaced.
    inputs : dict, optional
        Input file names, recorded in the headers and in ``candidates.json``.

    Returns
    -------
    dict
        Product name -> path written.

    Raises
    ------
    OSError
        If the folder cannot be written.
    """
    from astropy.io import fits
    from astropy.table import Table

    from .level2.hcifits import image_hdu, write_hci_fits

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (
        "final_image.fits", "snr_map.fits", "contrast_curve.fits", "contrast_curve.png",
        "candidates.json", "hci.fits", "final_image.png", "snr_map.png")}
    extra = {"HCIALGO": result.params.algorithm, "FWHM": result.fwhm_px,
             "HCINCOMP": -1 if result.ncomp is None else result.ncomp}
    for key, value in (inputs or {}).items():
        extra[f"IN{key.upper()[:6]}"] = pathlib.Path(value).name[:68]
    for name, data, bunit in (("final_image.fits", result.image, "ADU"),
                              ("snr_map.fits", result.snr_map, "")):
        hdu = image_hdu(data, "PRIMARY", result.pixscale_arcsec, bunit)
        primary = fits.PrimaryHDU(hdu.data, hdu.header)
        primary.header.update(extra)
        primary.writeto(paths[name], overwrite=True)
    table = Table(result.contrast, copy=True)
    table.meta.update(extra)
    table["sep_arcsec"].unit = "arcsec"
    table["contrast_mag_5sigma"].unit = "mag"
    table.write(paths["contrast_curve.fits"], overwrite=True)
    write_contrast_plot(result.contrast, paths["contrast_curve.png"],
                        title=f"{result.params.algorithm} (ncomp {result.ncomp}), "
                              "5-sigma detection limit")
    write_hci_fits(paths["hci.fits"], result, extra_header=extra, overwrite=True)
    write_level2_preview(result.image, paths["final_image.png"],
                         title="final image (north up, east left)",
                         pixscale_arcsec=result.pixscale_arcsec, label="ADU",
                         candidates=result.candidates)
    write_level2_preview(result.snr_map, paths["snr_map.png"],
                         title="S/N map (Mawet et al. 2014)",
                         pixscale_arcsec=result.pixscale_arcsec, label="S/N",
                         candidates=result.candidates, symmetric=True)
    with open(paths["candidates.json"], "w") as f:
        json.dump(summary_document(result, inputs=inputs), f, indent=1)
    return {name: str(path) for name, path in paths.items()}


def summary_document(result, *, inputs=None, products=None):
    """The JSON document of a run: candidates first, then the run's parameters.

    Parameters
    ----------
    result : reduction.level2.Level2Result
    inputs, products : dict, optional

    Returns
    -------
    dict
    """
    return {"candidates": candidates_summary(result),
            "algorithm": result.params.algorithm, "ncomp": result.ncomp,
            "fwhm_px": _json_number(result.fwhm_px),
            "pixscale_arcsec": result.pixscale_arcsec,
            "snr_threshold": result.params.snr_threshold,
            "inputs": {k: str(v) for k, v in (inputs or {}).items()},
            "products": products or {}}


def postprocess_files(cube_path, angles_path, psf_path, pixscale_arcsec, out_dir, *,
                      wavelengths_path=None, params=Level2Params()):
    """Read FITS inputs, run level 2, write the products.

    Parameters
    ----------
    cube_path, angles_path, psf_path : str or path-like
        See `read_inputs`.
    pixscale_arcsec : float
        Pixel scale (arcsec/pixel), > 0.
    out_dir : str or path-like
    wavelengths_path : str or path-like, optional
    params : reduction.level2.Level2Params

    Returns
    -------
    dict
        `summary_document` with ``products`` filled in, and
        ``image_origin_in_cube_px``: (x, y) of the final image's pixel (0, 0)
        in the input frames (non-zero when ``params.outer_radius_px`` crops).

    Raises
    ------
    InputFileError, InputShapeError
        Bad input files.
    reduction.level2.exceptions.Level2Error
        If the processing cannot run on these data (PSF fit, too few frames).
    OSError
        If the products cannot be written.
    """
    if not pixscale_arcsec > 0:
        raise InputShapeError(f"the pixel scale must be positive, not {pixscale_arcsec}")
    cube, angles_deg, psf, wavelengths_um = read_inputs(cube_path, angles_path, psf_path,
                                                        wavelengths_path)
    result = run_postprocess(cube, angles_deg, psf, pixscale_arcsec,
                             wavelengths_um=wavelengths_um, params=params)
    inputs = {"cube": cube_path, "angles": angles_path, "psf": psf_path}
    if wavelengths_path is not None:
        inputs["wavelengths"] = wavelengths_path
    products = write_products(result, out_dir, inputs=inputs)
    doc = summary_document(result, inputs=inputs, products=products)
    # where the final image's pixel (0, 0) lies in the input frames (--radius crops)
    doc["image_origin_in_cube_px"] = [(n_in - n_out) // 2 for n_in, n_out in
                                      zip(cube.shape[:-3:-1], result.image.shape[::-1])]
    return doc
