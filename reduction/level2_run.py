"""Level 2 of one sequence inside the engine: the file and database side.

`reduce_level2` reads the sequence's current master-cube and PSF products,
runs `reduction.level2.run_postprocess` per filter (IRDIS DBI: one result per
field; CI: both fields of the same filter processed together; IFS: the 39
channels together by PCA-ASDI), writes the final image, S/N map, contrast
curve (FITS table + PNG), HCI-FITS file and previews, and for IFS the
spectrum of every candidate (a VOTable of type ``spectrum``, served by SSA,
named ``<candidate_id>.spectrum.v<version>``), and registers them with the
run, the ``sphere.detection_limits`` rows and the ``sphere.candidates`` rows
in one transaction; the sequence's earlier rows (and spectra) are replaced
in that transaction. For a reduction request
(`reduction.targets.ProductTarget.for_request`) it reads the request's own
master cube and writes private products apart, nothing current replaced and
no table row. Like level 1 it never raises for the sequence's own
problems: the run is recorded ``failed``.
"""
import dataclasses
import re
import time
from pathlib import Path

import numpy as np

from .recipes import LEVEL2, inputs_digest, recipes_for_arm
from .targets import ARCHIVE

__all__ = ["ALGORITHM_NAMES", "current_level1", "level1_rows", "level2_digest", "field_filters",
           "reduce_level2", "candidate_rows", "limit_rows"]

#: Name recorded in ``algorithm`` columns for each `Level2Params.algorithm`.
ALGORITHM_NAMES = {"pca": "pca_adi", "pca_annular": "pca_adi_annular", "median": "median_adi",
                   "stack": "no_adi", "pca_asdi": "pca_asdi"}
_WCS_KEYS = ("CTYPE", "CRPIX", "CRVAL", "CDELT", "CUNIT", "CD1_", "CD2_", "PC1_", "PC2_")
_LEVEL1_KEYS = ("AXORDER", "STAR_X", "STAR_Y", "ANGCONV", "PIXSCAL", "BUNIT")


def current_level1(conn, sequence_id):
    """The sequence's current master-cube and PSF-cube product rows.

    Returns
    -------
    rows : dict
        ``{'master_cube': row, 'psf_cube': row}`` (dicts); a type is missing
        when the sequence has no current product of it.
    """
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM sphere.products WHERE sequence_id = %s AND is_current AND "
            "product_type IN ('master_cube', 'psf_cube') ORDER BY version",
            (sequence_id,)).fetchall()
    return {r["product_type"]: r for r in rows}


def level1_rows(conn, product_ids):
    """The master-cube and PSF-cube rows among given products (current or not).

    Parameters
    ----------
    conn : `psycopg.Connection`
    product_ids : iterable of str
        ``sphere.products.product_id`` of a level-1 run's products.

    Returns
    -------
    rows : dict
        As `current_level1`: ``{'master_cube': row, 'psf_cube': row}``, a type
        missing when none of the products is of it.
    """
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM sphere.products WHERE product_id = ANY(%s) AND "
            "product_type IN ('master_cube', 'psf_cube') ORDER BY version",
            (list(product_ids),)).fetchall()
    return {r["product_type"]: r for r in rows}


def level2_digest(level1_rows, recipe=LEVEL2):
    """Inputs digest of a level-2 run: master-cube and PSF checksums, recipe, parameters."""
    return inputs_digest(recipe, [r["checksum"] for r in level1_rows.values()])


def field_filters(filter_name, n_fields):
    """Filter name of each result: DBI ``DB_H23`` -> ``['H2', 'H3']``; CI -> one name.

    Parameters
    ----------
    filter_name : str or None
        ``sphere.sequences.filter``.
    n_fields : int

    Returns
    -------
    names : list of str
        One per field for dual-band filters, a single name otherwise (the
        fields share the filter and are processed together).
    """
    filter_name = filter_name or "unknown"
    m = re.fullmatch(r"DB_([A-Z])(\d)(\d)", filter_name)
    if m and n_fields == 2:
        return [m[1] + m[2], m[1] + m[3]]
    if filter_name.startswith("DB_") and n_fields == 2:
        return [f"{filter_name}_left", f"{filter_name}_right"]
    return [filter_name]


