"""Level 2 inside the engine, end to end on the simulated small night: ``spheredc reduce``
(level 1 then level 2), the companions of truth.json recovered, the archive's
products, detection limits and candidates, ``--pending`` and byte-identical reruns."""
import dataclasses
import hashlib
import json

import numpy as np
import pytest
from astropy.io import fits

from reduction.recipes import LEVEL2
from tests.conftest import dict_rows, ingest_small_night, nearest_candidate, run_cli

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def night(database, small_night):
    """The small night ingested and reduced (levels 1 and 2) in this process's archive."""
    truth, seq_of = ingest_small_night(database, small_night)
    proc = run_cli("reduce", "--night", truth["night"], "--no-dask", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return truth, seq_of, json.loads(proc.stdout)


def test_field_filters():
    from reduction.level2_run import field_filters

    assert field_filters("DB_H23", 2) == ["H2", "H3"]
    assert field_filters("DB_K12", 2) == ["K1", "K2"]
    assert field_filters("BB_Ks", 2) == ["BB_Ks"]  # CI: both fields together
    assert field_filters(None, 1) == ["unknown"]


def _final_image_header(database, sequence_id, filter_name):
    (row,) = dict_rows(database, "SELECT path FROM sphere.products WHERE sequence_id = %s AND "
                                 "filter = %s AND product_type = 'final_image' AND is_current",
                       (sequence_id, filter_name))
    return fits.getheader(database.settings.products_dir / row["path"])


def _limit_mag(database, sequence_id, filter_name, sep_arcsec):
    rows = dict_rows(database, "SELECT sep_arcsec, contrast_mag_5sigma FROM "
                               "sphere.detection_limits WHERE sequence_id = %s AND filter = %s "
                               "ORDER BY sep_arcsec",
                     (sequence_id, filter_name))
    return float(np.interp(sep_arcsec, [r["sep_arcsec"] for r in rows],
                           [r["contrast_mag_5sigma"] for r in rows]))


def test_reduce_runs_level2_after_level1(night):
    truth, seq_of, report = night
    by_id = {r["sequence_id"]: r for r in report["sequences"]}
    for label in ("irdis_dbi_main", "irdis_ci_missing"):
        r = by_id[seq_of[label]]
        assert r["status"] == "done" and len(r["products"]) == 4, r
        assert r["level2"]["status"] == "done", r["level2"]
    # DBI: 7 products per field (image, S/N, curve FITS + PNG, HCI-FITS, 2 previews)
    assert len(by_id[seq_of["irdis_dbi_main"]]["level2"]["products"]) == 14
    assert len(by_id[seq_of["irdis_ci_missing"]]["level2"]["products"]) == 7


@pytest.mark.parametrize("label, filters", [("irdis_dbi_main", ("H2", "H3")),
                                            ("irdis_ci_missing", ("BB_Ks",))])
def test_companions_detected_with_accurate_astrometry_and_photometry(night, database, label,
                                                                     filters):
    truth, seq_of, _ = night
    seq = truth["sequences"][label]
    pix = seq["pixscale_arcsec"]
    sid = seq_of[label]
    checked = 0
    for k, filt in enumerate(filters):
        cands = dict_rows(database, "SELECT * FROM sphere.candidates WHERE sequence_id = %s AND "
                                    "filter = %s", (sid, filt))
        matched = set()
        for comp in seq["companions"]:
            limit = _limit_mag(database, sid, filt, comp["sep_arcsec"])
            if comp["delta_mag"][k] > limit:
                continue  # fainter than the measured 5-sigma limit: not required
            c, dist_px = nearest_candidate(cands, comp, pix)
            assert dist_px < 2.0, (filt, comp, cands)
            matched.add(c["candidate_id"])
            assert abs(c["sep_arcsec"] - comp["sep_arcsec"]) / pix <= 0.5, (filt, c, comp)
            if c["snr"] >= 10:
                assert abs(c["pa_deg"] - comp["pa_deg"]) <= 0.3, (filt, c, comp)
            assert abs(c["contrast_mag"] - comp["delta_mag"][k]) <= 0.2, (filt, c, comp)
            checked += 1
        # no false candidate outside the star residual zone (2 FWHM): every one there
        # (all have S/N >= 5) is a simulated companion
        fwhm_px = _final_image_header(database, sid, filt)["FWHM"]
        zone_arcsec = LEVEL2.params.residual_zone_fwhm * fwhm_px * pix
        assert all(c["snr"] >= 5 for c in cands)
        assert {c["candidate_id"] for c in cands
                if c["sep_arcsec"] > zone_arcsec} == matched, (filt, cands)
    assert checked >= len(filters)  # the small night's companions are above the limit


def test_candidate_rows_sky_positions_agree_with_offsets(night, database):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    truth, seq_of, _ = night
    seq = truth["sequences"]["irdis_dbi_main"]
    star = SkyCoord(seq["ra"] * u.deg, seq["dec"] * u.deg)
    cands = dict_rows(database, "SELECT c.*, p.is_current FROM sphere.candidates c JOIN "
                                "sphere.products p USING (product_id) WHERE c.sequence_id = %s",
                      (seq_of["irdis_dbi_main"],))
    assert cands
    mid = [f["mjd_mid"] for f in seq["frames"] if f["dpr_type"] == "OBJECT"]
    for c in cands:
        pos = SkyCoord(c["ra"] * u.deg, c["dec"] * u.deg)
        assert abs(star.separation(pos).arcsec - c["sep_arcsec"]) < 1e-3
        assert abs(star.position_angle(pos).deg - c["pa_deg"]) < 0.01
        assert min(mid) <= c["epoch_mjd"] <= max(mid) + 0.01
        assert c["target_name"] == seq["target_name"] and c["algorithm"] == "pca_adi"
        assert c["is_current"] and c["release_date"] is not None
        assert c["sep_err_arcsec"] > 0 and c["pa_err_deg"] > 0 and c["contrast_err_mag"] > 0
    # pos and healpix_nest are generated by the database from ra/dec
    assert all(r["healpix_nest"] is not None for r in dict_rows(
        database, "SELECT healpix_nest FROM sphere.candidates WHERE sequence_id = %s",
        (seq_of["irdis_dbi_main"],)))


def test_detection_limits_rows(night, database):
    _, seq_of, _ = night
    for filt in ("H2", "H3"):
        rows = dict_rows(database, "SELECT * FROM sphere.detection_limits WHERE sequence_id = %s "
                                   "AND filter = %s ORDER BY sep_arcsec",
                         (seq_of["irdis_dbi_main"], filt))
        assert len(rows) >= 20
        c = np.array([r["contrast_5sigma"] for r in rows])
        mag = np.array([r["contrast_mag_5sigma"] for r in rows])
        sep = np.array([r["sep_arcsec"] for r in rows])
        assert np.all(np.isfinite(c)) and np.all(c > 0)
        np.testing.assert_allclose(mag, -2.5 * np.log10(c), atol=1e-6)
        thr = np.array([r["throughput"] for r in rows], dtype=float)
        assert np.all((thr > 0) & (thr <= 1.5))
        # deeper away from the star: median limit beyond 0.5" fainter than inside 0.2"
        assert np.median(mag[sep > 0.5]) > np.median(mag[sep < 0.2]) + 1.0
        assert {r["algorithm"] for r in rows} == {"pca_adi"}
        (curve,) = {r["product_id"] for r in rows}
        assert dict_rows(database, "SELECT product_type FROM sphere.products WHERE product_id = %s",
                         (curve,))[0]["product_type"] == "contrast_curve"


def test_products_registered_with_inputs_and_headers(night, database):
    truth, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    seq = truth["sequences"]["irdis_dbi_main"]
    prods = dict_rows(database, "SELECT * FROM sphere.products WHERE sequence_id = %s AND "
                                "level = 2 AND is_current", (sid,))
    kinds = sorted(p["product_type"] for p in prods)
    assert kinds == sorted(["final_image", "snr_map", "contrast_curve", "contrast_curve",
                            "hci_fits", "preview", "preview"] * 2)
    level1 = {r["product_type"]: r for r in dict_rows(
        database, "SELECT * FROM sphere.products WHERE sequence_id = %s AND level = 1 AND "
                  "is_current AND product_type IN ('master_cube', 'psf_cube')", (sid,))}
    (run,) = {p["run_id"] for p in prods}
    assert dict_rows(database, "SELECT status, recipe FROM sphere.runs WHERE run_id = %s",
                     (run,)) == [{"status": "done", "recipe": "spheredc_ird_level2"}]
    root = database.settings.products_dir
    for p in prods:
        path = root / p["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == p["checksum"]
        ins = dict_rows(database, "SELECT * FROM sphere.product_inputs WHERE product_id = %s",
                        (p["product_id"],))
        assert {(i["role"], i["input_checksum"]) for i in ins} == {
            (t, r["checksum"]) for t, r in level1.items()}
    image = next(p for p in prods if p["product_type"] == "final_image" and p["filter"] == "H2")
    with fits.open(root / image["path"]) as hdul:
        h, data = hdul[0].header, hdul[0].data
        ny, nx = data.shape
        assert (h["CRPIX1"], h["CRPIX2"]) == (nx // 2 + 1, ny // 2 + 1)
        assert (h["CRVAL1"], h["CRVAL2"]) == pytest.approx((seq["ra"], seq["dec"]))
        assert h["CDELT2"] * 3600 == pytest.approx(seq["pixscale_arcsec"])
        assert h["HIERARCH ESO PRO CATG"] == "IRD_FINAL_IMAGE"
        assert h["HIERARCH ESO PRO REC1 ID"] == "spheredc_ird_level2"
        assert h["HIERARCH ESO PRO REC1 RAW1 CATG"] == "IRD_MASTER_CUBE"
    hci = next(p for p in prods if p["product_type"] == "hci_fits")
    with fits.open(root / hci["path"]) as hdul:
        assert [h.name for h in hdul[1:]] == ["DATA_INFORMATION", "REDUCED_DATA", "SNR_MAP",
                                              "SENSITIVITY_MAP", "DETECTION_LIMIT",
                                              "SOURCE_DETECTION"]


def test_pending_covers_level2_and_rerun_is_byte_identical(night, database):
    from archive.db import Database
    from reduction.engine import reduce_sequences, select_sequences
    from reduction.level2_run import reduce_level2

    truth, seq_of, _ = night
    sid = seq_of["irdis_dbi_main"]
    settings = database.settings
    with Database(settings).connect(autocommit=True) as conn:
        night_ids = select_sequences(conn, night=truth["night"])
        pending = select_sequences(conn, night=truth["night"], pending=True,
                                   level2_recipe=LEVEL2)
        bumped = dataclasses.replace(LEVEL2, version=LEVEL2.version + "-test")
        pending_bumped = select_sequences(conn, night=truth["night"], pending=True,
                                          level2_recipe=bumped)
    assert pending == []
    # a new level-2 version makes level 2 pending (IFS sequences have their own recipe)
    assert pending_bumped == [s for s in night_ids if s != seq_of["ifs_main"]]
    # --pending with everything current redoes nothing
    (current,) = reduce_sequences([sid], settings, level2_recipe=LEVEL2, use_dask=False,
                                  skip_current=True)
    assert current["status"] == "current" and current["level2"]["status"] == "current"

    def files():
        rows = dict_rows(database, "SELECT file_name, path, version FROM sphere.products WHERE "
                                   "sequence_id = %s AND level = 2 AND is_current", (sid,))
        return {r["file_name"]: ((settings.products_dir / r["path"]).read_bytes(),
                                 r["version"]) for r in rows}

    def candidates():
        return sorted((r["candidate_id"], r["sep_arcsec"], r["product_id"]) for r in dict_rows(
            database, "SELECT * FROM sphere.candidates WHERE sequence_id = %s", (sid,)))

    before, cands_before = files(), candidates()
    n_limits = dict_rows(database, "SELECT count(*) AS n FROM sphere.detection_limits WHERE "
                                   "sequence_id = %s", (sid,))[0]["n"]
    result = reduce_level2(sid, settings)
    assert result.status == "done", result.error
    after, cands_after = files(), candidates()
    assert before.keys() == after.keys()
    for name in before:
        assert after[name][1] == before[name][1] + 1
        assert after[name][0] == before[name][0], name  # same bytes
    # rows replaced, not added: same candidates, now pointing to the new version
    assert [c[:2] for c in cands_after] == [c[:2] for c in cands_before]
    new_version = next(iter(after.values()))[1]
    assert all(c[2].endswith(f".v{new_version}") for c in cands_after)
    assert dict_rows(database, "SELECT count(*) AS n FROM sphere.detection_limits WHERE "
                               "sequence_id = %s", (sid,))[0]["n"] == n_limits
