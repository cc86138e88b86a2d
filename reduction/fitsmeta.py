"""Headers of the products: raw keywords kept, ESO PRO and provenance added.

Keywords follow the ESO data interface dictionary where it has one
(``ESO PRO CATG``, ``ESO PRO REC1 ID``, ``... PIPE ID``, ``... PARAMi NAME/VALUE``,
``... RAWi NAME/CATG``, ``... CALi NAME/CATG``); what it lacks (star position,
axis order, angle convention) gets short self-explaining keywords.
"""
from .recipes import PIPELINE_NAME, PIPELINE_VERSION, params_dict

__all__ = ["product_header", "flatten_params", "mjd_to_isot"]

# Keywords of the raw header that describe its data array, not the observation.
_STRUCTURAL = ("BZERO", "BSCALE", "BLANK", "BUNIT", "CHECKSUM", "DATASUM", "DATE")


def mjd_to_isot(mjd_utc):
    """ISO 8601 UTC string (millisecond precision) of an MJD."""
    from astropy.time import Time

    return Time(float(mjd_utc), format="mjd", scale="utc").isot


def flatten_params(params, prefix=""):
    """Recipe parameters as ``{'centring.r_min_px': 15.0, ...}``."""
    out = {}
    for key, value in params_dict(params).items() if prefix == "" else params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


def _card_value(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def product_header(raw_header, recipe, *, raw_inputs, calib_inputs=(), date_mjd):
    """Primary header of a product.

    Parameters
    ----------
    raw_header : `astropy.io.fits.Header` or None
        Header of the reference raw file (the first OBJECT file, or the first
        calibration file); every keyword is kept except those describing its
        data array.
    recipe : `~reduction.recipes.Recipe`
    raw_inputs : list of (str, str)
        (ARCFILE, DPR TYPE) of each raw input.
    calib_inputs : list of (str, str)
        (file name, product type) of each calibration product used.
    date_mjd : float
        MJD written as ``DATE``: taken from the inputs (end of the last input),
        not the wall clock, so the same inputs give the same bytes.

    Returns
    -------
    header : `astropy.io.fits.Header`
    """
    from astropy.io import fits

    hdr = fits.Header() if raw_header is None else raw_header.copy(strip=True)
    for key in _STRUCTURAL:
        hdr.remove(key, ignore_missing=True, remove_all=True)
    for key in [k for k in hdr if k.startswith("ESO PRO ")]:
        hdr.remove(key, remove_all=True)  # upstream PRO keywords would be confused with ours
    hdr["DATE"] = (mjd_to_isot(date_mjd), "end of the last input (reproducible)")
    hdr["HIERARCH ESO PRO CATG"] = recipe.pro_catg
    hdr["HIERARCH ESO PRO TYPE"] = "REDUCED"
    hdr["HIERARCH ESO PRO REC1 ID"] = (recipe.name, "recipe")
    hdr["HIERARCH ESO PRO REC1 VERS"] = (recipe.version, "recipe version")
    hdr["HIERARCH ESO PRO REC1 PIPE ID"] = (f"{PIPELINE_NAME}/{PIPELINE_VERSION}", "pipeline")
    for i, (name, value) in enumerate(flatten_params(recipe.params).items(), start=1):
        hdr[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"] = name
        hdr[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"] = _card_value(value)
    for i, (arcfile, dpr_type) in enumerate(raw_inputs, start=1):
        hdr[f"HIERARCH ESO PRO REC1 RAW{i} NAME"] = arcfile
        hdr[f"HIERARCH ESO PRO REC1 RAW{i} CATG"] = dpr_type
    for i, (name, catg) in enumerate(calib_inputs, start=1):
        hdr[f"HIERARCH ESO PRO REC1 CAL{i} NAME"] = name
        hdr[f"HIERARCH ESO PRO REC1 CAL{i} CATG"] = catg
    hdr["HIERARCH ESO PRO DATANCOM"] = (len(raw_inputs), "number of raw inputs")
    return hdr
