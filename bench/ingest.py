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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = [  # (dpr_catg, dpr_type, dit_s, ndit, weight)
    ("SCIENCE", "OBJECT", 16.0, 4, 10), ("SCIENCE", "OBJECT,CENTER", 16.0, 1, 1),
    ("SCIENCE", "OBJECT,FLUX", 2.0, 2, 1), ("SCIENCE", "SKY", 16.0, 2, 1),
    ("CALIB", "DARK,BACKGROUND", 16.0, 3, 1), ("CALIB", "DARK,BACKGROUND", 2.0, 3, 1),
    ("CALIB", "FLAT,LAMP", 1.5, 3, 1), ("CALIB", "DARK", 1.65, 3, 1),
]


def header_for(i, rng, n_per_night=400):
    """A realistic IRDIS header for file number ``i`` of the corpus."""
    from astropy.io import fits
    from astropy.time import Time

    weights = np.array([k[4] for k in KINDS], float)
    catg, dtype, dit, ndit, _ = KINDS[rng.choice(len(KINDS), p=weights / weights.sum())]
    night = i // n_per_night
    ob = i // 40
    mjd = 60400.0 + night + 0.05 + (i % n_per_night) * 30.0 / 86400.0
    t = Time(mjd, format="mjd", scale="utc")
    iso = t.isot[:23]
    h = fits.Header()
    for key, value in [
        ("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 16), ("NAXIS2", 16),
        ("BZERO", 32768), ("BSCALE", 1), ("ORIGIN", "ESO-PARANAL"), ("TELESCOP", "ESO-VLT-U3"),
        ("INSTRUME", "SPHERE"), ("OBJECT", f"HD {1000 + ob % 500}" if catg == "SCIENCE" else dtype),
        ("RA", float((ob * 7.3) % 360)), ("DEC", float(-60 + (ob % 100))), ("EQUINOX", 2000.0),
        ("DATE-OBS", iso), ("MJD-OBS", mjd), ("EXPTIME", dit * ndit),
        ("ARCFILE", f"SPHER.{iso}.fits"), ("HIERARCH ESO DPR CATG", catg),
        ("HIERARCH ESO DPR TYPE", dtype),
        ("HIERARCH ESO DPR TECH", "IMAGE,DUAL,CORONOGRAPHY" if catg == "SCIENCE" else "IMAGE"),
        ("HIERARCH ESO SEQ ARM", "IRDIS"), ("HIERARCH ESO INS1 MODE", "DBI"),
        ("HIERARCH ESO INS COMB IFLT", "DB_H23"), ("HIERARCH ESO INS COMB ICOR", "N_ALC_YJH_S"),
        ("HIERARCH ESO INS1 FILT NAME", "B_H"), ("HIERARCH ESO INS1 OPTI2 NAME", "D_H23"),
        ("HIERARCH ESO INS4 FILT2 NAME", "ND_2.0" if dtype == "OBJECT,FLUX" else "OPEN"),
        ("HIERARCH ESO INS4 DROT2 MODE", "ELEV"), ("HIERARCH ESO INS4 DROT2 BEGIN", 10.0),
        ("HIERARCH ESO DET SEQ1 DIT", dit), ("HIERARCH ESO DET NDIT", ndit),
        ("HIERARCH ESO DET FRAM UTC", iso),
        ("HIERARCH ESO TEL PARANG START", -30.0 + (i % 40)),
        ("HIERARCH ESO TEL PARANG END", -29.5 + (i % 40)), ("HIERARCH ESO TEL ALT", 70.0),
        ("HIERARCH ESO TEL AIRM START", 1.05), ("HIERARCH ESO TEL AIRM END", 1.05),
        ("HIERARCH ESO TEL GEOLAT", -24.6268), ("HIERARCH ESO TEL GEOLON", -70.4045),
        ("HIERARCH ESO TEL GEOELEV", 2648.0), ("HIERARCH ESO TEL AMBI FWHM START", 0.7),
        ("HIERARCH ESO TEL AMBI FWHM END", 0.7), ("HIERARCH ESO TEL AMBI TAU0", 0.004),
        ("HIERARCH ESO AOS HO LOOP STATE", "CLOSED_LOOP"),
        ("HIERARCH ESO AOS TT LOOP STATE", "CLOSED_LOOP"),
        ("HIERARCH ESO OCS WAFFLE ORIENT", "x"),
        ("HIERARCH ESO OBS PROG ID", f"1{10 + night % 5:02d}.C-0{ob % 900:03d}(A)"),
        ("HIERARCH ESO OBS ID", 3000000 + ob), ("HIERARCH ESO OBS NAME", f"OB_{ob}"),
        ("HIERARCH ESO OBS PI-COI NAME", "UNKNOWN"),
        ("HIERARCH ESO TPL ID", "SPHERE_irdis_dbi_obs" if catg == "SCIENCE"
         else "SPHERE_irdis_cal_bckg"),
        ("HIERARCH ESO TPL START", iso[:19]), ("HIERARCH ESO TPL EXPNO", 1 + i % 40),
        ("HIERARCH ESO TPL NEXP", 40)]:
        h[key] = value
    return h


def write_corpus(folder, n_files, seed=42):
    """Write ``n_files`` small raw files; return their paths."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    data = (rng.integers(0, 2000, (16, 16)) - 32768).astype(np.int16)
    paths = []
    for i in range(n_files):
        h = header_for(i, rng)
        path = Path(folder) / h["ARCFILE"]
        hdu = fits.PrimaryHDU(data=data, header=h, do_not_scale_image_data=True)
        hdu.writeto(path, overwrite=True)
        paths.append(path)
    return paths


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
    from astropy.io import fits

    from ingest.classify import classify
    from ingest.run import regroup_pending, _add_healpix
    from archive.schema import table_def

    rng = np.random.default_rng(seed)
    cols = table_def("sphere.raw_files").insertable_columns
    rows = []
    for i in range(n_rows):
        h = header_for(i, rng)
        row = classify(dict(h), h["ARCFILE"])
        row.update(file_name=h["ARCFILE"], source_path=None, size_bytes=8640,
                   checksum=f"bench{i:08d}", archive_path="/dev/null")
        rows.append(row)
    _add_healpix(rows)
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
    paths = write_corpus(corpus, args.files)
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
