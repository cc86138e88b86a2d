"""Reduce one sequence to its level-1 products: the file and database side.

`reduce_sequence` reads the sequence and its associations, applies the
missing-calibration policy (`reduction.policy`), makes or reuses the
calibration products, runs `reduction.level1.build_master_cube`, writes the
master cube, PSF cube and previews, and registers them with their provenance
and the run in one transaction at the end. It never raises for a sequence
that fails: the run is recorded ``failed`` (or ``refused``) with its error and
the result says so, so a batch goes on.
"""
import dataclasses
import time
from pathlib import Path

import numpy as np

from .exceptions import ReductionRefused
from .recipes import MASTER_CUBE, inputs_digest
from .targets import ARCHIVE

__all__ = ["RunResult", "reduce_sequence", "sequence_digest", "master_cube_hdul"]

_ROLE = {"OBJECT": "science", "OBJECT,CENTER": "center", "OBJECT,FLUX": "flux", "SKY": "sky"}
_AXES = "field(wavelength),time,y,x"


@dataclasses.dataclass
class RunResult:
    """Outcome of one sequence.

    Attributes
    ----------
    sequence_id : str
    status : {'done', 'failed', 'refused'}
    run_id : str or None
    error : str or None
    products : list of str
        product_id of the products registered.
    flags : list of str
        Quality flags (policy and science steps).
    timings : dict of str to float
        Seconds per step.
    """
    sequence_id: str
    status: str
    run_id: object = None
    error: object = None
    products: list = dataclasses.field(default_factory=list)
    flags: list = dataclasses.field(default_factory=list)
    timings: dict = dataclasses.field(default_factory=dict)

    def as_dict(self):
        return dataclasses.asdict(self)


def sequence_digest(inputs, recipe=MASTER_CUBE):
    """Inputs digest of a sequence's level-1 run (its files and calibrations)."""
    return inputs_digest(recipe, inputs.checksums())


def _frame_table_hdu(cube, files):
    """Frame table with the file's seeing and coherence time added per frame."""
    from astropy.io import fits

    table = cube.frames.copy()
    by_arc = {f["arcfile"]: f for f in files}
    table["seeing_arcsec"] = [by_arc.get(a, {}).get("seeing_arcsec") or np.nan
                              for a in table["file"]]
    table["tau0_s"] = [by_arc.get(a, {}).get("tau0_s") or np.nan for a in table["file"]]
    # A coronagraphic frame has no Strehl of its own: every frame gets the estimate
    # from the sequence's off-axis (FLUX) frames, averaged over the two fields.
    table["strehl"] = np.full(len(table), np.nanmean(_strehls(cube)) if len(table) else np.nan)
    table["selected"] = table["selected"].astype(bool)
    hdu = fits.table_to_hdu(table)
    hdu.name = "FRAMES"
    return hdu


#: Derotation-angle convention written in the DEROT extension, per arm.
_ANGCONV = {"IRDIS": "theta=PARANG+135.99-1.75 (ELEV, IRDIS)",
            "IFS": "theta=PARANG+135.99-1.75-100.48 (ELEV, IFS)"}
#: Prefix of the ESO product categories, per arm.
_CATG_PREFIX = {"IRDIS": "IRD", "IFS": "IFS"}
#: Wavelength-axis keywords of an input cube (sph_ifs_science_dr): the master
#: cube's third FITS axis is time, not wavelength.
_AXIS3_KEYS = ("CTYPE3", "CUNIT3", "CRPIX3", "CRVAL3", "CDELT3", "CD3_3", "PC3_3", "CROTA3")


