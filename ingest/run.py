"""Ingest orchestration: files in, archive rows out (the database edge of ingest).

Worker processes read, checksum, classify and store each file (pure functions
of `ingest.fitsfiles` and `ingest.classify`, plus `archive.store`); the main
process writes the rows in batches, one transaction per batch, with
``ON CONFLICT (checksum) DO NOTHING`` so the same bytes are one file whatever
their name and a re-run after an interruption adds only what is missing.
Sequences and calibration associations are then recomputed for every night
that received files not yet grouped (`regroup_pending`), in one transaction:
an interrupted run leaves those files flagged and the next run finishes the
job.
"""
import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor

from archive.access import default_release_date
from archive.store import store_file

#: Rows written per transaction.
BATCH_SIZE = 256
#: Calibrations are searched this far around a sequence (distortion rule).
CALIB_WINDOW_DAYS = 20.0

RAW_TABLE = "sphere.raw_files"
QUARANTINE_TABLE = "sphere.quarantine"


@dataclasses.dataclass
class IngestReport:
    """What one ingest run did (``--json`` prints it)."""

    files_seen: int = 0
    ingested: int = 0
    already_archived: int = 0
    quarantined: int = 0
    quarantine_already: int = 0
    sequences_updated: int = 0
    nights_regrouped: list = dataclasses.field(default_factory=list)
    refused: list = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def files_per_s(self):
        return self.files_seen / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["files_per_s"] = round(self.files_per_s, 1)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d


def _process_file(path, files_dir):
    """Worker: read, classify and store one file; never raises."""
    from . import classify, exceptions, fitsfiles

    try:
        info = fitsfiles.read_file(path)
        row = classify.classify(info["header"], info["file_name"])
    except exceptions.UnreadableFile as exc:
        return _refusal(path, files_dir, exc.reason_code, exc.reason, exc.checksum)
    except exceptions.IngestRefusal as exc:  # not SPHERE, not classifiable
        return _refusal(path, files_dir, exc.reason_code, exc.reason, info["checksum"])
    except OSError as exc:
        return _refusal(path, files_dir, "unreadable", f"cannot read the file: {exc}", None)
    row.update(file_name=info["file_name"], source_path=os.path.abspath(path),
               size_bytes=info["size_bytes"], checksum=info["checksum"],
               release_date=default_release_date(row.get("mjd_obs"),
                                                 dpr_catg=row.get("dpr_catg")))
    row["archive_path"] = str(store_file(path, files_dir, "raw", info["checksum"],
                                         info["file_name"]))
    return "ok", row


def _refusal(path, files_dir, code, reason, checksum):
    """The quarantine row of a refused file, whose bytes are kept too."""
    from .fitsfiles import sha256_of

    row = {"file_name": os.path.basename(path), "source_path": os.path.abspath(path),
           "size_bytes": None, "archive_path": None, "reason_code": code, "reason": reason}
    try:
        row["checksum"] = checksum or sha256_of(path)
        row["size_bytes"] = os.path.getsize(path)
        row["archive_path"] = str(store_file(path, files_dir, "quarantine", row["checksum"],
                                             row["file_name"]))
    except OSError as err:  # unreadable bytes: keep the reason, key on the path
        row["checksum"] = "unreadable:" + os.path.abspath(path)
        row["reason"] = f"{reason} ({err.strerror or err})"
    return "refused", row


def _insert(conn, table, rows, conflict_key="checksum"):
    """Insert ``rows`` (dicts) into ``table``; return the keys actually inserted."""
    from archive.schema import table_def

    cols = [c for c in table_def(table).insertable_columns if any(c in r for r in rows)]
    sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
           f"ON CONFLICT ({conflict_key}) DO NOTHING RETURNING {conflict_key}")
    inserted = set()
    with conn.cursor() as cur:
        cur.executemany(sql, [[r.get(c) for c in cols] for r in rows], returning=True)
        while True:
            got = cur.fetchone()
            if got:
                inserted.add(got[0])
            if not cur.nextset():
                break
    return inserted


def _flush(conn, ok_rows, refused_rows, report):
    if not ok_rows and not refused_rows:
        return
    with conn.transaction():
        if ok_rows:
            new = _insert(conn, RAW_TABLE, ok_rows)
            report.ingested += len(new)
            report.already_archived += len(ok_rows) - len(new)
        if refused_rows:
            new = _insert(conn, QUARANTINE_TABLE, refused_rows)
            report.quarantined += len(refused_rows)
            report.quarantine_already += len(refused_rows) - len(new)
            report.refused.extend({"file": r["source_path"], "reason_code": r["reason_code"],
                                   "reason": r["reason"]} for r in refused_rows)


def ingest_paths(paths, database, workers=None, progress=False):
    """Ingest files and folders into the archive.

    Parameters
    ----------
    paths : list of str
        Files and folders (walked recursively).
    database : archive.db.Database
        Where to write.
    workers : int, optional
        Worker processes reading headers (default: the number of CPUs).
    progress : bool
        Show a progress bar (files/s) on standard error.

    Returns
    -------
    IngestReport
    """
    from functools import partial

    from tqdm import tqdm

    from .fitsfiles import find_files

    t0 = time.perf_counter()
    report = IngestReport()
    files = find_files(paths)
    report.files_seen = len(files)
    workers = workers or os.cpu_count() or 1
    files_dir = database.settings.files_dir
    with database.connect() as conn:
        # A previous run killed before grouping left files flagged: finish it first.
        regroup_pending(conn, report)
        ok_rows, refused_rows = [], []
        work = partial(_process_file, files_dir=files_dir)
        bar = tqdm(total=len(files), unit="file", disable=not progress, smoothing=0.1,
                   desc="ingest")
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for status, row in pool.map(work, files, chunksize=max(1, min(32, len(files) // (4 * workers) or 1))):
                (ok_rows if status == "ok" else refused_rows).append(row)
                bar.update()
                if len(ok_rows) + len(refused_rows) >= BATCH_SIZE:
                    _flush(conn, ok_rows, refused_rows, report)
                    ok_rows, refused_rows = [], []
        _flush(conn, ok_rows, refused_rows, report)
        bar.close()
        regroup_pending(conn, report)
    report.elapsed_s = time.perf_counter() - t0
    return report


def regroup_pending(conn, report=None):
    """Regroup the nights holding files not yet grouped, and re-associate calibrations.

    Everything happens in one transaction, so an interruption leaves the
    files flagged ``grouped = false`` for the next run.
    """
    from .grouping import regroup_nights

    with conn.transaction():
        nights = [r[0] for r in conn.execute(
            f"SELECT DISTINCT night FROM {RAW_TABLE} WHERE NOT grouped AND night IS NOT NULL "
            "ORDER BY 1")]
        if not nights:
            conn.execute(f"UPDATE {RAW_TABLE} SET grouped = true WHERE NOT grouped")
            return
        n = regroup_nights(conn, nights)
        conn.execute(f"UPDATE {RAW_TABLE} SET grouped = true WHERE NOT grouped")
        # Programmes with their own proprietary period override the default year.
        if conn.execute("SELECT EXISTS (SELECT 1 FROM sphere.programmes)").fetchone()[0]:
            from archive.access import apply_programme_periods

            apply_programme_periods(conn)
    if report is not None:
        report.sequences_updated += n
        report.nights_regrouped.extend(nights)
