"""Regroup nights into sequences and re-associate calibrations (database side).

The pure rules live in `ingest.sequences` and `ingest.calibs`; this module
loads the rows they need, replaces the affected sequences and associations,
and writes the result back. The caller owns the transaction.
"""
from archive.access import default_release_date

from .calibs import CalibIndex, associate, calib_status
from .sequences import group_sequences

RAW = "sphere.raw_files"
#: A new calibration can change the association of sequences this far away.
CALIB_REACH_DAYS = 20.0

_ROW_COLUMNS = ("arcfile", "checksum", "file_name", "dpr_catg", "dpr_type", "arm",
                "ins_mode", "filter", "coronagraph", "derot_mode", "target_name", "ra", "dec",
                "night", "mjd_obs", "mjd_end", "exptime", "dit", "ndit", "prog_id", "obs_id",
                "tpl_id", "tpl_start", "level", "parang_start", "parang_end",
                "seeing_arcsec", "tau0_s", "ao_loop_closed", "nd_filter")
_SEQUENCE_COLUMNS = ("sequence_id", "arm", "ins_mode", "filter", "coronagraph", "derot_mode",
                     "target_name", "ra", "dec", "night", "mjd_start",
                     "mjd_end", "prog_id", "obs_id", "level", "n_files", "n_object",
                     "n_center", "n_flux", "n_sky", "exptime_object", "field_rotation_deg",
                     "seeing_arcsec", "tau0_s", "calib_status", "missing_calibrations",
                     "calib_warnings", "quality_flags", "release_date")
_ASSOC_COLUMNS = ("sequence_id", "role", "calib_key", "arcfile", "checksum", "dpr_type",
                  "delta_days", "is_far")


def _select_rows(conn, where, params):
    sql = (f"SELECT {', '.join(_ROW_COLUMNS)}, "
           "to_char(date_obs, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') "
           f"FROM {RAW} WHERE {where}")
    return [dict(zip(_ROW_COLUMNS + ("date_obs",), r)) for r in conn.execute(sql, params)]


def regroup_nights(conn, nights):
    """Recompute the sequences of ``nights`` and the calibrations they and their neighbours use.

    Parameters
    ----------
    conn : psycopg.Connection
        Inside a transaction.
    nights : list of str
        Nights (``YYYY-MM-DD``) that received files.

    Returns
    -------
    int
        Number of sequences written (new or re-associated).
    """
    science = _select_rows(conn, "night = ANY(%s) AND dpr_catg = 'SCIENCE'", (list(nights),))
    sequences = group_sequences(science)
    conn.execute("DELETE FROM sphere.calib_associations WHERE sequence_id IN "
                 "(SELECT sequence_id FROM sphere.sequences WHERE night = ANY(%s))",
                 (list(nights),))
    conn.execute("DELETE FROM sphere.sequences WHERE night = ANY(%s)", (list(nights),))
    conn.execute(f"UPDATE {RAW} SET sequence_id = NULL WHERE night = ANY(%s) "
                 "AND sequence_id IS NOT NULL", (list(nights),))

    # Sequences elsewhere whose calibrations may change: near a new calibration file.
    others = _neighbour_sequences(conn, nights)
    todo = sequences + others
    if todo:
        lo = min(s["mjd_start"] for s in todo) - CALIB_REACH_DAYS
        hi = max(s["mjd_end"] for s in todo) + CALIB_REACH_DAYS
        index = CalibIndex(_select_rows(
            conn, "mjd_obs BETWEEN %s AND %s AND (dpr_catg = 'CALIB' OR dpr_type = 'SKY')",
            (lo, hi)))
    for seq in todo:
        assocs, missing, warnings = associate(seq, None, index)
        seq["associations"] = assocs
        seq["missing_calibrations"] = missing
        seq["calib_warnings"] = warnings
        seq["calib_status"] = calib_status(seq, missing, warnings)
    for seq in sequences:
        seq["release_date"] = default_release_date(seq["mjd_start"])
    _write(conn, sequences, others)
    return len(todo)


def _neighbour_sequences(conn, nights):
    """Existing sequences (not on ``nights``) within reach of calibrations not yet grouped."""
    rows = conn.execute(
        "SELECT s.sequence_id, s.arm, s.ins_mode, s.filter, s.level, s.mjd_start, s.mjd_end "
        "FROM sphere.sequences s WHERE NOT (s.night = ANY(%s)) AND EXISTS ("
        f" SELECT 1 FROM {RAW} c WHERE NOT c.grouped AND c.dpr_catg = 'CALIB'"
        "  AND c.mjd_obs BETWEEN s.mjd_start - %s AND s.mjd_end + %s)",
        (list(nights), CALIB_REACH_DAYS, CALIB_REACH_DAYS)).fetchall()
    keys = ("sequence_id", "arm", "ins_mode", "filter", "level", "mjd_start", "mjd_end")
    others = [dict(zip(keys, r)) for r in rows]
    for seq in others:
        seq["files"] = _select_rows(conn, "sequence_id = %s", (seq["sequence_id"],))
    return others


def _write(conn, sequences, others):
    with conn.cursor() as cur:
        if sequences:
            cur.executemany(
                f"INSERT INTO sphere.sequences ({', '.join(_SEQUENCE_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(_SEQUENCE_COLUMNS))})",
                [[s.get(c) for c in _SEQUENCE_COLUMNS] for s in sequences])
            pairs = [(s["sequence_id"], f["checksum"]) for s in sequences for f in s["files"]]
            cur.execute(f"UPDATE {RAW} r SET sequence_id = v.sid FROM unnest(%s::text[], "
                        "%s::text[]) AS v(sid, checksum) WHERE r.checksum = v.checksum",
                        ([p[0] for p in pairs], [p[1] for p in pairs]))
        if others:
            ids = [s["sequence_id"] for s in others]
            cur.execute("DELETE FROM sphere.calib_associations WHERE sequence_id = ANY(%s)",
                        (ids,))
            cur.executemany(
                "UPDATE sphere.sequences SET calib_status = %s, missing_calibrations = %s, "
                "calib_warnings = %s, updated_at = now() WHERE sequence_id = %s",
                [(s["calib_status"], s["missing_calibrations"], s["calib_warnings"],
                  s["sequence_id"]) for s in others])
        assocs = [a for s in sequences + others for a in s["associations"]]
        if assocs:
            cur.executemany(
                f"INSERT INTO sphere.calib_associations ({', '.join(_ASSOC_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(_ASSOC_COLUMNS))}) ON CONFLICT DO NOTHING",
                [[a.get(c) for c in _ASSOC_COLUMNS] for a in assocs])