def master_cube_hdul(cube, header, files, *, arm="IRDIS"):
    """FITS of a master cube: science cube, angles, frame table, wavelengths.

    Parameters
    ----------
    cube : `reduction.level1.MasterCube`
    header : `astropy.io.fits.Header`
        Primary header from `reduction.fitsmeta.product_header`.
    files : list of dict
        The sequence's ``raw_files`` rows (seeing, tau0 per frame).
    arm : {'IRDIS', 'IFS'}
        Written in the angle convention (the IFS offset is included in DEROT).

    Returns
    -------
    hdul : `astropy.io.fits.HDUList`
    """
    from astropy.io import fits

    crop = cube.science.shape[-1]
    c = crop // 2
    hdr = header.copy()
    hdr["BUNIT"] = ("ADU/s", "per second, ND corrected")
    hdr["AXORDER"] = (_AXES, "numpy axis order (FITS NAXIS1 is x)")
    hdr["STAR_X"] = (c, "star x, 0-based pixel (centre of the odd crop)")
    hdr["STAR_Y"] = (c, "star y, 0-based pixel (centre of the odd crop)")
    for ax, ctype in ((1, "XOFFSET"), (2, "YOFFSET")):
        hdr[f"CTYPE{ax}"] = (ctype, "offset from the star (detector frame)")
        hdr[f"CRPIX{ax}"] = (c + 1.0, "1-based pixel of the star")
        hdr[f"CRVAL{ax}"] = 0.0
        hdr[f"CDELT{ax}"] = (cube.pixscale_arcsec, "arcsec per pixel")
        hdr[f"CUNIT{ax}"] = "arcsec"
    hdr["PIXSCAL"] = (cube.pixscale_arcsec, "[arcsec/pixel] anamorphism corrected")
    hdr["ANGCONV"] = ("rotate +DEROT ccw (y up) for north up", "see extension DEROT")
    for k, wl in enumerate(cube.wavelengths_um, start=1):
        hdr[f"WAVE{k}"] = (float(wl), f"[um] wavelength of field {k}")
    derot = fits.ImageHDU(np.asarray(cube.derot_deg, np.float64), name="DEROT")
    derot.header["BUNIT"] = "deg"
    derot.header["ANGCONV"] = (_ANGCONV.get(arm, _ANGCONV["IRDIS"]), "derotation angle")
    derot.header["COMMENT"] = ("Rotating frame i by +theta_i counter-clockwise (y up) puts "
                               "north up, east left.")
    waves = fits.ImageHDU(np.asarray(cube.wavelengths_um, np.float64), name="WAVELENGTHS")
    waves.header["BUNIT"] = "um"
    return fits.HDUList([fits.PrimaryHDU(cube.science, header=hdr), derot,
                         _frame_table_hdu(cube, files), waves])


def _strehls(cube):
    """Strehl estimate per field from the off-axis PSF."""
    from reduction.level1.psf import strehl_estimate

    return [strehl_estimate(cube.psf[k], cube.psf_flux_adu_s[k], cube.wavelengths_um[k],
                            cube.pixscale_arcsec) for k in range(cube.psf.shape[0])]


