"""Reductions on request through the engine's request target (issue 6): the simulated
small night's IFS sequence reduced for a request (its own level 1 and PCA-ASDI level 2)
next to the archive's reduction, which stays current and alone in the tables; the
parameters of a request per arm; the archive's target changes nothing."""
import dataclasses
import datetime
import hashlib

import pytest

from reduction.targets import ARCHIVE, ProductTarget, request_params
from tests.conftest import dict_rows, ingest_small_night

pytestmark = pytest.mark.timeout(600)
LABEL = "ifs_main"
REQUEST_ID = 6006
#: Not the archive's level-1 parameters: the request makes its own master cube.
PARAMETERS = {"algorithm": "pca", "frame_selection": {"z_max": 6.0}}


def _archive_state(database, sid):
    """The archive's own reduction of the sequence: the request must not change it."""
    from reduction.engine import select_sequences
    from reduction.recipes import LEVEL2

    current = dict_rows(database, "SELECT product_id, version, checksum, is_current FROM "
                                  "sphere.products WHERE sequence_id = %s AND is_current "
                                  "ORDER BY 1", (sid,))
    cands = dict_rows(database, "SELECT * FROM sphere.candidates WHERE sequence_id = %s "
                                "ORDER BY candidate_id", (sid,))
    limits = dict_rows(database, "SELECT count(*) AS n FROM sphere.detection_limits")
    with database.connect(autocommit=True) as conn:
        pending = select_sequences(conn, pending=True, level2_recipe=LEVEL2)
    return current, cands, limits, pending


@pytest.fixture(scope="module")
def ifs_request(database, small_night):
    """The IFS sequence reduced by the archive (level 1 at least), then for a request."""
    from reduction.engine import map_sequences, reduce_for_request, reduce_sequences

    truth, sequence_ids = ingest_small_night(database, small_night)
    sid = sequence_ids[LABEL]
    (seq,) = dict_rows(database, "SELECT * FROM sphere.sequences WHERE sequence_id = %s",
                       (sid,))
    if not dict_rows(database, "SELECT 1 FROM sphere.products WHERE sequence_id = %s AND "
                               "is_current AND product_type = 'master_cube'", (sid,)):
        # alone (test_ifs.py did not reduce it in this session): level 1 is enough
        (done,) = reduce_sequences([sid], database.settings, use_dask=False)
        assert done["status"] == "done", done
    before = _archive_state(database, sid)
    level1, level2 = request_params("IFS", PARAMETERS)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    # as the request worker runs it (here in this process: no Dask cluster to start)
    (result,) = map_sequences(reduce_for_request, [sid], database.settings, [level1], [level2],
                              use_dask=False, target=ProductTarget.for_request(REQUEST_ID))
    return truth, seq, before, result, (level1, level2), now


def test_request_reduces_the_ifs_sequence(ifs_request, database):
    truth, seq, _, result, _, _ = ifs_request
    assert result["status"] == "done", result
    assert result["error"] is None and result["reused_level1"] is None
    runs = dict_rows(database, "SELECT run_id, recipe, status, sequence_id FROM sphere.runs "
                               "WHERE run_id = ANY(%s)", (result["run_ids"],))
    assert sorted(r["recipe"] for r in runs) == ["spheredc_ifs_level2",
                                                 "spheredc_ifs_master_cube"]
    assert all(r["status"] == "done" and r["sequence_id"] == seq["sequence_id"] for r in runs)
    types = {r["product_type"] for r in dict_rows(
        database, "SELECT product_type FROM sphere.products WHERE product_id = ANY(%s)",
        (result["product_ids"],))}
    assert types >= {"master_cube", "psf_cube", "final_image", "snr_map", "contrast_curve",
                     "hci_fits", "spectrum"}


