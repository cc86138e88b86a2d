"""The Dask engine on a fresh archive: a killed run leaves nothing half registered and
resumes with ``--pending`` on an external ``dask scheduler`` + ``dask worker``; a failing
sequence is recorded with its error while the others finish."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(600)
DASK = str(Path(sys.executable).with_name("dask"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory, small_night):
    """A fresh embedded archive holding the small night, and its environment."""
    from archive.config import Settings
    from archive.db import Database

    home = tmp_path_factory.mktemp("engine_home")
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    env.pop("SPHEREDC_DATABASE_URL", None)
    env.pop("SPHEREDC_DASK_SCHEDULER", None)
    db = Database(Settings(home=home))
    db.ensure_ready()
    proc = subprocess.run([sys.executable, "-m", "spheredc", "ingest", str(small_night[0])],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 3), proc.stderr
    yield db, env, small_night[1]
    db.engine.dispose()
    db.cluster.stop()


def _reduce(env, *args, **popen):
    cmd = [sys.executable, "-m", "spheredc.reduce_cmd", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=500)


def _query(db, sql, args=()):
    with db.connect(autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def dask_cluster(archive):
    """``dask scheduler`` and ``dask worker`` as separate processes on loopback."""
    _, env, _ = archive
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    # as reduction.engine advises for external workers (glibc trimming slows level 1)
    worker_env = dict(env)
    worker_env["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_"] = "None"
    procs.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "2", "--nthreads",
                                   "1", "--no-dashboard", "--memory-limit", "3GiB"],
                                  cwd=REPO, env=worker_env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True))
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for p in reversed(procs):
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_killed_run_registers_nothing_and_resumes_on_external_scheduler(archive,
                                                                         dask_cluster):
    db, env, truth = archive
    proc = _reduce(env, "--pending", "--no-dask", popen=True)
    deadline = time.monotonic() + 120
    while not _query(db, "SELECT 1 FROM sphere.runs WHERE status = 'running' "
                         "AND recipe = 'spheredc_ird_master_cube'"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)  # well inside the reduction: nothing is registered before its end
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _query(db, "SELECT count(*) FROM sphere.products WHERE level = 1") == [(0,)]
    killed = _query(db, "SELECT run_id FROM sphere.runs WHERE status = 'running' "
                        "AND recipe = 'spheredc_ird_master_cube'")
    assert len(killed) == 1
    # a calibration run killed on the way registered nothing either
    assert not _query(db, "SELECT 1 FROM sphere.runs r JOIN sphere.products p USING (run_id) "
                          "WHERE r.status = 'running'")

    # --pending on the external cluster finishes the job
    ext = dict(env, SPHEREDC_DASK_SCHEDULER=dask_cluster)
    done = _reduce(ext, "--pending", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["scheduler"] == dask_cluster
    # the two IRDIS sequences and the IFS one (sph_ifs_science_dr cubes)
    assert sorted(r["status"] for r in report["sequences"]) == ["done", "done", "done"]
    assert _query(db, "SELECT count(*) FROM sphere.products WHERE level = 1 AND "
                      "run_id = %s", (killed[0][0],)) == [(0,)]
    for r in report["sequences"]:
        files = _query(db, "SELECT path, checksum FROM sphere.products WHERE sequence_id = %s "
                           "AND level = 1", (r["sequence_id"],))
        assert len(files) == 4
        assert all((db.settings.products_dir / p).is_file() for p, _ in files)
    # no temporary file left behind by the killed run under a product's name
    leftovers = [p for p in db.settings.products_dir.rglob("*") if p.name.endswith(".part")]
    assert all(not _query(db, "SELECT 1 FROM sphere.products WHERE path LIKE %s",
                          (f"%{p.name}",)) for p in leftovers)

    again = _reduce(ext, "--pending", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["sequences"] == []


def test_failing_sequence_is_recorded_and_the_others_finish(archive, dask_cluster):
    db, env, truth = archive
    env = dict(env, SPHEREDC_DASK_SCHEDULER=dask_cluster)  # warm workers: no start-up
    main = truth["sequences"]["irdis_dbi_main"]
    # the first file the science step reads: the sequence fails early, the other finishes
    arcfile = next(truth["files"][f]["arcfile"] for f in main["files"]
                   if truth["files"][f]["dpr_type"] == "OBJECT,CENTER")
    (path,) = _query(db, "SELECT archive_path FROM sphere.raw_files WHERE arcfile = %s",
                     (arcfile,))[0]
    hidden = Path(path).with_name("hidden.fits")
    os.rename(path, hidden)  # the archived copy vanishes (a disk problem)
    try:
        proc = _reduce(env, "--night", truth["night"], "--json")
    finally:
        os.rename(hidden, path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = {r["status"]: r for r in json.loads(proc.stdout)["sequences"]}
    assert set(results) == {"failed", "done"}
    assert "FileNotFoundError" in results["failed"]["error"]
    status, error = _query(db, "SELECT status, error FROM sphere.runs WHERE run_id = %s",
                           (results["failed"]["run_id"],))[0]
    assert status == "failed" and "FileNotFoundError" in error
    assert not _query(db, "SELECT 1 FROM sphere.products WHERE run_id = %s",
                      (results["failed"]["run_id"],))