def _psf_hdul(cube, header, arm="IRDIS"):
    from astropy.io import fits

    hdr = header.copy()
    hdr["HIERARCH ESO PRO CATG"] = f"{_CATG_PREFIX.get(arm, 'IRD')}_PSF_CUBE"
    size = cube.psf.shape[-1]
    hdr["BUNIT"] = ("ADU/s", "ND corrected")
    hdr["AXORDER"] = ("field(wavelength),y,x", "numpy axis order (FITS NAXIS1 is x)")
    hdr["STAR_X"] = (size // 2, "PSF centre x, 0-based pixel")
    hdr["STAR_Y"] = (size // 2, "PSF centre y, 0-based pixel")
    hdr["CRPIX1"] = hdr["CRPIX2"] = size // 2 + 1.0
    hdr["PIXSCAL"] = (cube.pixscale_arcsec, "[arcsec/pixel]")
    for k in range(cube.psf.shape[0]):
        # IFS has 39 channels: PSFFLUX10 and beyond are HIERARCH cards (> 8 characters)
        flux, fwhm = (f"{'HIERARCH ' if k >= 9 else ''}{name}{k + 1}"
                      for name in ("PSFFLUX", "PSFFWHM"))
        hdr[flux] = (float(cube.psf_flux_adu_s[k]), f"[ADU/s] PSF flux, field {k + 1}")
        hdr[fwhm] = (float(cube.psf_fwhm_px[k]), f"[pixel] FWHM, field {k + 1}")
    for k, strehl in enumerate(_strehls(cube)):
        hdr[f"HIERARCH ESO QC STREHL{k + 1}"] = (round(float(strehl), 4) if np.isfinite(strehl)
                                                 else None, f"Strehl estimate, field {k + 1}")
    return fits.HDUList([fits.PrimaryHDU(np.asarray(cube.psf, np.float32), header=hdr)])


def _common_row(seq, objects, cube, recipe, run, version, flags):
    crop = cube.science.shape[-1]
    return {"level": 1, "sequence_id": seq["sequence_id"], "version": version,
            "is_current": True, "run_id": run["run_id"], "recipe": recipe.name,
            "recipe_version": recipe.version, "parameters": dataclasses.asdict(recipe.params),
            "target_name": seq.get("target_name"), "ra": seq.get("ra"), "dec": seq.get("dec"),
            "arm": seq.get("arm"),
            "ins_mode": seq.get("ins_mode"), "filter": seq.get("filter"),
            "wavelength_min_um": float(np.min(cube.wavelengths_um)),
            "wavelength_max_um": float(np.max(cube.wavelengths_um)),
            "mjd_start": min(f["mjd_obs"] for f in objects),
            "mjd_end": max(float(f.get("mjd_end") or f["mjd_obs"]) for f in objects),
            "exptime_s": float(sum(f["dit"] * (f["ndit"] or 1) for f in objects)),
            "fov_deg": crop * cube.pixscale_arcsec / 3600.0,
            "pixscale_arcsec": cube.pixscale_arcsec, "prog_id": seq.get("prog_id"),
            "release_date": seq.get("release_date"), "quality_flags": flags}


def _calibrations(conn, products_dir, inputs, plan, timings):
    """Master calibrations of the plan (made or reused) and their provenance rows."""
    from reduction.level1 import Calibrations

    from .calib_products import (bad_pixel_map_product, master_background_product,
                                 master_flat_product)

    t = time.monotonic()
    bkg = {key: master_background_product(conn, products_dir, rows, key)
           for key, rows in sorted(plan.backgrounds.items())}
    flat = (master_flat_product(conn, products_dir, plan.flats, inputs.sequence.get("filter"))
            if plan.flats else None)
    bpm = bad_pixel_map_product(conn, products_dir, bkg[plan.object_dit_key], flat)
    timings["calibrations"] = round(time.monotonic() - t, 3)
    calibs = Calibrations(backgrounds={float(k): p.data["PRIMARY"] for k, p in bkg.items()},
                          flat=None if flat is None else flat.data["PRIMARY"],
                          bad_pixels=bpm.data["PRIMARY"].astype(bool))
    used = [(p, "background") for p in bkg.values()] + [(bpm, "bad_pixels")]
    if flat is not None:
        used.append((flat, "flat"))
    return calibs, used


def _write_products(conn, products_dir, inputs, cube, used, recipe, run, flags):
    """Write the sequence's products under a new version folder; return ProductFiles."""
    from .fitsmeta import product_header
    from .previews import no_adi_stack, write_preview
    from .products import ProductFile, next_version, write_fits
    from .sequence_io import read_header

    seq, sid = inputs.sequence, inputs.sequence_id
    arm = seq.get("arm") or "IRDIS"
    objects = inputs.files_of("OBJECT")
    version = next_version(conn, sid, "master_cube")
    base = sid.replace(":", "-")  # colons upset some file systems and URLs
    rel_dir = Path("level1") / base / f"v{version}"
    out_dir = Path(products_dir) / rel_dir
    raw_inputs = [(f["arcfile"], f["dpr_type"]) for f in inputs.files]
    raw_header = read_header(objects[0]["archive_path"])
    for key in _AXIS3_KEYS:
        raw_header.remove(key, ignore_missing=True, remove_all=True)
    header = product_header(raw_header, recipe,
                            raw_inputs=raw_inputs,
                            calib_inputs=[(p.file_name, p.product_type) for p, _ in used],
                            date_mjd=max(float(f.get("mjd_end") or f["mjd_obs"])
                                         for f in inputs.files))
    prov = [{"input_kind": "raw", "input_checksum": f["checksum"], "input_id": f["arcfile"],
             "role": _ROLE.get(f["dpr_type"], "science")} for f in inputs.files]
    prov += [p.provenance(role) for p, role in used]
    common = _common_row(seq, objects, cube, recipe, run, version, flags)
    out = []

    def add(product_type, kind, file_name, content_type, n_frames, write):
        path = out_dir / file_name
        checksum, size = write(path)
        row = dict(common, product_id=f"{sid}.{kind}.v{version}", product_type=product_type,
                   file_name=file_name, path=str(rel_dir / file_name),
                   content_type=content_type, checksum=checksum, size_bytes=size,
                   n_frames=n_frames)
        out.append(ProductFile(row, prov))

    def png(images, titles):
        def write(path):
            from .products import sha256_file

            write_preview(images, path, titles=titles)
            return sha256_file(path), path.stat().st_size
        return write

    n_time = cube.science.shape[1]
    add("master_cube", "master_cube", f"{base}_master_cube.fits", "application/fits", n_time,
        lambda p: write_fits(master_cube_hdul(cube, header, inputs.files, arm=arm), p))
    images, names = _preview_fields(no_adi_stack(cube.science), cube.wavelengths_um)
    add("preview", "preview_stack", f"{base}_stack.png", "image/png", n_time,
        png(images, [f"no-ADI median, {n}" for n in names]))
    if cube.psf is not None:
        add("psf_cube", "psf_cube", f"{base}_psf.fits", "application/fits", 1,
            lambda p: write_fits(_psf_hdul(cube, header, arm), p))
        images, names = _preview_fields(cube.psf, cube.wavelengths_um)
        add("preview", "preview_psf", f"{base}_psf.png", "image/png", 1,
            png(images, [f"PSF, {n}" for n in names]))
    return out


def _preview_fields(images, wavelengths_um):
    """Images shown in a preview and their names: every field of IRDIS; for the 39
    IFS channels, their mean and the bluest and reddest channels."""
    names = [f"{wl:.3f} um" for wl in wavelengths_um]
    if len(images) <= 2:
        return list(images), names
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels without data stay NaN
        mean = np.nanmean(np.asarray(images, np.float32), axis=0)
    return ([mean, images[0], images[-1]],
            [f"mean of {len(images)} channels {names[0]}-{names[-1]}", names[0], names[-1]])


def reduce_sequence(sequence_id, settings=None, *, recipe=MASTER_CUBE, params=None,
                    target=ARCHIVE):
    """Reduce one IRDIS sequence to registered level-1 products.

    Parameters
    ----------
    sequence_id : str
        A ``sphere.sequences`` identifier.
    settings : `archive.config.Settings`, optional
        Database and products folder (default: from the environment). Passed
        explicitly so that Dask workers use the client's archive.
    recipe : `~reduction.recipes.Recipe`, optional
        The master-cube recipe and its `~reduction.level1.MasterCubeParams`.
    params : `~reduction.level1.MasterCubeParams`, optional
        Replace the recipe's parameters.
    target : `~reduction.targets.ProductTarget`, optional
        Where the products go (default the archive's current products; a
        request's with `~reduction.targets.ProductTarget.for_request`).

    Returns
    -------
    result : `RunResult`
        ``status`` 'done', 'refused' (policy, with the reason in ``error``) or
        'failed' (an exception, recorded with its message); never raises for
        the sequence's own problems.

    Raises
    ------
    archive.exceptions.DatabaseUnavailable
        If the archive cannot be reached (nothing can be recorded then).
    """
    def build(conn, settings, inputs, timings):
        import warnings

        from reduction.level1 import build_master_cube
        from reduction.level1.exceptions import Level1Warning

        from .policy import plan_calibrations
        from .sequence_io import raw_file

        plan = plan_calibrations(inputs.sequence, inputs.files, inputs.associations)
        if plan.refused:
            raise ReductionRefused(sequence_id, plan.refused)
        calibs, used = _calibrations(conn, settings.products_dir, inputs, plan, timings)
        t = time.monotonic()
        files = [raw_file(f) for f in inputs.files if f["dpr_type"] != "SKY"]
        with warnings.catch_warnings():
            # The flags are collected in cube.flags and recorded with the run.
            warnings.simplefilter("ignore", Level1Warning)
            cube = build_master_cube(files, calibs, params=recipe.params)
        timings["master_cube"] = round(time.monotonic() - t, 3)
        flags = sorted(set(plan.flags)) + [f for f in cube.flags if f not in plan.flags]
        return cube, used, flags

    if params is not None:
        recipe = recipe.with_params(params)
    return run_level1(sequence_id, settings, recipe, build, target=target)


def run_level1(sequence_id, settings, recipe, build, *, target=ARCHIVE):
    """The frame of a level-1 run, whatever the arm: run record, products, outcome.

    Parameters
    ----------
    sequence_id : str
    settings : `archive.config.Settings` or None
        Default: from the environment.
    recipe : `~reduction.recipes.Recipe`
    build : callable
        ``build(conn, settings, inputs, timings) -> (cube, used, flags)``: the
        master cube of the sequence's `~reduction.sequence_io.SequenceInputs`,
        the calibration products it used and its quality flags; raises
        `ReductionRefused` for a sequence the recipe cannot reduce.
    target : `~reduction.targets.ProductTarget`, optional
        Names, folder, currency and digest of the products (default the archive's).

    Returns
    -------
    result : `RunResult`
        Never raises for the sequence's own problems: the run is recorded
        ``failed`` or ``refused`` with the reason.
    """
    from archive.config import load_settings
    from archive.db import Database

    from .exceptions import SequenceNotFound
    from .products import register_products
    from .provenance import fail_run, finish_run, start_run
    from .sequence_io import load_sequence

    settings = settings or load_settings()
    timings = {}
    with Database(settings).connect(autocommit=True) as conn:
        try:
            inputs = load_sequence(conn, sequence_id)
        except SequenceNotFound as exc:
            return RunResult(sequence_id, "failed", error=str(exc))
        run = start_run(conn, recipe, target.inputs_digest(recipe, inputs.checksums()),
                        sequence_id=sequence_id)
        result = RunResult(sequence_id, "failed", run_id=run["run_id"], timings=timings)
        try:
            cube, used, flags = build(conn, settings, inputs, timings)
            t = time.monotonic()
            products = target.apply(_write_products(conn, target.folder(settings.products_dir),
                                                    inputs, cube, used, recipe, run, flags))
            timings["write"] = round(time.monotonic() - t, 3)
            with conn.transaction():
                result.products = register_products(conn, products, supersede=target.supersede)
                finish_run(conn, run, "done", quality_flags=flags, timings=timings)
            result.status, result.flags = "done", flags
        except ReductionRefused as exc:
            result.status, result.error = "refused", exc.reason
            with conn.transaction():
                finish_run(conn, run, "refused", error=exc.reason, timings=timings)
        except Exception as exc:  # failure isolation: record it, let the batch go on
            result.error = fail_run(conn, run, exc, timings)
    return result
