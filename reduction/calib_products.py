"""Calibration products: master backgrounds, master flats, bad-pixel maps.

Each is an archived product (level 0, no sequence) named by the digest of its
recipe, parameters and input files, so every sequence whose associations point
to the same files reuses it instead of recomputing it. A new one is written
atomically and registered with its inputs and its own run in one transaction.
"""
import dataclasses
from pathlib import Path

import numpy as np

from .fitsmeta import product_header
from .products import ProductFile, register_products, write_fits
from .provenance import finish_run, start_run
from .recipes import BAD_PIXEL_MAP, MASTER_BACKGROUND, MASTER_FLAT, inputs_digest
from .sequence_io import read_frames, read_header

__all__ = ["CalibProduct", "master_background_product", "master_flat_product",
           "bad_pixel_map_product"]


@dataclasses.dataclass(frozen=True)
class CalibProduct:
    """A calibration product and its arrays.

    Attributes
    ----------
    product_id, product_type, file_name, checksum : str
    path : `pathlib.Path`
        Absolute path of the FITS file.
    data : dict of str to `numpy.ndarray`
        Arrays by extension name ('PRIMARY', and 'NONLIN' for flats).
    created : bool
        True when this call wrote it, False when it was reused.
    mjd_end : float
        End of its last raw input (MJD, UTC).
    """
    product_id: str
    product_type: str
    file_name: str
    checksum: str
    path: Path
    data: dict
    created: bool
    mjd_end: float

    def provenance(self, role):
        """A ``product_inputs`` row naming this product as an input."""
        return {"input_kind": "product", "input_checksum": self.checksum,
                "input_id": self.product_id, "role": role}


def _existing(conn, products_dir, product_id, product_type):
    row = conn.execute("SELECT file_name, path, checksum, mjd_end FROM sphere.products "
                       "WHERE product_id = %s", (product_id,)).fetchone()
    if row is None:
        return None
    from astropy.io import fits

    path = Path(products_dir) / row[1]
    with fits.open(path, memmap=False) as hdul:
        data = {h.name: np.asarray(h.data) for h in hdul if h.data is not None}
    return CalibProduct(product_id, product_type, row[0], row[2], path, data, False,
                        float(row[3]))


