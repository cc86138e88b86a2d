"""End to end on the simulated small night: ingest, ``spheredc reduce`` on a local Dask
cluster, then the products checked against truth.json and the archive's provenance."""
import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tests.conftest import REPO, dict_rows, run_cli

pytestmark = pytest.mark.timeout(600)


def reduce_cli(*args, env=None):
    """``spheredc reduce`` through its module (the lead wires it into ``spheredc``)."""
    import os

    return subprocess.run([sys.executable, "-m", "spheredc.reduce_cmd", *args], cwd=REPO,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def night(database, small_night):
    """The small night ingested and reduced once with ``spheredc reduce --night``."""
    folder, truth = small_night
    proc = run_cli("ingest", folder, "--json")
    assert proc.returncode in (0, 3), proc.stderr  # 3: truth.json itself is refused
    seq_of = {}
    for label, seq in truth["sequences"].items():
        arcfile = truth["files"][seq["files"][0]]["arcfile"]
        seq_of[label] = dict_rows(database, "SELECT sequence_id FROM sphere.raw_files "
                                            "WHERE arcfile = %s", (arcfile,))[0]["sequence_id"]
    proc = reduce_cli("--night", truth["night"], "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    return truth, seq_of, report


def _product(database, sequence_id, product_type, file_suffix=""):
    rows = dict_rows(database, "SELECT * FROM sphere.products WHERE sequence_id = %s AND "
                               "product_type = %s AND is_current AND file_name LIKE %s",
                     (sequence_id, product_type, f"%{file_suffix}"))
    assert len(rows) == 1, rows
    return rows[0]


def _open(database, row):
    return fits.open(database.settings.products_dir / row["path"], memmap=False)


def test_the_night_is_reduced_on_dask(night):
    truth, seq_of, report = night
    assert report["scheduler"] == "local"
    by_id = {r["sequence_id"]: r for r in report["sequences"]}
    # the IFS sequence (cubes reduced upstream by sph_ifs_science_dr) has its own recipe
    assert set(by_id) == {seq_of["irdis_dbi_main"], seq_of["irdis_ci_missing"],
                          seq_of["ifs_main"]}
    for r in by_id.values():
        assert r["status"] == "done", r
        assert len(r["products"]) == 4


def test_star_centre_matches_truth(night, database):
    truth, seq_of, _ = night
    want = truth["sequences"]["irdis_dbi_main"]["star_center_px"]
    with _open(database, _product(database, seq_of["irdis_dbi_main"], "master_cube")) as hdul:
        frames = hdul["FRAMES"].data
        for field in ("left", "right"):
            x, y = frames[f"centre_x_{field}"], frames[f"centre_y_{field}"]
            assert np.all(np.abs(x - want[field][0]) < 0.2), (field, x)
            assert np.all(np.abs(y - want[field][1]) < 0.2), (field, y)


@pytest.mark.parametrize("label", ["irdis_dbi_main", "irdis_ci_missing"])
def test_derotation_angles_match_truth(night, database, label):
    truth, seq_of, _ = night
    arc = {name: f["arcfile"] for name, f in truth["files"].items()}
    want = {(arc[f["file"]], f["index"]): f["derot_deg"]
            for f in truth["sequences"][label]["frames"] if f["dpr_type"] == "OBJECT"}
    with _open(database, _product(database, seq_of[label], "master_cube")) as hdul:
        frames, derot = hdul["FRAMES"].data, hdul["DEROT"].data
    assert len(frames) == len(want) == len(derot)
    np.testing.assert_array_equal(frames["derot_deg"], derot)
    got = {(f, int(i)): d for f, i, d in zip(frames["file"], frames["index"], derot)}
    assert set(got) == set(want)
    diff = np.array([(got[k] - want[k] + 180.0) % 360.0 - 180.0 for k in want])
    assert np.max(np.abs(diff)) < 0.05


def test_psf_flux_matches_injected_star(night, database):
    truth, seq_of, _ = night
    want = truth["sequences"]["irdis_dbi_main"]["star_flux_adu_s"]
    with _open(database, _product(database, seq_of["irdis_dbi_main"], "psf_cube")) as hdul:
        hdr, psf = hdul[0].header, hdul[0].data
    assert psf.shape[0] == 2 and psf.shape[1] % 2 == 1
    c = psf.shape[-1] // 2
    for k, field in enumerate(("left", "right")):
        assert abs(hdr[f"PSFFLUX{k + 1}"] / want[field] - 1.0) < 0.05
        assert np.unravel_index(np.argmax(psf[k]), psf[k].shape) == (c, c)


def test_strehl_is_estimated_from_the_psf(night, database):
    truth, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    with _open(database, _product(database, sid, "psf_cube")) as hdul:
        s1, s2 = hdul[0].header["ESO QC STREHL1"], hdul[0].header["ESO QC STREHL2"]
    # The estimator itself is checked against analytic Airy patterns
    # (test_level1_selection_psf.py); the simulated AO gives ~0.9 in H.
    assert 0.6 < s1 < 1.0 and 0.6 < s2 < 1.0
    assert s2 >= s1 - 0.02  # the longer wavelength is corrected at least as well
    with _open(database, _product(database, sid, "master_cube")) as hdul:
        strehl = np.asarray(hdul["FRAMES"].data["strehl"])
    assert np.allclose(strehl, (s1 + s2) / 2, atol=1e-3)


def test_companion_after_derotation_and_median_adi(night, database):
    from photutils.centroids import centroid_2dg
    from scipy import ndimage

    truth, seq_of, _ = night
    seq = truth["sequences"]["irdis_dbi_main"]
    with _open(database, _product(database, seq_of["irdis_dbi_main"], "master_cube")) as hdul:
        cube, derot, hdr = hdul[0].data, hdul["DEROT"].data, hdul[0].header
    xc, yc = hdr["STAR_X"], hdr["STAR_Y"]
    assert (xc, yc) == (cube.shape[-1] // 2, cube.shape[-2] // 2)
    assert hdr["CRPIX1"] == xc + 1 and hdr["CRPIX2"] == yc + 1
    for k in range(2):
        residuals = np.nan_to_num(cube[k] - np.nanmedian(cube[k], axis=0))
        # ndimage.rotate turns clockwise (y up) for a positive angle: -theta turns by +theta.
        image = np.median([ndimage.rotate(f, -a, reshape=False, order=3)
                           for f, a in zip(residuals, derot)], axis=0)
        for comp in seq["companions"]:
            r = comp["sep_arcsec"] / hdr["PIXSCAL"]
            pa = np.radians(comp["pa_deg"])
            x, y = xc - r * np.sin(pa), yc + r * np.cos(pa)
            xi, yi, h = int(round(x)), int(round(y)), 4
            box = image[yi - h:yi + h + 1, xi - h:xi + h + 1]
            local = np.median(image[yi - 20:yi + 21, xi - 20:xi + 21])
            bx, by = centroid_2dg(box - local)
            assert np.hypot(xi - h + bx - x, yi - h + by - y) < 0.5, (k, comp)


def test_master_cube_is_self_describing(night, database):
    truth, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    row = _product(database, sid, "master_cube")
    raw = dict_rows(database, "SELECT arcfile FROM sphere.raw_files WHERE sequence_id = %s", (sid,))
    with _open(database, row) as hdul:
        hdr = hdul[0].header
        assert hdul[0].data.shape == (2, row["n_frames"], 801, 801)
        assert hdul[0].header["BITPIX"] == -32
        np.testing.assert_allclose(hdul["WAVELENGTHS"].data,
                                   truth["sequences"]["irdis_dbi_main"]["wavelengths_um"],
                                   atol=0.01)
        assert {"parang_deg", "derot_deg", "selected", "reason", "seeing_arcsec",
                "tau0_s"} <= set(hdul["FRAMES"].columns.names)
    assert hdr["ESO OBS ID"] and hdr["ESO TPL ID"] and hdr["OBJECT"] == "SIMSTAR-1"
    assert hdr["ESO PRO CATG"] == "IRD_MASTER_CUBE"
    assert hdr["AXORDER"].endswith("time,y,x") and hdr["PIXSCAL"] == pytest.approx(0.01225)
    assert "north up" in hdr["ANGCONV"]
    names = {hdr[k] for k in hdr if k.startswith("ESO PRO REC1 RAW") and k.endswith("NAME")}
    assert names == {r["arcfile"] for r in raw}


def test_provenance_and_run_are_recorded(night, database):
    truth, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    row = _product(database, sid, "master_cube")
    assert row["level"] == 1 and row["checksum"] and row["run_id"]
    from reduction.products import sha256_file

    assert sha256_file(database.settings.products_dir / row["path"]) == row["checksum"]
    inputs = dict_rows(database, "SELECT * FROM sphere.product_inputs WHERE product_id = %s",
                       (row["product_id"],))
    roles = {(i["input_kind"], i["role"]) for i in inputs}
    assert {("raw", "science"), ("raw", "center"), ("raw", "flux"), ("raw", "sky"),
            ("product", "background"), ("product", "flat"), ("product", "bad_pixels")} <= roles
    n_raw = len(truth["sequences"]["irdis_dbi_main"]["files"])
    assert sum(i["input_kind"] == "raw" for i in inputs) == n_raw
    # each calibration product is itself registered with its raw inputs
    for i in inputs:
        if i["input_kind"] == "product":
            calib = dict_rows(database, "SELECT level, sequence_id FROM sphere.products "
                                        "WHERE product_id = %s", (i["input_id"],))
            assert calib == [{"level": 0, "sequence_id": None}]
    run = dict_rows(database, "SELECT * FROM sphere.runs WHERE run_id = %s", (row["run_id"],))[0]
    assert run["status"] == "done" and run["recipe"] == "spheredc_ird_master_cube"
    assert run["inputs_digest"] and run["duration_s"] > 0
    assert {"calibrations", "master_cube", "write"} <= set(run["timings"])
    assert run["parameters"]["crop_px"] == 801


def test_master_cube_is_a_calib_level_2_obscore_row(night, database):
    _, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    if dict_rows(database, "SELECT to_regclass('ivoa.obscore') AS v")[0]["v"] is None:
        pytest.skip("ivoa.obscore not in this schema revision")
    rows = dict_rows(database, "SELECT calib_level, dataproduct_type, dataproduct_subtype, s_xel1, "
                               "s_pixel_scale FROM ivoa.obscore WHERE obs_id = %s "
                               "AND dataproduct_subtype = 'master_cube'", (sid,))
    assert rows == [{"calib_level": 2, "dataproduct_type": "cube",
                     "dataproduct_subtype": "master_cube", "s_xel1": 801,
                     "s_pixel_scale": pytest.approx(0.01225)}]
    with database.connect(autocommit=True) as conn:
        hp = conn.execute("SELECT healpix_nest FROM sphere.products WHERE product_id = %s",
                          (f"{sid}.master_cube.v1",)).fetchone()[0]
    assert hp is not None  # generated from ra/dec by the database


def test_missing_calibrations_reduce_with_flags(night, database):
    _, seq_of, report = night
    sid = seq_of["irdis_ci_missing"]
    flags = _product(database, sid, "master_cube")["quality_flags"]
    assert {"background_fallback:8.00:DARK,BACKGROUND", "background_missing:2.00:OBJECT,FLUX",
            "no_flat:BB_Ks"} <= set(flags)
    roles = {i["role"] for i in dict_rows(database, "SELECT role FROM sphere.product_inputs "
                                                    "WHERE product_id = %s",
                                          (f"{sid}.master_cube.v1",))}
    assert "flat" not in roles and "bad_pixels" in roles


def test_refused_sequence_is_recorded_with_its_reason(night, database):
    from reduction.level1_run import reduce_sequence

    _, seq_of, _ = night
    sid = seq_of["ifs_main"]
    # the IRDIS recipe refuses IFS cubes (the engine gives them the IFS recipe)
    result = reduce_sequence(sid, database.settings)
    assert result.status == "refused" and "IRDIS" in result.error
    runs = dict_rows(database, "SELECT status, error FROM sphere.runs WHERE sequence_id = %s "
                               "AND recipe = 'spheredc_ird_master_cube'", (sid,))
    assert runs and all(r["status"] == "refused" and r["error"] for r in runs)
    assert not dict_rows(database, "SELECT 1 FROM sphere.products WHERE sequence_id = %s "
                                   "AND recipe = 'spheredc_ird_master_cube'", (sid,))


def test_rerun_gives_identical_bytes_and_reuses_calibrations(night, database):
    from reduction.level1_run import reduce_sequence

    _, seq_of, _ = night
    sid = seq_of["irdis_ci_missing"]
    before = {r["product_id"] for r in dict_rows(database, "SELECT product_id FROM sphere.products "
                                                           "WHERE level = 0")}
    old = {r["file_name"]: r for r in dict_rows(database, "SELECT * FROM sphere.products WHERE "
                                                          "sequence_id = %s AND is_current "
                                                          "AND level = 1", (sid,))}
    result = reduce_sequence(sid, database.settings)
    assert result.status == "done", result.error
    new = {r["file_name"]: r for r in dict_rows(database, "SELECT * FROM sphere.products WHERE "
                                                          "sequence_id = %s AND is_current "
                                                          "AND level = 1", (sid,))}
    assert set(new) == set(old)
    for name in new:
        assert new[name]["version"] == old[name]["version"] + 1
        assert new[name]["checksum"] == old[name]["checksum"], name
    after = {r["product_id"] for r in dict_rows(database, "SELECT product_id FROM sphere.products "
                                                          "WHERE level = 0")}
    assert after == before  # master background, bad-pixel map reused, not redone
    stale = dict_rows(database, "SELECT is_current FROM sphere.products WHERE product_id = %s",
                      (f"{sid}.master_cube.v{old[next(iter(old))]['version']}",))
    assert stale == [{"is_current": False}]
