"""What ingest tells people: the end-of-run summary and the sequence listing.

Kept light (psycopg and the standard library only) so ``spheredc sequences``
answers fast even on a large archive.
"""

SEQUENCE_COLUMNS = ("sequence_id", "night", "target_name", "arm", "ins_mode", "filter",
                    "coronagraph", "derot_mode", "prog_id", "level", "mjd_start", "mjd_end",
                    "n_object", "n_center", "n_flux", "n_sky", "field_rotation_deg",
                    "seeing_arcsec", "tau0_s", "calib_status", "missing_calibrations",
                    "calib_warnings", "quality_flags")

_STATUS_WORDS = {
    "complete": "all calibrations found",
    "complete_with_warnings": "calibrations found, some with warnings",
    "incomplete": "CALIBRATIONS MISSING",
    "not_required": "calibrated upstream, nothing needed",
}


def _where(night, target):
    where, params = [], []
    if night:
        where.append("night = %s")
        params.append(night)
    if target:
        where.append("target_name ILIKE %s")
        params.append("%" + target.replace("%", r"\%").replace("_", r"\_") + "%")
    return (" WHERE " + " AND ".join(where) if where else ""), params


def count_sequences(fetch, night=None, target=None):
    """Number of sequences matching the filters of `fetch_sequences`."""
    where, params = _where(night, target)
    return fetch("SELECT count(*) FROM sphere.sequences" + where, params)[0][0]


def fetch_sequences(fetch, night=None, target=None, limit=None):
    """Sequences as dicts, newest first, optionally for one night or target.

    Parameters
    ----------
    fetch : callable
        ``fetch(sql, params) -> rows``, e.g. `archive.db.Database.fetch`.
    night : str, optional
        ``YYYY-MM-DD``.
    target : str, optional
        Case-insensitive substring of the target name.
    limit : int, optional
        At most this many rows.
    """
    where, params = _where(night, target)
    sql = (f"SELECT {', '.join(SEQUENCE_COLUMNS)} FROM sphere.sequences" + where
           + " ORDER BY mjd_start DESC, sequence_id"
           + (" LIMIT %s" if limit else ""))
    if limit:
        params.append(int(limit))
    return [dict(zip(SEQUENCE_COLUMNS, row)) for row in fetch(sql, params)]


def format_sequences(rows, filtered=False):
    """One screen of text: a line per sequence, then what is missing in words."""
    from .words import describe_flag, describe_missing, describe_warning

    if not rows:
        if filtered:
            return "No sequence matches (spheredc sequences without filters lists them all)."
        return "No sequences in the archive (ingest some files with 'spheredc ingest PATH')."
    lines = [f"{'sequence':34s} {'night':10s} {'target':16s} {'setup':22s} {'obj':>4s} "
             f"{'rot':>6s}  calibrations"]
    for r in rows:
        setup = "/".join(str(x) for x in (r["arm"], r["ins_mode"], r["filter"]) if x)
        rot = "" if r["field_rotation_deg"] is None else f"{r['field_rotation_deg']:5.1f}d"
        lines.append(f"{r['sequence_id']:34s} {r['night']:10s} {str(r['target_name'])[:16]:16s} "
                     f"{setup[:22]:22s} {r['n_object'] or 0:4d} {rot:>6s}  "
                     f"{_STATUS_WORDS.get(r['calib_status'], r['calib_status'])}")
        for code in r["missing_calibrations"] or ():
            lines.append(f"    missing: {describe_missing(code)}")
        for warning in r["calib_warnings"] or ():
            lines.append(f"    warning: {describe_warning(warning)}")
        for flag in r["quality_flags"] or ():
            lines.append(f"    quality: {describe_flag(flag)}")
    return "\n".join(lines)


def format_ingest_report(report):
    """The one-screen summary printed at the end of ``spheredc ingest``."""
    lines = [f"{report.files_seen} files in {report.elapsed_s:.1f} s "
             f"({report.files_per_s:.0f} files/s): {report.ingested} ingested, "
             f"{report.already_archived} already in the archive, "
             f"{report.quarantined} refused"]
    if report.nights_regrouped:
        lines.append(f"{report.sequences_updated} sequences regrouped on night(s) "
                     f"{', '.join(report.nights_regrouped)}")
    if report.refused:
        lines.append("refused files (kept in quarantine, see sphere.quarantine):")
        for r in report.refused[:20]:
            lines.append(f"  {r['file']}: {r['reason']}")
        if len(report.refused) > 20:
            lines.append(f"  ... and {len(report.refused) - 20} more (--json lists them all)")
    lines.append("next: 'spheredc sequences' lists the sequences and their calibration status")
    return "\n".join(lines)
