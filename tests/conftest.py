"""Session fixtures: a real embedded PostgreSQL with pg_sphere, a simulated night.

Nothing of ours is mocked: the database is the project's own embedded
cluster in a temporary ``SPHEREDC_HOME``, started once per test session.
"""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    """Give each test run its own temporary root.

    pytest keeps only its three newest runs under /tmp/pytest-of-<user> and
    deletes older ones when a run starts: runs in parallel (several checkouts on
    one machine) would delete each other's database clusters mid-run.
    """
    import tempfile

    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="spheredc-tests-")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def spheredc_home(tmp_path_factory):
    """A fresh ``SPHEREDC_HOME`` for the session, exported for subprocesses."""
    home = tmp_path_factory.mktemp("spheredc_home")
    old = os.environ.get("SPHEREDC_HOME")
    os.environ["SPHEREDC_HOME"] = str(home)
    os.environ.pop("SPHEREDC_DATABASE_URL", None)
    yield home
    if old is None:
        os.environ.pop("SPHEREDC_HOME", None)
    else:
        os.environ["SPHEREDC_HOME"] = old


@pytest.fixture(scope="session")
def database(spheredc_home):
    """The embedded database (started, migrated), stopped at the end of the session."""
    from archive.config import load_settings
    from archive.db import Database

    db = Database(load_settings())
    db.ensure_ready()
    yield db
    db.engine.dispose()
    db.cluster.stop()


@pytest.fixture(scope="session")
def external_database(tmp_path_factory):
    """A second cluster reached only through ``SPHEREDC_DATABASE_URL`` over TCP.

    It stands for "any PostgreSQL by configuration": spheredc does not manage it.
    """
    from archive.config import Settings
    from archive.db import Database
    from archive.embedded import EmbeddedCluster

    home = tmp_path_factory.mktemp("external_pg")
    port = _free_port()
    cluster = EmbeddedCluster(Settings(home=home))
    cluster.start(port=port)
    url = f"postgresql://spheredc@127.0.0.1:{port}/spheredc"
    yield Database(Settings(home=tmp_path_factory.mktemp("ext_home"), database_url=url))
    cluster.stop()


@pytest.fixture(scope="session")
def small_night(tmp_path_factory):
    """A simulated ``--small`` night (seed 1): (folder, truth dict)."""
    from reduction.simulator import simulate_night

    out = tmp_path_factory.mktemp("night_seed1")
    truth = simulate_night(str(out), seed=1, small=True)
    return out, truth


@contextlib.contextmanager
def served(env, log_path, *serve_args):
    """``spheredc serve`` (gunicorn) on a free loopback port; yields its base URL."""
    port = _free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "spheredc.serve_cmd", "--port", str(port),
                                 *map(str, serve_args)], cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server did not start: " + Path(log_path).read_text()[-3000:])
            time.sleep(0.2)
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_cli(*args, env=None, timeout=600, check=False):
    """Run ``spheredc`` in a subprocess, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "spheredc", *map(str, args)], cwd=REPO,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"spheredc {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def dict_rows(database, sql, args=()):
    """Rows of ``sql`` as dicts, read by the archive's owner (no row-level security)."""
    from psycopg.rows import dict_row

    with database.connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def ingest_small_night(database, small_night):
    """Ingest the small night (`small_night` fixture) with ``spheredc ingest``.

    Returns
    -------
    truth : dict
        The simulator's truth.
    sequence_ids : dict
        Truth label of each sequence to its ``sphere.sequences.sequence_id``.
    """
    folder, truth = small_night
    proc = run_cli("ingest", *sorted(folder.glob("SPHER.*")))
    assert proc.returncode in (0, 3), proc.stderr
    sequence_ids = {}
    for label, seq in truth["sequences"].items():
        arcfile = truth["files"][seq["files"][0]]["arcfile"]
        sequence_ids[label] = dict_rows(database, "SELECT sequence_id FROM sphere.raw_files "
                                                  "WHERE arcfile = %s",
                                        (arcfile,))[0]["sequence_id"]
    return truth, sequence_ids


def nearest_candidate(cands, comp, pixscale_arcsec):
    """``(candidate, distance_px)`` of the candidate row nearest a simulated companion.

    ``cands`` are ``sphere.candidates`` rows (dicts), ``comp`` a truth companion
    (``sep_arcsec``, ``pa_deg``); ``(None, inf)`` when there is no candidate.
    """
    import numpy as np

    if not cands:
        return None, float("inf")
    dx = [c["dra_arcsec"] - comp["sep_arcsec"] * np.sin(np.radians(comp["pa_deg"]))
          for c in cands]
    dy = [c["ddec_arcsec"] - comp["sep_arcsec"] * np.cos(np.radians(comp["pa_deg"]))
          for c in cands]
    dist_px = np.hypot(dx, dy) / pixscale_arcsec
    k = int(np.argmin(dist_px))
    return cands[k], float(dist_px[k])
