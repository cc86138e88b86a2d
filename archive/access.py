"""Access rights: when data become public.

ESO rule: raw science data and their products are proprietary to their
programme for one year after the observation, unless the programme says
otherwise (``sphere.programmes.proprietary_days``); calibrations are public at
once. Who may see proprietary rows is decided by the database's row-level
security (migration 0003); this module only computes and applies release dates.
"""
import datetime

__all__ = ['PROPRIETARY_DAYS', 'default_release_date', 'set_proprietary_period', 'set_programme',
           'apply_programme_periods']

#: Default proprietary period (ESO).
PROPRIETARY_DAYS = 365
_MJD_EPOCH = datetime.datetime(1858, 11, 17)

# The rows of a programme (exact run, or every run of a programme) and its period.
_PERIOD = """(SELECT p.proprietary_days FROM sphere.programmes p
  WHERE p.prog_id = {t}.prog_id OR p.prog_id = split_part({t}.prog_id, '(', 1)
  ORDER BY length(p.prog_id) DESC LIMIT 1)"""


def default_release_date(mjd_utc, proprietary_days=PROPRIETARY_DAYS, dpr_catg=None):
    """Release date (naive UTC datetime) of data observed at ``mjd_utc``.

    Calibrations (``dpr_catg == 'CALIB'``) are public at once. Returns None
    when the observation time is unknown.
    """
    if mjd_utc is None:
        return None
    days = 0 if dpr_catg == 'CALIB' else proprietary_days
    return _MJD_EPOCH + datetime.timedelta(days=float(mjd_utc) + days)


def _mjd_to_timestamp(column):
    return f"(timestamp '1858-11-17' + make_interval(secs => ({column}) * 86400.0))"


def apply_programme_periods(conn, prog_ids=None):
    """Recompute the release dates of the data of programmes with their own period.

    Raw science files and sequences follow their observation time; products,
    candidates and detection limits follow their sequence. Rows of programmes
    without an entry in ``sphere.programmes`` are left alone.

    Parameters
    ----------
    conn : psycopg.Connection
        Owner connection (the caller commits).
    prog_ids : sequence of str, optional
        Only these programmes or runs (default: every programme listed).

    Returns
    -------
    int
        Rows changed.
    """
    listed = ('EXISTS (SELECT 1 FROM sphere.programmes p WHERE p.prog_id = {t}.prog_id '
              "OR p.prog_id = split_part({t}.prog_id, '(', 1))")
    only = ''
    args = []
    if prog_ids is not None:
        only = " AND (t.prog_id = ANY(%s) OR split_part(t.prog_id, '(', 1) = ANY(%s))"
        args = [list(prog_ids), list(prog_ids)]
    changed = 0
    for table, mjd in (('raw_files', 'mjd_obs'), ('sequences', 'mjd_start')):
        calib = " AND t.dpr_catg IS DISTINCT FROM 'CALIB'" if table == 'raw_files' else ''
        new = f"{_mjd_to_timestamp('t.' + mjd)} + make_interval(days => {_PERIOD.format(t='t')})"
        changed += conn.execute(
            f"UPDATE sphere.{table} t SET release_date = {new} "
            f"WHERE t.{mjd} IS NOT NULL AND {listed.format(t='t')}{calib}{only} "
            f"AND t.release_date IS DISTINCT FROM {new}", args).rowcount
    for table in ('products', 'candidates', 'detection_limits'):
        # Products of a PI's reduction request (under requests/) stay private at least
        # as long as they were made to be.
        new = ("CASE WHEN t.path LIKE 'requests/%%' THEN greatest(s.release_date, "
               "t.release_date) ELSE s.release_date END" if table == 'products'
               else 's.release_date')
        changed += conn.execute(
            f"UPDATE sphere.{table} t SET release_date = {new} FROM sphere.sequences s "
            f"WHERE s.sequence_id = t.sequence_id AND {listed.format(t='t')}{only} "
            f"AND t.release_date IS DISTINCT FROM {new}", args).rowcount
    return changed


def set_proprietary_period(conn, prog_id, days, title=None):
    """Give ``prog_id`` (programme or run) its own proprietary period and apply it.

    Returns
    -------
    int
        Rows whose release date changed.
    """
    return set_programme(conn, prog_id, proprietary_days=days, title=title)


def set_programme(conn, prog_id, *, proprietary_days=None, title=None, survey=None):
    """Record a programme's title, survey or proprietary period (None: unchanged).

    Returns
    -------
    int
        Rows whose release date changed (0 when the period was not given).
    """
    from .accounts import AccountError, check_prog_id

    check_prog_id(prog_id)
    days = proprietary_days
    if days is not None and (not isinstance(days, int) or not 0 <= days <= 36500):
        raise AccountError('a proprietary period is a number of days between 0 and 36500')
    if survey is not None and (not isinstance(survey, str) or not 1 <= len(survey) <= 40
                               or not survey.replace('-', '').replace('_', '').isalnum()):
        raise AccountError('a survey name is 1 to 40 letters, digits, "-" or "_"')
    conn.execute('INSERT INTO sphere.programmes (prog_id, title, survey, proprietary_days) '
                 'VALUES (%s, %s, %s, coalesce(%s, 365)) ON CONFLICT (prog_id) DO UPDATE SET '
                 'proprietary_days = coalesce(%s, sphere.programmes.proprietary_days), '
                 'title = coalesce(EXCLUDED.title, sphere.programmes.title), '
                 'survey = coalesce(EXCLUDED.survey, sphere.programmes.survey), '
                 "updated_at = now() AT TIME ZONE 'UTC'", (prog_id, title, survey, days, days))
    if days is None:
        return 0
    return apply_programme_periods(conn, [prog_id.split('(')[0], prog_id])
