"""HCI-FITS files as the DIVA archive serves them (Vigan et al. 2017, Choquet et al. 2014).

One primary HDU (metadata only) and six extensions: DATA_INFORMATION (table of
the data set), REDUCED_DATA (final image), SNR_MAP, SENSITIVITY_MAP (5-sigma
contrast per pixel), DETECTION_LIMIT (table: separation, contrast) and
SOURCE_DETECTION (table of candidates). Images are north up, east left, with
the star on the central pixel, stated in each header (SPHERE-DATA.md).
"""
import numpy as np

__all__ = ["image_hdu", "sensitivity_map", "write_hci_fits"]

_CANDIDATE_COLUMNS = (  # (key, FITS column, unit)
    ("sep_arcsec", "Sep", "arcsec"), ("sep_err_arcsec", "Sep_err", "arcsec"),
    ("pa_deg", "PA", "deg"), ("pa_err_deg", "PA_err", "deg"),
    ("dra_arcsec", "dRA", "arcsec"), ("ddec_arcsec", "dDEC", "arcsec"),
    ("snr", "SNR", ""), ("contrast_mag", "Contrast", "mag"),
    ("contrast_err_mag", "Contrast_err", "mag"), ("x", "X", "pix"), ("y", "Y", "pix"),
)


def sensitivity_map(shape, sep_px, contrast):
    """Contrast limit of every pixel, interpolated from a radial curve.

    Parameters
    ----------
    shape : tuple of int
        (y, x).
    sep_px, contrast : ndarray, shape (n,)
        The detection-limit curve.

    Returns
    -------
    ndarray, shape (y, x), float32
        NaN outside the curve's separations.
    """
    from .geometry import star_center

    yc, xc = star_center(shape)
    yy, xx = np.indices(shape)
    rad = np.hypot(yy - yc, xx - xc)
    out = np.interp(rad, sep_px, contrast, left=np.nan, right=np.nan)
    return out.astype(np.float32)


def image_hdu(data, name, pixscale_arcsec, bunit):
    """Image extension stating the star pixel, the orientation and a TAN WCS.

    Parameters
    ----------
    data : ndarray, shape (y, x)
        North-up, east-left image, star on (ny // 2, nx // 2).
    name : str
        Extension name.
    pixscale_arcsec : float
    bunit : str

    Returns
    -------
    astropy.io.fits.ImageHDU
        float32 data; ``STARX``/``STARY`` 0-based, ``CRPIX1/2`` 1-based.
    """
    from astropy.io import fits

    from .geometry import star_center

    hdu = fits.ImageHDU(np.asarray(data, dtype=np.float32), name=name)
    yc, xc = star_center(np.shape(data))
    h = hdu.header
    h["BUNIT"] = bunit
    h["STARX"], h["STARY"] = xc, yc
    h.comments["STARX"], h.comments["STARY"] = "star x, 0-based pixel", "star y, 0-based pixel"
    h["PIXSCAL"] = (pixscale_arcsec, "arcsec/pixel")
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRPIX1"], h["CRPIX2"] = xc + 1.0, yc + 1.0
    h["CDELT1"], h["CDELT2"] = -pixscale_arcsec / 3600.0, pixscale_arcsec / 3600.0
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["ORIENT"] = ("north up, east left", "image orientation")
    return hdu


def write_hci_fits(path, result, *, target_name="", ra_deg=None, dec_deg=None,
                   filter_name="", wavelength_um=None, epoch_mjd=None, extra_header=None,
                   overwrite=False):
    """Write a level-2 result as an HCI-FITS file.

    Parameters
    ----------
    path : str or path-like
    result : reduction.level2.postprocess.Level2Result
    target_name, filter_name : str
    ra_deg, dec_deg : float, optional
        Star position (ICRS); sets CRVAL1/2 and the candidates' sky offsets.
    wavelength_um : float, optional
    epoch_mjd : float, optional
    extra_header : dict, optional
        More primary keywords (e.g. ``ESO PRO ...`` provenance).
    overwrite : bool

    Returns
    -------
    astropy.io.fits.HDUList
        The list written (closed file).

    Raises
    ------
    OSError
        If the file exists and ``overwrite`` is False.
    """
    from astropy.io import fits
    from astropy.table import Table

    primary = fits.PrimaryHDU()
    h = primary.header
    h["OBJECT"] = target_name
    h["FILTER"] = filter_name
    h["HCIALGO"] = (result.params.algorithm, "speckle subtraction")
    if result.ncomp is not None:
        h["HCINCOMP"] = (result.ncomp, "principal components")
    h["FWHM"] = (result.fwhm_px, "PSF FWHM, pixels")
    h["STARFLUX"] = (result.star_flux, "star flux in 1-FWHM aperture")
    h["SNRTHR"] = (result.params.snr_threshold, "detection threshold, S/N")
    if ra_deg is not None:
        h["RA"], h["DEC"] = ra_deg, dec_deg
    if epoch_mjd is not None:
        h["MJD-OBS"] = epoch_mjd
    for key, value in (extra_header or {}).items():
        h[key] = value

    info = Table({"TARGET": [target_name], "FILTER": [filter_name],
                  "WAVELENGTH": [np.nan if wavelength_um is None else wavelength_um],
                  "PIXSCALE": [result.pixscale_arcsec], "FWHM": [result.fwhm_px],
                  "ALGORITHM": [result.params.algorithm],
                  "NCOMP": [-1 if result.ncomp is None else result.ncomp],
                  "EPOCH_MJD": [np.nan if epoch_mjd is None else epoch_mjd]})
    info["WAVELENGTH"].unit, info["PIXSCALE"].unit, info["FWHM"].unit = "um", "arcsec", "pix"

    images = [image_hdu(result.image, "REDUCED_DATA", result.pixscale_arcsec, "ADU"),
              image_hdu(result.snr_map, "SNR_MAP", result.pixscale_arcsec, ""),
              image_hdu(sensitivity_map(result.image.shape, result.contrast["sep_px"],
                                         result.contrast["contrast_5sigma"]),
                         "SENSITIVITY_MAP", result.pixscale_arcsec, "")]
    if ra_deg is not None:
        for hdu in images:
            hdu.header["CRVAL1"], hdu.header["CRVAL2"] = ra_deg, dec_deg

    limit = Table({"SEPARATION": result.contrast["sep_arcsec"],
                   "CONTRAST": result.contrast["contrast_5sigma"],
                   "CONTRAST_MAG": result.contrast["contrast_mag_5sigma"],
                   "THROUGHPUT": result.contrast["throughput"]})
    limit["SEPARATION"].unit, limit["CONTRAST_MAG"].unit = "arcsec", "mag"

    sources = Table({col: np.array([c[key] for c in result.candidates], dtype=float)
                     for key, col, _ in _CANDIDATE_COLUMNS})
    for _, col, unit in _CANDIDATE_COLUMNS:
        sources[col].unit = unit or None

    hdul = fits.HDUList([primary, fits.table_to_hdu(info), *images,
                         fits.table_to_hdu(limit), fits.table_to_hdu(sources)])
    for hdu, name in zip(hdul[1:], ["DATA_INFORMATION", "REDUCED_DATA", "SNR_MAP",
                                     "SENSITIVITY_MAP", "DETECTION_LIMIT",
                                     "SOURCE_DETECTION"]):
        hdu.name = name
    hdul.writeto(path, overwrite=overwrite)
    return hdul