def _sky_positions(ra_deg, dec_deg, dra_arcsec, ddec_arcsec):
    """Absolute ICRS positions of offsets (east, north) from the star."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    star = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
    sky = star.spherical_offsets_by(np.asarray(dra_arcsec) * u.arcsec,
                                    np.asarray(ddec_arcsec) * u.arcsec)
    return sky.ra.deg, sky.dec.deg


def candidate_rows(result, *, sequence, filter_name, product_id, epoch_mjd):
    """``sphere.candidates`` rows of one level-2 result.

    Parameters
    ----------
    result : `reduction.level2.Level2Result`
    sequence : dict
        ``sphere.sequences`` row (sequence_id, target_name, ra, dec, prog_id, release_date).
    filter_name : str
    product_id : str
        The final image the candidates were measured on.
    epoch_mjd : float
        Mid-sequence MJD (UTC).

    Returns
    -------
    rows : list of dict
        Brightest first; ``ra``/``dec`` None when the star has no position.
    """
    cands = result.candidates
    ra = dec = [None] * len(cands)
    if cands and sequence.get("ra") is not None and sequence.get("dec") is not None:
        ra, dec = _sky_positions(sequence["ra"], sequence["dec"],
                                 [c["dra_arcsec"] for c in cands],
                                 [c["ddec_arcsec"] for c in cands])
    algo = ALGORITHM_NAMES[result.params.algorithm]
    rows = []
    for i, c in enumerate(cands, start=1):
        rows.append({
            "candidate_id": f"{sequence['sequence_id']}.{filter_name}.c{i}",
            "sequence_id": sequence["sequence_id"], "product_id": product_id,
            "target_name": sequence.get("target_name"), "epoch_mjd": float(epoch_mjd),
            "filter": filter_name, "algorithm": algo,
            **{k: _finite(c[k]) for k in ("sep_arcsec", "sep_err_arcsec", "pa_deg",
                                          "pa_err_deg", "dra_arcsec", "ddec_arcsec",
                                          "contrast_mag", "contrast_err_mag", "snr")},
            "x_px": float(c["x"]), "y_px": float(c["y"]),
            "ra": None if ra[i - 1] is None else float(ra[i - 1]),
            "dec": None if dec[i - 1] is None else float(dec[i - 1]),
            "prog_id": sequence.get("prog_id"), "release_date": sequence.get("release_date")})
    return rows


def limit_rows(result, *, sequence, filter_name, product_id):
    """``sphere.detection_limits`` rows: one per separation with a finite, positive limit."""
    t = result.contrast
    algo = ALGORITHM_NAMES[result.params.algorithm]
    rows = []
    for sep, c, mag, thr in zip(t["sep_arcsec"], t["contrast_5sigma"],
                                t["contrast_mag_5sigma"], t["throughput"]):
        if not (np.isfinite(c) and c > 0):
            continue  # no limit where the noise or the throughput is undefined
        rows.append({"sequence_id": sequence["sequence_id"], "filter": filter_name,
                     "algorithm": algo, "product_id": product_id,
                     "target_name": sequence.get("target_name"),
                     "sep_arcsec": float(sep), "contrast_5sigma": float(c),
                     "contrast_mag_5sigma": float(mag), "throughput": _finite(thr),
                     "prog_id": sequence.get("prog_id"),
                     "release_date": sequence.get("release_date")})
    return rows


def _band_photometry(result, spectra):
    """The result with each candidate's contrast taken from its spectrum.

    The broadband image's photometry assumes the candidate has the star's
    spectrum (its throughput comes from fake companions of flat contrast),
    and the spectral rescaling treats a red companion differently from a flat
    one (0.27 mag too bright on the simulated night). The flux ratio over the
    band, from the spectrum whose throughput is measured channel by channel,
    does not depend on that.
    """
    from .level2.contrast import flux_ratio_to_mag

    cands = []
    for c, spec in zip(result.candidates, spectra):
        band, err = spec["band_contrast"], spec["band_contrast_err"]
        if np.isfinite(band) and band > 0:
            c = dict(c, contrast=band, contrast_mag=float(flux_ratio_to_mag(band)),
                     contrast_err_mag=float(2.5 / np.log(10) * err / band))
        cands.append(c)
    return dataclasses.replace(result, candidates=cands)


def _finite(value):
    value = float(value)
    return value if np.isfinite(value) else None


def _insert(conn, table, rows):
    if not rows:
        return
    cols = list(rows[0])
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) "
                        f"VALUES ({', '.join(['%s'] * len(cols))})",
                        [[r[c] for c in cols] for r in rows])


def _catg(arm, name):
    """ESO product category of a level-2 file: ``IRD_<name>`` or ``IFS_<name>``."""
    return f"{'IFS' if arm == 'IFS' else 'IRD'}_{name}"


def _base_header(cube_header, level1, recipe, arm="IRDIS"):
    """Level-2 primary header: the master cube's observation keywords, this recipe's
    ESO PRO provenance (master cube and PSF as its input frames), no array or
    detector-offset WCS keywords."""
    from .fitsmeta import product_header

    hdr = cube_header.copy(strip=True)
    for key in list(hdr):
        if key.startswith(_WCS_KEYS) or key in _LEVEL1_KEYS or re.fullmatch(r"WAVE\d+", key):
            hdr.remove(key, ignore_missing=True, remove_all=True)
    inputs = [(level1[t]["file_name"], _catg(arm, catg)) for t, catg in
              (("master_cube", "MASTER_CUBE"), ("psf_cube", "PSF_CUBE"))]
    # DATE from the inputs (end of the sequence), not the wall clock: same bytes on rerun
    return product_header(hdr, recipe, raw_inputs=inputs,
                          date_mjd=level1["master_cube"]["mjd_end"])


def _image_hdul(data, header, pixscale_arcsec, sequence, bunit, pro_catg):
    """Primary-HDU FITS of a north-up image with a TAN WCS centred on the star."""
    from astropy.io import fits

    from .level2.hcifits import image_hdu

    wcs = image_hdu(data, "PRIMARY", pixscale_arcsec, bunit).header
    hdr = header.copy()
    hdr["HIERARCH ESO PRO CATG"] = pro_catg
    for key in ("BUNIT", "STARX", "STARY", "PIXSCAL", "CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2",
                "CDELT1", "CDELT2", "CUNIT1", "CUNIT2", "ORIENT"):
        hdr[key] = (wcs[key], wcs.comments[key])
    if sequence.get("ra") is not None:
        hdr["CRVAL1"], hdr["CRVAL2"] = float(sequence["ra"]), float(sequence["dec"])
        hdr["RADESYS"] = "ICRS"
    return fits.HDUList([fits.PrimaryHDU(np.asarray(data, np.float32), header=hdr)])


def _contrast_hdul(result, header, pro_catg="IRD_CONTRAST_CURVE"):
    from astropy.io import fits
    from astropy.table import Table

    table = Table(result.contrast, copy=True)
    table["sep_arcsec"].unit = "arcsec"
    table["contrast_mag_5sigma"].unit = "mag"
    hdr = header.copy()
    hdr["HIERARCH ESO PRO CATG"] = pro_catg
    hdu = fits.table_to_hdu(table)
    hdu.name = "CONTRAST"
    return fits.HDUList([fits.PrimaryHDU(header=hdr), hdu])


def _run_fields(cube, derot_deg, psf, pixscale_arcsec, wavelengths_um, filters, params):
    """``[(filter, Level2Result)]``: per field, or both fields together for one filter."""
    from reduction.level2 import run_postprocess

    if len(filters) == cube.shape[0]:
        return [(f, run_postprocess(cube[k], derot_deg, psf[k], pixscale_arcsec,
                                    wavelengths_um=None, params=params))
                for k, f in enumerate(filters)]
    return [(filters[0], run_postprocess(cube, derot_deg, psf, pixscale_arcsec,
                                         wavelengths_um=wavelengths_um, params=params))]


def _header_wavelengths(header):
    """``WAVE1``, ``WAVE2``, ... of a master-cube header (um), in order."""
    out, k = [], 1
    while f"WAVE{k}" in header:
        out.append(float(header[f"WAVE{k}"]))
        k += 1
    return out


def _spectrum_params(cand, filter_name, epoch_mjd):
    """PARAMs of a candidate's spectrum VOTable."""
    return [("candidate_id", cand["candidate_id"], None, "meta.id", "Candidate"),
            ("target_name", cand.get("target_name"), None, "meta.id;src", "Host star"),
            ("filter", filter_name, None, "instr.filter", "IFS mode / filter"),
            ("algorithm", cand["algorithm"], None, "meta.code", "Speckle subtraction"),
            ("epoch_mjd", epoch_mjd, "d", "time.epoch", "Mid-sequence epoch (MJD, UTC)"),
            ("ra", cand.get("ra"), "deg", "pos.eq.ra;meta.main", "Candidate right ascension"),
            ("dec", cand.get("dec"), "deg", "pos.eq.dec;meta.main", "Candidate declination"),
            ("sep_arcsec", cand.get("sep_arcsec"), "arcsec", "pos.angDistance",
             "Separation from the star"),
            ("pa_deg", cand.get("pa_deg"), "deg", "pos.posAng", "Position angle (E of N)")]