def _make(conn, products_dir, recipe, product_type, key, inputs, compute, meta):
    """Reuse the product of these inputs, or compute, write and register it.

    ``inputs`` are (row, role, kind) with ``row['checksum']`` and an id;
    ``compute()`` returns {extension name: array}; ``meta`` adds product columns.
    """
    from astropy.io import fits

    digest = inputs_digest(recipe, [r["checksum"] for r, _, _ in inputs])
    product_id = f"{product_type}.{key}.{digest[:16]}"
    found = _existing(conn, products_dir, product_id, product_type)
    if found is not None:
        return found
    run = start_run(conn, recipe, digest)
    try:
        arrays = compute()
        raw_rows = [r for r, _, kind in inputs if kind == "raw"]
        ref = raw_rows[0] if raw_rows else None
        header = product_header(read_header(ref["archive_path"]) if ref else None, recipe,
                                raw_inputs=[(r["arcfile"], r["dpr_type"]) for r in raw_rows],
                                calib_inputs=[(r["file_name"], r["product_type"])
                                              for r, _, kind in inputs if kind == "product"],
                                date_mjd=meta["mjd_end"])
        names = list(arrays)
        hdus = [fits.PrimaryHDU(arrays[names[0]], header=header)]
        hdus += [fits.ImageHDU(arrays[n], name=n) for n in names[1:]]
        file_name = f"{product_id}.fits"
        rel = Path("calib") / product_type / file_name
        checksum, size = write_fits(fits.HDUList(hdus), Path(products_dir) / rel)
        row = dict(meta, product_id=product_id, product_type=product_type, level=0,
                   sequence_id=None, version=1, is_current=True, run_id=run["run_id"],
                   recipe=recipe.name, recipe_version=recipe.version,
                   parameters=dataclasses.asdict(recipe.params), file_name=file_name,
                   path=str(rel), content_type="application/fits", checksum=checksum,
                   size_bytes=size, quality_flags=[])
        prov = [{"input_kind": kind, "input_checksum": r["checksum"],
                 "input_id": r["arcfile"] if kind == "raw" else r["product_id"], "role": role}
                for r, role, kind in inputs]
        with conn.transaction():
            register_products(conn, [ProductFile(row, prov)], supersede=False)
            finish_run(conn, run, "done")
    except BaseException as exc:
        with conn.transaction():
            finish_run(conn, run, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    data = {"PRIMARY": arrays[names[0]], **{n: arrays[n] for n in names[1:]}}
    return CalibProduct(product_id, product_type, file_name, checksum,
                        Path(products_dir) / rel, data, True, float(meta["mjd_end"]))


def _meta(rows, filt=None):
    return {"arm": "IRDIS", "filter": filt, "mjd_start": min(r["mjd_obs"] for r in rows),
            "mjd_end": max(float(r.get("mjd_end") or r["mjd_obs"]) for r in rows),
            "n_frames": int(sum(r.get("ndit") or 1 for r in rows)), "pixscale_arcsec": 0.01225}


def master_background_product(conn, products_dir, rows, dit_key):
    """Master background of one DIT from its association rows (reused when it exists).

    Parameters
    ----------
    conn : `psycopg.Connection`
    products_dir : `pathlib.Path`
        ``settings.products_dir``.
    rows : list of dict
        Background files of one kind (``archive_path``, ``checksum``, ``arcfile``,
        ``dpr_type``, ``mjd_obs``, ``ndit``).
    dit_key : str
        DIT with 2 decimals ('32.00').

    Returns
    -------
    product : `CalibProduct`
        ``data['PRIMARY']``: shape (1024, 2048), float32, ADU per frame.
    """
    from reduction.level1 import master_background

    def compute():
        frames = np.concatenate([read_frames(r["archive_path"]) for r in rows])
        return {"PRIMARY": master_background(frames, params=MASTER_BACKGROUND.params)}

    return _make(conn, products_dir, MASTER_BACKGROUND, "master_background", dit_key,
                 [(r, "background", "raw") for r in rows], compute, _meta(rows))


def master_flat_product(conn, products_dir, rows, filt):
    """Master flat of one filter from FLAT,LAMP files at several DITs (lamp levels).

    Parameters
    ----------
    conn, products_dir
        As `master_background_product`.
    rows : list of dict
        FLAT,LAMP association rows (at least two different DITs).
    filt : str
        ``INS COMB IFLT``.

    Returns
    -------
    product : `CalibProduct`
        ``data['PRIMARY']``: normalised flat (1024, 2048); ``data['NONLIN']``:
        relative residual of the per-pixel linear fit.

    Raises
    ------
    reduction.level1.exceptions.CalibrationError
        If fewer than two lamp levels are given.
    """
    from reduction.level1 import master_flat

    def compute():
        dits = sorted({round(float(r["dit"]), 2) for r in rows})
        levels = [np.concatenate([read_frames(r["archive_path"]) for r in rows
                                  if round(float(r["dit"]), 2) == d]) for d in dits]
        fit = master_flat(levels, dits)
        return {"PRIMARY": fit.flat, "SLOPE": fit.slope_adu_s, "NONLIN": fit.nonlinearity}

    return _make(conn, products_dir, MASTER_FLAT, "master_flat", filt,
                 [(r, "flat", "raw") for r in rows], compute, _meta(rows, filt))


def bad_pixel_map_product(conn, products_dir, background, flat):
    """Static bad-pixel map from a master background and (optionally) a master flat.

    Parameters
    ----------
    conn, products_dir
        As `master_background_product`.
    background : `CalibProduct`
        Master background of the OBJECT DIT (the longest exposure: hot pixels show).
    flat : `CalibProduct` or None
        Master flat (dead and non-linear pixels); None: from the dark alone.

    Returns
    -------
    product : `CalibProduct`
        ``data['PRIMARY']``: uint8 (1024, 2048), 1 for a bad pixel.
    """
    from reduction.level1 import bad_pixel_map

    def compute():
        dark = background.data["PRIMARY"]
        if flat is None:
            bad = bad_pixel_map(dark, np.ones_like(dark), params=BAD_PIXEL_MAP.params)
        else:
            bad = bad_pixel_map(dark, flat.data["PRIMARY"], nonlinearity=flat.data["NONLIN"],
                                params=BAD_PIXEL_MAP.params)
        return {"PRIMARY": bad.astype(np.uint8)}

    inputs = [(_as_row(background), "background", "product")]
    if flat is not None:
        inputs.append((_as_row(flat), "flat", "product"))
    key = "dark" if flat is None else "dark_flat"
    end = max(p.mjd_end for p in (background, flat) if p is not None)
    return _make(conn, products_dir, BAD_PIXEL_MAP, "bad_pixel_map", key, inputs, compute,
                 {"arm": "IRDIS", "mjd_end": end})


def _as_row(product):
    return {"checksum": product.checksum, "product_id": product.product_id,
            "file_name": product.file_name, "product_type": product.product_type}
