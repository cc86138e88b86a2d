"""Ingest throughput and ``spheredc sequences`` latency (issue: archive backbone).

1. Writes a corpus of SPHERE-like raw files (realistic headers, 16x16 data:
   headers are what matters) spread over nights, OBs and calibrations.
2. Times, on the same files and in the same run, the floor (a loop of
   ``astropy.io.fits.getheader`` in one process) and ``spheredc ingest`` with
   its default workers into a fresh embedded archive (median of --repeat runs,
   the archive emptied between runs).
3. Loads an archive of --archive-files raw-file rows (default 100,000,
   classified rows written with COPY, then grouped into sequences by the same
   code as ingest) and times ``spheredc sequences`` as a user runs it (a new
   process each time), median of 10, beside the same query in psql.

Run: ``.venv/bin/python bench/ingest.py [--files 3000] [--archive-files 100000]``.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

def floor_getheader(paths):
    from astropy.io import fits

    t0 = time.perf_counter()
    for p in paths:
        fits.getheader(p)
    return time.perf_counter() - t0


def time_ingest(folder, env):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "spheredc", "ingest", str(folder), "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        raise RuntimeError(proc.stderr)
    return elapsed


def empty_archive(db):
    with db.connect() as conn:
        conn.execute("TRUNCATE sphere.raw_files, sphere.sequences, sphere.calib_associations, "
                     "sphere.quarantine")
        conn.commit()


def load_big_archive(db, n_rows, seed=7):
    """Write ``n_rows`` classified raw-file rows with COPY, then group them."""
    from ingest.classify import classify
    from reduction.simulator.corpus import header_for
    from ingest.run import regroup_pending
    from archive.schema import table_def

    import numpy as np

    rng = np.random.default_rng(seed)
    cols = [c for c in table_def("sphere.raw_files").insertable_columns
            if c not in ("grouped", "ingested_at")]  # server defaults
    rows = []
    for i in range(n_rows):
        h = header_for(i, rng)
        row = classify(dict(h), h["ARCFILE"])
        row.update(file_name=h["ARCFILE"], source_path=None, size_bytes=8640,
                   checksum=f"bench{i:08d}", archive_path="/dev/null")
        rows.append(row)
    with db.connect() as conn:
        with conn.cursor().copy(f"COPY sphere.raw_files ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row([r.get(c) for c in cols])
        conn.commit()
        t0 = time.perf_counter()
        regroup_pending(conn)
        grouping_s = time.perf_counter() - t0
        n_seq = conn.execute("SELECT count(*) FROM sphere.sequences").fetchone()[0]
    return grouping_s, n_seq


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--archive-files", type=int, default=100_000)
    args = ap.parse_args()

    from archive.config import load_settings
    from archive.db import Database

    work = Path(tempfile.mkdtemp(prefix="spheredc_bench_"))
    env = dict(os.environ, SPHEREDC_HOME=str(work / "home"))
    env.pop("SPHEREDC_DATABASE_URL", None)
    os.environ.update(SPHEREDC_HOME=env["SPHEREDC_HOME"])
    db = Database(load_settings(env))
    db.ensure_ready()

    corpus = work / "corpus"
    corpus.mkdir()
    from reduction.simulator.corpus import write_header_corpus

    paths = write_header_corpus(corpus, args.files)
    floors, ours = [], []
    for _ in range(args.repeat):
        floors.append(floor_getheader(paths))
        empty_archive(db)
        ours.append(time_ingest(corpus, env))
    floor_rate = args.files / statistics.median(floors)
    our_rate = args.files / statistics.median(ours)
    print(f"ingest of {args.files} files (median of {args.repeat}, {os.cpu_count()} cores)")
    print(f"  floor  astropy getheader loop, 1 process : {floor_rate:8.0f} files/s")
    print(f"  ours   spheredc ingest, default workers  : {our_rate:8.0f} files/s "
          f"(checksums, classification, archive copy, database rows, sequences)")
    print(f"  ratio  ours / floor                      : {our_rate / floor_rate:8.2f}  "
          "(target >= 0.50)")

    empty_archive(db)
    grouping_s, n_seq = load_big_archive(db, args.archive_files)
    cli, psql = [], []
    psql_bin = "/usr/lib/postgresql/15/bin/psql" if Path(
        "/usr/lib/postgresql/15/bin/psql").exists() else "psql"
    for _ in range(10):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "spheredc", "sequences"], cwd=REPO, env=env,
                       check=True, capture_output=True)
        cli.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([psql_bin, db.conninfo, "-Atc",
                        "SELECT * FROM sphere.sequences ORDER BY mjd_start DESC"],
                       check=True, capture_output=True)
        psql.append(time.perf_counter() - t0)
    print(f"archive of {args.archive_files} raw files, {n_seq} sequences "
          f"(grouped in {grouping_s:.1f} s)")
    print(f"  spheredc sequences (new process)   : {1000 * statistics.median(cli):7.1f} ms "
          "(median of 10; target < 200 ms)")
    print(f"  psql, same table (new process)     : {1000 * statistics.median(psql):7.1f} ms")
    db.cluster.stop()


if __name__ == "__main__":
    main()