def _write(conn, products_dir, seq, level1, results, header, recipe, run, spectra=None):
    """Write the products of every filter; return (ProductFiles, candidates, limits).

    ``spectra``: ``{filter: [spectrum dict per candidate]}``
    (`reduction.level2.postprocess.candidate_spectra`), written as one
    ``spectrum`` product per candidate."""
    from .previews import write_contrast_plot, write_level2_preview
    from .products import ProductFile, atomic_path, next_version, sha256_file, write_fits

    sid = seq["sequence_id"]
    cube_row = level1["master_cube"]
    version = next_version(conn, sid, "final_image")
    base = sid.replace(":", "-")
    rel_dir = Path("level2") / base / f"v{version}"
    out_dir = Path(products_dir) / rel_dir
    prov = [{"input_kind": "product", "input_checksum": r["checksum"],
             "input_id": r["product_id"], "role": t} for t, r in sorted(level1.items())]
    common = {k: cube_row[k] for k in ("sequence_id", "target_name", "arm",
                                       "ins_mode", "mjd_start", "mjd_end", "exptime_s",
                                       "pixscale_arcsec", "n_frames", "prog_id",
                                       "release_date", "quality_flags")}
    common.update(ra=seq.get("ra"), dec=seq.get("dec"), level=2, version=version,
                  is_current=True, run_id=run["run_id"], recipe=recipe.name,
                  recipe_version=recipe.version, parameters=dataclasses.asdict(recipe.params))
    epoch_mjd = 0.5 * (cube_row["mjd_start"] + cube_row["mjd_end"])
    products, candidates, limits = [], [], []
    wl = _header_wavelengths(header)
    arm = seq.get("arm") or "IRDIS"
    base_hdr = _base_header(header, level1, recipe, arm)

    def add(kind, product_type, file_name, content_type, filt, r, write, product_id=None,
            **extra):
        path = out_dir / file_name
        if content_type == "image/png":
            with atomic_path(path) as tmp:
                write(tmp)
            checksum, size = sha256_file(path), path.stat().st_size
        else:
            checksum, size = write(path)
        row = dict(common, product_id=product_id or f"{sid}.{kind}_{filt}.v{version}",
                   product_type=product_type, file_name=file_name,
                   path=str(rel_dir / file_name), content_type=content_type,
                   checksum=checksum, size_bytes=size, filter=filt,
                   fov_deg=r.image.shape[-1] * r.pixscale_arcsec / 3600.0,
                   wavelength_min_um=min(field_wl) if field_wl else None,
                   wavelength_max_um=max(field_wl) if field_wl else None)
        row.update(extra)
        products.append(ProductFile(row, prov))
        return row["product_id"]

    for k, (filt, r) in enumerate(results):
        # add() reads it when called, within this iteration
        field_wl = [wl[k]] if len(results) > 1 and len(wl) == len(results) else wl
        stem = f"{base}_{filt}"
        algo = ALGORITHM_NAMES[r.params.algorithm]
        hdr = base_hdr.copy()
        hdr["FILTER"] = (filt, "filter of this image")
        hdr["HCIALGO"] = (algo, "speckle subtraction")
        hdr["HCINCOMP"] = (-1 if r.ncomp is None else r.ncomp, "principal components")
        hdr["FWHM"] = (float(r.fwhm_px), "[pixel] PSF FWHM")
        hdr["MJD-MID"] = (epoch_mjd, "mid-sequence epoch (MJD, UTC)")
        image_id = add("final_image", "final_image", f"{stem}_final_image.fits",
                       "application/fits", filt, r,
                       lambda p: write_fits(_image_hdul(r.image, hdr, r.pixscale_arcsec, seq,
                                                        "ADU/s", _catg(arm, "FINAL_IMAGE")),
                                            p))
        add("snr_map", "snr_map", f"{stem}_snr_map.fits", "application/fits", filt, r,
            lambda p: write_fits(_image_hdul(r.snr_map, hdr, r.pixscale_arcsec, seq, "",
                                             _catg(arm, "SNR_MAP")), p))
        curve_id = add("contrast_curve", "contrast_curve", f"{stem}_contrast_curve.fits",
                       "application/fits", filt, r,
                       lambda p: write_fits(_contrast_hdul(r, hdr,
                                                           _catg(arm, "CONTRAST_CURVE")), p))
        add("contrast_plot", "contrast_curve", f"{stem}_contrast_curve.png", "image/png",
            filt, r, lambda p: write_contrast_plot(
                r.contrast, p, title=f"{seq.get('target_name')} {filt}: {algo}, 5-sigma"))

        def hci(path):
            from .level2.hcifits import write_hci_fits

            extra = {f"HIERARCH {key}": hdr[key] for key in hdr if key.startswith("ESO PRO ")}
            extra.update({"HIERARCH ESO PRO CATG": _catg(arm, "HCI_FITS"), "DATE": hdr["DATE"]})
            with atomic_path(path) as tmp:
                write_hci_fits(tmp, r, target_name=seq.get("target_name") or "",
                               ra_deg=seq.get("ra"), dec_deg=seq.get("dec"), filter_name=filt,
                               wavelength_um=float(np.mean(field_wl)) if field_wl else None,
                               epoch_mjd=epoch_mjd, extra_header=extra)
            return sha256_file(path), path.stat().st_size

        add("hci_fits", "hci_fits", f"{stem}_hci.fits", "application/fits", filt, r, hci)
        title = f"{seq.get('target_name')} {filt}"
        add("preview_final", "preview", f"{stem}_final_image.png", "image/png", filt, r,
            lambda p: write_level2_preview(r.image, p, title=f"{title}: {algo} (north up)",
                                           pixscale_arcsec=r.pixscale_arcsec, label="ADU/s",
                                           candidates=r.candidates))
        add("preview_snr", "preview", f"{stem}_snr_map.png", "image/png", filt, r,
            lambda p: write_level2_preview(r.snr_map, p, title=f"{title}: S/N map",
                                           pixscale_arcsec=r.pixscale_arcsec, label="S/N",
                                           candidates=r.candidates, symmetric=True))
        rows = candidate_rows(r, sequence=seq, filter_name=filt, product_id=image_id,
                              epoch_mjd=epoch_mjd)
        for cand, spec in zip(rows, (spectra or {}).get(filt, [])):
            from .spectra_io import SPECTRUM_MIME, write_spectrum

            label = cand["candidate_id"].rsplit(".", 1)[-1]
            # the product id starts with the candidate's: that is the link (portal, SSA)
            add("spectrum", "spectrum", f"{stem}_{label}_spectrum.xml", SPECTRUM_MIME, filt, r,
                lambda p, spec=spec, cand=cand: write_spectrum(
                    p, spec, params=_spectrum_params(cand, filt, epoch_mjd)),
                product_id=f"{cand['candidate_id']}.spectrum.v{version}",
                ra=cand["ra"], dec=cand["dec"], fov_deg=None,
                wavelength_min_um=float(np.min(spec["wavelength_um"])),
                wavelength_max_um=float(np.max(spec["wavelength_um"])))
        candidates += rows
        limits += limit_rows(r, sequence=seq, filter_name=filt, product_id=curve_id)
    return products, candidates, limits


