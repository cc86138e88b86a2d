"""Level-1 reduction of a full-size IRDIS sequence: wall time and peak memory.

The simulator's default night holds the full-size DBI sequence (32 OBJECT files x
NDIT 2 at 2048x1024, plus FLUX, CENTER, SKY, and its calibrations). For each mode
the night is ingested into a fresh embedded archive (so both modes compute their
calibration products) and the sequence is reduced by ``spheredc reduce
--sequence ID`` in a subprocess:

- ``single``: ``--no-dask``, one process;
- ``dask``: the default `distributed.LocalCluster` sized to the machine.

Peak memory is the largest sum of RSS over the command's process tree (sampled
every 0.1 s with psutil), wall time is the command's. Targets (issue 3):
< 2 minutes and < 4 GiB on 2 cores.

Run: ``.venv/bin/python bench/level1.py [--workdir /tmp/spheredc-bench-level1]``
(the simulated night is kept in WORKDIR/night and reused).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _tree_rss(proc):
    """Sum of RSS (bytes) of a process and its descendants."""
    import psutil

    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a worker may exit while we look
            pass
    return total


def run_measured(cmd, env):
    """Run ``cmd``; return (returncode, stdout, wall seconds, peak tree RSS bytes)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(ps))
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    thread.join()
    return proc.returncode, out, wall, peak[0]


def fresh_archive(home, night_dir):
    """Embedded archive in ``home`` with the night ingested; returns (db, env)."""
    from archive.config import Settings
    from archive.db import Database
    from ingest.run import ingest_paths

    if home.exists():
        shutil.rmtree(home)
    db = Database(Settings(home=home))
    db.ensure_ready()
    ingest_paths([str(night_dir)], db)
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    env.pop("SPHEREDC_DATABASE_URL", None)
    env.pop("SPHEREDC_DASK_SCHEDULER", None)
    return db, env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="/tmp/spheredc-bench-level1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default="single,dask")
    args = p.parse_args(argv)

    from reduction.simulator import simulate_night

    work = Path(args.workdir)
    night_dir = work / "night"
    if not (night_dir / "truth.json").exists():
        t = time.perf_counter()
        simulate_night(str(night_dir), seed=args.seed)
        print(f"simulated the full night in {time.perf_counter() - t:.0f} s", flush=True)
    truth = json.loads((night_dir / "truth.json").read_text())
    seq = truth["sequences"]["irdis_dbi_main"]
    first = truth["files"][seq["files"][0]]["arcfile"]
    print(f"sequence irdis_dbi_main: {seq['n_object']} OBJECT files, "
          f"{len(seq['frames'])} frames in truth, {len(seq['files'])} files", flush=True)

    results = {}
    for mode in args.modes.split(","):
        db, env = fresh_archive(work / f"home-{mode}", night_dir)
        try:
            with db.connect(autocommit=True) as conn:
                sid = conn.execute("SELECT sequence_id FROM sphere.raw_files WHERE arcfile = %s",
                                   (first,)).fetchone()[0]
            cmd = [sys.executable, "-m", "spheredc.reduce_cmd", "--sequence", sid, "--json"]
            if mode == "single":
                cmd.append("--no-dask")
            rc, out, wall, peak = run_measured(cmd, env)
            report = json.loads(out)["sequences"][0] if rc in (0, 1, 3) and out else {}
            results[mode] = {"returncode": rc, "status": report.get("status"),
                             "wall_s": round(wall, 1), "peak_rss_gib": round(peak / 2 ** 30, 2),
                             "timings": report.get("timings")}
            print(f"{mode:7s} rc={rc} status={report.get('status')} wall {wall:6.1f} s  "
                  f"peak {peak / 2 ** 30:5.2f} GiB  steps {report.get('timings')}", flush=True)
        finally:
            db.engine.dispose()
            db.cluster.stop()
    print(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