def test_request_products_are_private_and_apart(ifs_request, database):
    _, seq, _, result, _, now = ifs_request
    rid = REQUEST_ID
    rows = dict_rows(database, "SELECT * FROM sphere.products WHERE product_id = ANY(%s)",
                     (result["product_ids"],))
    assert len(rows) == len(result["product_ids"]) > 10
    floor = now + datetime.timedelta(days=364)
    root = database.settings.products_dir
    for row in rows:
        assert row["product_id"].startswith(f"req{rid}.") and not row["is_current"]
        assert row["path"].startswith(f"requests/{rid}/level")
        path = root / row["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["checksum"]
        assert row["prog_id"] == seq["prog_id"] and row["sequence_id"] == seq["sequence_id"]
        assert row["release_date"] > floor
        if seq["release_date"] is not None:
            assert row["release_date"] >= seq["release_date"]
    # versions from the sequence's own count: the request's master cube follows the archive's
    (cube,) = [r for r in rows if r["product_type"] == "master_cube"]
    older = dict_rows(database, "SELECT max(version) AS v FROM sphere.products WHERE sequence_id "
                                "= %s AND product_type = 'master_cube' AND product_id <> %s",
                      (seq["sequence_id"], cube["product_id"]))[0]["v"]
    assert cube["version"] == older + 1
    # level 2 read the request's master cube and PSF, not the archive's current ones
    (image,) = [r for r in rows if r["product_type"] == "final_image"]
    inputs = dict_rows(database, "SELECT input_id FROM sphere.product_inputs WHERE product_id = %s",
                       (image["product_id"],))
    psf = next(r for r in rows if r["product_type"] == "psf_cube")
    assert {i["input_id"] for i in inputs} == {cube["product_id"], psf["product_id"]}
    # a spectrum per candidate found by the request, named as the engine names them
    spectra = [r for r in rows if r["product_type"] == "spectrum"]
    assert spectra and all(r["product_id"].startswith(f"req{rid}.{seq['sequence_id']}.YJ.c")
                           and ".spectrum.v" in r["product_id"] for r in spectra)


def test_archive_reduction_unchanged_and_tables_untouched(ifs_request, database):
    _, seq, before, result, _, _ = ifs_request
    assert _archive_state(database, seq["sequence_id"]) == before
    assert before[0] and all(r["is_current"] for r in before[0])
    # no candidate or limit row points to the request's products
    for table in ("sphere.candidates", "sphere.detection_limits"):
        assert not dict_rows(database, f"SELECT 1 FROM {table} WHERE product_id = ANY(%s)",
                             (result["product_ids"],))


def test_request_runs_digests_include_the_request(ifs_request, database):
    from reduction.recipes import IFS_LEVEL2, IFS_MASTER_CUBE, inputs_digest
    from reduction.sequence_io import load_sequence

    _, seq, _, result, (level1, level2), _ = ifs_request
    runs = {r["recipe"]: r for r in dict_rows(
        database, "SELECT recipe, inputs_digest FROM sphere.runs WHERE run_id = ANY(%s)",
        (result["run_ids"],))}
    with database.connect(autocommit=True) as conn:
        checksums = load_sequence(conn, seq["sequence_id"]).checksums()
    recipe1 = IFS_MASTER_CUBE.with_params(level1)
    tag = f"request:{REQUEST_ID}"
    assert runs[recipe1.name]["inputs_digest"] == inputs_digest(recipe1, [*checksums, tag])
    assert runs[recipe1.name]["inputs_digest"] != inputs_digest(recipe1, checksums)
    cube_sums = [r["checksum"] for r in dict_rows(
        database, "SELECT checksum FROM sphere.products WHERE product_id = ANY(%s) AND "
                  "product_type IN ('master_cube', 'psf_cube')", (result["product_ids"],))]
    recipe2 = IFS_LEVEL2.with_params(level2[0])
    assert runs[recipe2.name]["inputs_digest"] == inputs_digest(recipe2, [*cube_sums, tag])


def test_ifs_request_for_another_algorithm_is_a_note(ifs_request, database):
    from reduction.engine import reduce_for_request

    _, seq, _, _, _, _ = ifs_request
    n_runs = dict_rows(database, "SELECT count(*) AS n FROM sphere.runs")[0]["n"]
    level1, level2 = request_params("IFS", {"algorithm": "median"})
    target = ProductTarget.for_request(REQUEST_ID + 1)
    out = reduce_for_request(seq["sequence_id"], level1, level2, settings=database.settings,
                             target=target)
    assert out["status"] == "failed" and not out["run_ids"] and not out["product_ids"]
    assert "PCA-ASDI only" in out["error"] and "median" in out["error"]
    # IRDIS parameters given for an IFS sequence: said, not run
    irdis1, _ = request_params("IRDIS", {})
    out = reduce_for_request(seq["sequence_id"], irdis1, [], settings=database.settings,
                             target=target)
    assert out["status"] == "failed" and "MasterCubeParams" in out["error"]
    assert dict_rows(database, "SELECT count(*) AS n FROM sphere.runs")[0]["n"] == n_runs


# --- the pieces ----------------------------------------------------------------------------

def test_request_params_per_arm():
    from reduction.recipes import IFS_LEVEL2, IFS_MASTER_CUBE, LEVEL2, MASTER_CUBE

    level1, level2 = request_params("IRDIS", {"algorithm": "median"})
    assert level1 == MASTER_CUBE.params and [p.algorithm for p in level2] == ["median"]
    level1, level2 = request_params("IRDIS", {"algorithm": "pca", "components": [2, 5],
                                              "frame_selection": {"z_max": 3.0}})
    assert level1.selection.z_max == 3.0 and level1.psf == MASTER_CUBE.params.psf
    assert [(p.algorithm, p.ncomp) for p in level2] == [("pca", 2), ("pca", 5)]
    assert level2[0].outer_radius_px == LEVEL2.params.outer_radius_px
    level1, level2 = request_params("IFS", {"algorithm": "pca", "components": 4})
    assert level1 == IFS_MASTER_CUBE.params
    assert level2 == [dataclasses.replace(IFS_LEVEL2.params, ncomp=4)]
    assert request_params("IFS", {})[1] == [IFS_LEVEL2.params]


def test_targets_name_and_date_products():
    from reduction.products import ProductFile

    def product():
        return ProductFile({"product_id": "S1.master_cube.v2", "path": "level1/S1/v2/a.fits",
                            "is_current": True,
                            "release_date": datetime.datetime(2030, 1, 1)}, [])

    p = product()
    assert ARCHIVE.apply([p])[0].row == product().row  # the archive's: nothing changes
    target = ProductTarget.for_request(7, datetime.datetime(2029, 6, 1))
    (q,) = target.apply([product()])
    assert q.row == {"product_id": "req7.S1.master_cube.v2", "is_current": False,
                     "path": "requests/7/level1/S1/v2/a.fits",
                     "release_date": datetime.datetime(2030, 1, 1)}  # the data's is later
    later = ProductTarget.for_request(7, datetime.datetime(2031, 1, 1))
    assert later.apply([product()])[0].row["release_date"] == datetime.datetime(2031, 1, 1)
    assert str(target.folder("/p")) == "/p/requests/7" and str(ARCHIVE.folder("/p")) == "/p"
    assert not target.write_tables and not target.supersede and target.digest_tag == "request:7"