def read_level1(products_dir, level1):
    """The arrays of a sequence's level-1 products (`current_level1`).

    Returns
    -------
    header : astropy.io.fits.Header
        Of the master cube.
    cube : ndarray, float32
    derot_deg, wavelengths_um : ndarray
    psf : ndarray
    """
    from astropy.io import fits

    root = Path(products_dir)
    with fits.open(root / level1["master_cube"]["path"], memmap=False) as hdul:
        header = hdul[0].header.copy()
        cube = np.asarray(hdul[0].data, np.float32)
        derot_deg = np.asarray(hdul["DEROT"].data, float)
        wavelengths_um = np.asarray(hdul["WAVELENGTHS"].data, float)
    with fits.open(root / level1["psf_cube"]["path"], memmap=False) as hdul:
        psf = np.asarray(hdul[0].data, float)
    return header, cube, derot_deg, wavelengths_um, psf


def reduce_level2(sequence_id, settings=None, *, recipe=None, params=None, target=ARCHIVE,
                  level1_products=None):
    """Post-process a sequence's master cube to registered level-2 products.

    Parameters
    ----------
    sequence_id : str
    settings : `archive.config.Settings`, optional
        Default from the environment (passed explicitly to Dask workers).
    recipe : `~reduction.recipes.Recipe`, optional
        The level-2 recipe and its `~reduction.level2.Level2Params`; default
        the arm's (`~reduction.recipes.LEVEL2` for IRDIS,
        `~reduction.recipes.IFS_LEVEL2` for IFS).
    params : `~reduction.level2.Level2Params`, optional
        Replace the recipe's parameters.
    target : `~reduction.targets.ProductTarget`, optional
        Where the products go. The archive's (default) makes them current,
        retires the sequence's older spectra and replaces its
        ``sphere.candidates`` and ``sphere.detection_limits`` rows; a
        request's (`~reduction.targets.ProductTarget.for_request`) does none of
        that.
    level1_products : list of str, optional
        ``product_id`` of the master cube and PSF cube to post-process
        (e.g. a request's own); default the sequence's current ones.

    Returns
    -------
    result : `~reduction.level1_run.RunResult`
        ``status`` 'done', 'skipped' (no master cube and PSF: level 1 was
        refused or never ran; no run recorded) or 'failed' (recorded with its
        error); never raises for the sequence's own problems.

    Raises
    ------
    archive.exceptions.DatabaseUnavailable
        If the archive cannot be reached.
    """
    from psycopg.rows import dict_row

    from archive.config import load_settings
    from archive.db import Database

    from .level1_run import RunResult
    from .products import register_products
    from .provenance import fail_run, finish_run, start_run

    settings = settings or load_settings()
    timings = {}
    with Database(settings).connect(autocommit=True) as conn:
        level1 = (current_level1(conn, sequence_id) if level1_products is None
                  else level1_rows(conn, level1_products))
        if set(level1) != {"master_cube", "psf_cube"}:
            which = "current " if level1_products is None else ""
            return RunResult(sequence_id, "skipped",
                             error=f"no {which}master cube and PSF (level 1 not done)")
        with conn.cursor(row_factory=dict_row) as cur:
            seq = cur.execute("SELECT * FROM sphere.sequences WHERE sequence_id = %s",
                              (sequence_id,)).fetchone()
        recipe = recipe or recipes_for_arm(seq["arm"], level2=LEVEL2)[1]
        if params is not None:
            recipe = recipe.with_params(params)
        run = start_run(conn, recipe,
                        target.inputs_digest(recipe, [r["checksum"] for r in level1.values()]),
                        sequence_id=sequence_id)
        result = RunResult(sequence_id, "failed", run_id=run["run_id"], timings=timings)
        try:
            t = time.monotonic()
            header, cube, derot_deg, wavelengths_um, psf = read_level1(settings.products_dir,
                                                                       level1)
            timings["read"] = round(time.monotonic() - t, 3)
            # The star is where the OBJECT frames point (the master cube keeps the first
            # one's RA/DEC); the sequence's position averages in the offset SKY frames.
            if header.get("RA") is not None and header.get("DEC") is not None:
                seq = dict(seq, ra=float(header["RA"]), dec=float(header["DEC"]))
            t = time.monotonic()
            filters = field_filters(seq.get("filter"), cube.shape[0])
            results = _run_fields(cube, derot_deg, psf, float(header["PIXSCAL"]),
                                  wavelengths_um, filters, recipe.params)
            timings["postprocess"] = round(time.monotonic() - t, 3)
            spectra = {}
            if seq.get("arm") == "IFS" and cube.ndim == 4:
                from .level2.postprocess import candidate_spectra

                t = time.monotonic()
                spectra = {f: candidate_spectra(cube, derot_deg, psf, wavelengths_um, r)
                           for f, r in results}
                results = [(f, _band_photometry(r, spectra[f])) for f, r in results]
                timings["spectra"] = round(time.monotonic() - t, 3)
            del cube
            t = time.monotonic()
            products, cands, limits = _write(conn, target.folder(settings.products_dir), seq,
                                             level1, results, header, recipe, run, spectra)
            target.apply(products)
            timings["write"] = round(time.monotonic() - t, 3)
            version = products[0].row["version"] if products else None
            with conn.transaction():
                if target.supersede:
                    # spectra are per candidate: a rerun may find fewer, none stays current
                    conn.execute("UPDATE sphere.products SET is_current = false WHERE "
                                 "sequence_id = %s AND product_type = 'spectrum' AND "
                                 "version < %s", (sequence_id, version))
                # a request's candidates and limits stay in its files: the tables hold
                # the archive's reduction, one set per sequence
                if target.write_tables:
                    conn.execute("DELETE FROM sphere.candidates WHERE sequence_id = %s",
                                 (sequence_id,))
                    conn.execute("DELETE FROM sphere.detection_limits WHERE sequence_id = %s",
                                 (sequence_id,))
                result.products = register_products(conn, products, supersede=target.supersede)
                if target.write_tables:
                    _insert(conn, "sphere.candidates", cands)
                    _insert(conn, "sphere.detection_limits", limits)
                finish_run(conn, run, "done", timings=timings)
            result.status = "done"
        except Exception as exc:  # failure isolation: record it, let the batch go on
            result.error = fail_run(conn, run, exc, timings)
    return result
