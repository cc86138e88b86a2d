"""Ingest end to end: the real command, the real embedded PostgreSQL, real files."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.conftest import REPO, run_cli


def _corpus(folder, n_files, seed=42):
    from reduction.simulator.corpus import write_header_corpus

    folder.mkdir(parents=True, exist_ok=True)
    return write_header_corpus(folder, n_files, seed=seed)


def _fits_files(folder):
    """The night's FITS files (its folder also holds truth.json, which is no raw file)."""
    return sorted(folder.glob("SPHER.*"))


def _query(db, sql, params=()):
    with db.connect() as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def night_archive(database, small_night):
    """The small simulated night ingested once through the command line."""
    folder, truth = small_night
    proc = run_cli("ingest", *_fits_files(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), truth


def test_every_file_is_classified_as_the_truth_says(database, night_archive):
    report, truth = night_archive
    # (another module may have ingested the night already: same bytes, same rows)
    assert report["ingested"] + report["already_archived"] == len(truth["files"])
    assert report["quarantined"] == 0
    cols = ("dpr_catg", "dpr_type", "dpr_tech", "arm", "ins_mode", "filter", "coronagraph",
            "nd_filter", "derot_mode", "dit", "ndit", "night", "level")
    rows = {r[0]: r[1:] for r in _query(
        database, f"SELECT file_name, {', '.join(cols)} FROM sphere.raw_files")}
    for name, expected in truth["files"].items():
        got = dict(zip(cols, rows[name]))
        for col in cols:
            want = expected[col]
            if isinstance(want, float):
                assert got[col] == pytest.approx(want), (name, col)
            else:
                assert got[col] == want, (name, col, got[col], want)


def test_sequences_and_missing_calibrations_match_the_truth(database, night_archive):
    _, truth = night_archive
    got = {}
    for seq_id, missing, status in _query(
            database, "SELECT sequence_id, missing_calibrations, calib_status "
                      "FROM sphere.sequences"):
        files = {r[0] for r in _query(
            database, "SELECT file_name FROM sphere.raw_files WHERE sequence_id = %s",
            (seq_id,))}
        got[frozenset(files)] = (sorted(missing or []), status)
    assert len(got) == len(truth["sequences"])
    for label, seq in truth["sequences"].items():
        key = frozenset(seq["files"])
        assert key in got, f"sequence {label} not grouped as the truth says"
        missing, status = got[key]
        assert missing == sorted(seq["missing_calibrations"]), label
        ra, dec = _query(database, "SELECT s.ra, s.dec FROM sphere.sequences s JOIN "
                                   "sphere.raw_files r USING (sequence_id) WHERE r.file_name = %s",
                         (seq["files"][0],))[0]
        assert (ra, dec) == (pytest.approx(seq["ra"], abs=1e-6), pytest.approx(seq["dec"], abs=1e-6))
        assert status == ("incomplete" if missing else
                          "not_required" if seq["arm"] == "IFS" else status)


def test_sequences_command_speaks_plainly(database, night_archive):
    _, truth = night_archive
    proc = run_cli("sequences", check=True)
    text = proc.stdout
    assert "CALIBRATIONS MISSING" in text
    assert "flat" in text.lower() and "BB_Ks" in text
    as_json = json.loads(run_cli("sequences", "--json", check=True).stdout)
    assert len(as_json) == len(truth["sequences"])
    night = truth["night"]
    assert len(json.loads(run_cli("sequences", "--json", "--night", night).stdout)) == \
        len(truth["sequences"])
    assert json.loads(run_cli("sequences", "--json", "--night", "1999-01-01").stdout) == []
    assert "No sequence matches" in run_cli("sequences", "--target", "no such star").stdout
    one = run_cli("sequences", "--limit", "1", check=True).stdout
    assert f"the 1 newest of {len(truth['sequences'])} sequences" in one
    target = truth["sequences"]["irdis_ci_missing"]["target_name"]
    only = json.loads(run_cli("sequences", "--json", "--target", target.lower()).stdout)
    assert [r["target_name"] for r in only] == [target]


def test_same_bytes_under_another_name_is_one_file(database, night_archive, small_night,
                                                   tmp_path):
    folder, truth = small_night
    first = sorted(truth["files"])[0]
    shutil.copy(folder / first, tmp_path / "renamed_copy.fits")
    before = _query(database, "SELECT count(*) FROM sphere.raw_files")[0][0]
    report = json.loads(run_cli("ingest", *_fits_files(folder), tmp_path, "--json").stdout)
    assert report["ingested"] == 0
    assert report["already_archived"] == len(truth["files"]) + 1
    assert _query(database, "SELECT count(*) FROM sphere.raw_files")[0][0] == before


def _bad_files(folder):
    """One file of every kind ingest must refuse, with the reason code expected."""
    folder.mkdir()
    good = fits.Header()
    for k, v in [("INSTRUME", "SPHERE"), ("DATE-OBS", "2025-01-01T03:00:00.000"),
                 ("MJD-OBS", 60676.125)]:
        good[k] = v
    (folder / "notes.txt").write_text("this is not FITS\n")
    (folder / "empty.fits").write_bytes(b"")
    fits.PrimaryHDU(np.zeros((64, 64), np.int16), header=good).writeto(folder / "full.fits")
    data = (folder / "full.fits").read_bytes()
    (folder / "truncated.fits").write_bytes(data[: len(data) // 2])
    (folder / "garbage.fits").write_bytes(b"SIMPLE  =                    T" + os.urandom(4000))
    fits.PrimaryHDU(np.zeros((4, 4), np.int16), header=good).writeto(folder / "nokeys.fits")
    naco = good.copy()
    naco["INSTRUME"] = "NAOS+CONICA"
    fits.PrimaryHDU(np.zeros((4, 4), np.int16), header=naco).writeto(folder / "naco.fits")
    os.remove(folder / "full.fits")
    return {"notes.txt": "not_fits", "empty.fits": "not_fits", "truncated.fits": "corrupt",
            "garbage.fits": "corrupt", "nokeys.fits": "not_classifiable",
            "naco.fits": "not_sphere"}


def test_bad_files_are_quarantined_with_reasons_and_kept(database, tmp_path):
    expected = _bad_files(tmp_path / "bad")
    proc = run_cli("ingest", tmp_path / "bad", "--json")
    assert proc.returncode == 3, "the exit status must say that files were refused"
    report = json.loads(proc.stdout)
    assert report["quarantined"] == len(expected)
    by_name = {Path(r["file"]).name: r for r in report["refused"]}
    for name, code in expected.items():
        assert by_name[name]["reason_code"] == code, (name, by_name[name])
        assert by_name[name]["reason"]
    rows = {r[0]: r[1:] for r in _query(
        database, "SELECT file_name, reason_code, archive_path, checksum FROM sphere.quarantine "
                  "WHERE file_name = ANY(%s)", (list(expected),))}
    for name, code in expected.items():
        reason_code, archive_path, checksum = rows[name]
        assert reason_code == code
        kept = Path(archive_path).read_bytes()  # nothing is lost
        assert hashlib.sha256(kept).hexdigest() == checksum
    # refused twice is still one row each, and the text summary names them
    again = run_cli("ingest", tmp_path / "bad")
    assert again.returncode == 3 and "truncated.fits" in again.stdout
    assert _query(database, "SELECT count(*) FROM sphere.quarantine WHERE file_name = ANY(%s)",
                  (list(expected),))[0][0] == len(expected)


def test_missing_path_is_a_clear_error(database, tmp_path):
    proc = run_cli("ingest", tmp_path / "does_not_exist")
    assert proc.returncode != 0
    assert "does_not_exist" in proc.stderr and "Traceback" not in proc.stderr


def _state(db):
    files = _query(db, "SELECT checksum, sequence_id FROM sphere.raw_files ORDER BY 1")
    seqs = _query(db, "SELECT sequence_id, n_files, calib_status, missing_calibrations "
                      "FROM sphere.sequences ORDER BY 1")
    assocs = _query(db, "SELECT sequence_id, role, calib_key, checksum "
                        "FROM sphere.calib_associations ORDER BY 1, 2, 3, 4")
    return files, seqs, assocs


def test_killed_ingest_resumes_to_a_complete_duplicate_free_archive(tmp_path,
                                                                    external_database):
    corpus = tmp_path / "corpus"
    paths = _corpus(corpus, 1200)
    checksums = sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)

    # reference: one uninterrupted run into the external database
    ext_env = {"SPHEREDC_DATABASE_URL": external_database.settings.database_url,
               "SPHEREDC_HOME": str(external_database.settings.home)}
    assert run_cli("ingest", corpus, "--json", env=ext_env).returncode == 0
    reference = _state(external_database)

    # a fresh embedded archive, killed several times mid-run, then run to the end
    from archive.config import Settings
    from archive.db import Database

    home = tmp_path / "home"
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    env.pop("SPHEREDC_DATABASE_URL", None)
    db = Database(Settings(home=home))
    db.ensure_ready()
    try:
        seen = 0
        for _ in range(2):  # killed twice, each time just after a batch was committed
            proc = subprocess.Popen([sys.executable, "-m", "spheredc", "ingest", str(corpus)],
                                    cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if _query(db, "SELECT count(*) FROM sphere.raw_files")[0][0] > seen:
                    break
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            seen = _query(db, "SELECT count(*) FROM sphere.raw_files")[0][0]
        assert 0 < seen < len(paths), "the kills came too late to test anything"
        final = run_cli("ingest", corpus, "--json", env={"SPHEREDC_HOME": str(home)})
        assert final.returncode == 0, final.stderr
        files, seqs, assocs = _state(db)
        assert sorted(f[0] for f in files) == checksums
        assert (files, seqs, assocs) == reference
        assert _query(db, "SELECT count(*) FROM sphere.raw_files WHERE NOT grouped")[0][0] == 0
    finally:
        db.cluster.stop()
