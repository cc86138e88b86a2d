"""Files of the night: FITS (plain, gzip, tile-compressed) and ``truth.json``.

Everything written is reproducible: no timestamps in gzip headers, no FITS
checksums (whose comments carry the write time), fixed key order in JSON.
"""
import datetime
import gzip
import io
import json
import os

from .headers import arcfile_name, iso_utc


def night_label(mjd):
    """Night of an MJD (UTC) with the noon-UTC boundary, as 'YYYY-MM-DD'."""
    return (datetime.datetime(1858, 11, 17) + datetime.timedelta(days=mjd - 0.5)).date().isoformat()


def file_name(exp):
    """Name of an exposure's file in the output folder.

    IRDIS raw files are named by ARCFILE (plus ``.gz``/``.fz`` when
    compressed); IFS cubes are named as ``sph_ifs_science_dr`` products.
    """
    suffix = f".{exp.compression}" if exp.compression else ""
    if exp.level == "reduced":
        return f"SPHER.{iso_utc(exp.start, 3)}.sph_ifs_science_dr.fits{suffix}"
    return arcfile_name(exp.start) + suffix


def write_fits(path, data, header, compression=""):
    """Write one exposure.

    Parameters
    ----------
    path : str or path-like
    data : `numpy.ndarray`
        uint16 (written BITPIX=16, BZERO=32768) or float32.
    header : `astropy.io.fits.Header`
    compression : str
        '' plain primary HDU, 'gz' gzip of the whole file, 'fz' RICE tile
        compression in extension 1 (with the header keywords there; lossy
        for float data, as fpack).
    """
    from astropy.io import fits

    if compression == "fz":
        # lossless for integers; floats are quantised to 1/16 of their noise
        # (fpack's default) with a fixed dither seed, so the bytes are reproducible
        hdul = fits.HDUList([fits.PrimaryHDU(),
                             fits.CompImageHDU(data=data, header=header, compression_type="RICE_1",
                                               quantize_level=16.0, quantize_method=1,
                                               dither_seed=1)])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(data=data, header=header)])
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    payload = buffer.getvalue()
    if compression == "gz":
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=5) as gz:
            gz.write(payload)
        payload = out.getvalue()
    with open(path, "wb") as f:
        f.write(payload)


def file_truth(exp, name, mjd_obs):
    """Classification fields of one file (the database column names).

    Returns
    -------
    entry : dict
    """
    return {
        "arcfile": arcfile_name(exp.start), "dpr_catg": exp.dpr_catg, "dpr_type": exp.dpr_type,
        "dpr_tech": exp.dpr_tech, "arm": exp.arm, "ins_mode": exp.ins_mode, "filter": exp.filter,
        "coronagraph": exp.coronagraph, "nd_filter": exp.nd_filter, "derot_mode": exp.derot_mode,
        "dit": float(exp.dit_s), "ndit": int(exp.ndit), "night": night_label(mjd_obs),
        "level": exp.level, "sequence": exp.sequence,
    }


def write_truth(outdir, truth):
    """Write ``truth.json`` (UTF-8, indent 1) in ``outdir``; returns its path."""
    path = os.path.join(outdir, "truth.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path
