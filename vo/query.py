"""Running a SELECT for a VO service: pooled connections, read-only role, streaming.

Every query runs in its own transaction as the read-only role
``spheredc_reader`` (migration 0002) with a statement timeout, and with the
setting ``spheredc.viewer`` naming the user it runs for (`viewer`), on which
the row-level security policies of migration 0003 filter proprietary rows; big results are
streamed in chunks so memory stays constant, small ones
(LIMIT <= `SMALL_LIMIT`) in one round trip. The result's FIELDs come from the
PostgreSQL result types, enriched with the metadata of the query's columns.
"""
import contextlib
import contextvars
import dataclasses
import itertools
import re
import threading

from .exceptions import QueryError, ServiceUnavailable
from .votable import Field

__all__ = ['Limits', 'QueryPool', 'Result', 'fields_for', 'viewer', 'as_viewer']

#: The user the queries of this context run for (None: anonymous). The web layer sets
#: it per request, the async job runner per job; the database filters on it.
viewer = contextvars.ContextVar('spheredc_viewer', default=None)

READER = 'spheredc_reader'


@contextlib.contextmanager
def as_viewer(username):
    """Run the queries of the ``with`` block for ``username`` (None: anonymous)."""
    token = viewer.set(username)
    try:
        yield
    finally:
        viewer.reset(token)

#: Results of at most this many rows come in one round trip (libpq holds them, psycopg
#: converts them batch by batch); larger ones are streamed.
SMALL_LIMIT = 100_001
_FETCH_ROWS = 5000

_OID_TYPES = {21: ('short', '', ''), 23: ('int', '', ''), 20: ('long', '', ''),
              700: ('float', '', ''), 701: ('double', '', ''), 1700: ('double', '', ''),
              16: ('boolean', '', ''), 1114: ('char', '*', 'timestamp'),
              1184: ('char', '*', 'timestamp'), 1082: ('char', '*', 'timestamp')}
_GEOMETRY_XTYPES = ('point', 'circle', 'polygon', 'box', 'region', 'adql:REGION')
_GEOMETRY_TYPES = {'spoint': ('double', '2', 'point'), 'scircle': ('double', '3', 'circle'),
                   'spoly': ('double', '*', 'polygon')}


@dataclasses.dataclass(frozen=True)
class Limits:
    """Service limits (TAPRegExt outputLimit, executionDuration, uploadLimit).

    Attributes
    ----------
    default_maxrec, hard_maxrec : int
        Rows returned when MAXREC is absent, and the most ever returned.
    sync_timeout_s : int
        Statement timeout of synchronous queries.
    async_default_s, async_hard_s : int
        Default and longest execution duration of async jobs.
    destruction_days : int
        Lifetime of async jobs.
    upload_bytes, upload_rows : int
        Largest accepted upload.
    """

    default_maxrec: int = 20000
    hard_maxrec: int = 5_000_000
    sync_timeout_s: int = 60
    async_default_s: int = 600
    async_hard_s: int = 3600
    destruction_days: int = 7
    upload_bytes: int = 20_000_000
    upload_rows: int = 1_000_000


def fields_for(description, oid_names, columns=()):
    """VOTable FIELDs of a result.

    Parameters
    ----------
    description : sequence of psycopg.Column
        ``cursor.description``.
    oid_names : dict
        pg_sphere type OIDs to type names.
    columns : sequence of vo.adql.Column, optional
        The query's output columns (names, units, UCDs), when known.

    Returns
    -------
    list of Field
    """
    meta = list(columns) if len(columns) == len(description) else [None] * len(description)
    fields = []
    for col, info in zip(description, meta):
        datatype, arraysize, xtype = _OID_TYPES.get(col.type_code) or _GEOMETRY_TYPES.get(
            oid_names.get(col.type_code), ('char', '*', ''))
        if xtype == 'polygon' and (info is None or info.xtype != 'polygon'):
            # Stored polygons (s_region) are regions: STC-S strings, as ObsCore wants.
            datatype, arraysize, xtype = 'char', '*', 'adql:REGION'
        if info is None:
            fields.append(Field(col.name, datatype, arraysize, xtype))
        else:
            fields.append(Field(info.name or col.name, datatype, arraysize, xtype, info.unit,
                                info.ucd, info.utype, info.description))
    return fields


class Result:
    """An executed query: its FIELDs and its rows (an iterator, read once).

    The connection goes back to the pool when the rows are exhausted or
    `close` is called. ``overflow`` becomes true once more than ``maxrec``
    rows were seen.
    """

    def __init__(self, fields, first, more, maxrec, release):
        self.fields = fields
        self.maxrec = maxrec
        self.overflow = False
        self.rows_sent = 0
        self._first, self._more, self._release = first, more, release

    def _iter(self):
        # islice/chain iterate in C: a per-row Python check would cost more than packing.
        rows = itertools.chain(self._first, self._more())
        try:
            if self.maxrec is None:
                for batch in iter(lambda: list(itertools.islice(rows, 5000)), []):
                    self.rows_sent += len(batch)
                    yield from batch
                return
            left = self.maxrec
            while left > 0:
                batch = list(itertools.islice(rows, min(left, 5000)))
                if not batch:
                    return
                left -= len(batch)
                self.rows_sent += len(batch)
                yield from batch
            self.overflow = next(rows, None) is not None
        finally:
            self.close()

    def __iter__(self):
        return self._iter()

    def close(self):
        if self._release is not None:
            release, self._release = self._release, None
            release()

    def trailer(self):
        """INFOs to write after the table (OVERFLOW when truncated at MAXREC)."""
        return [('QUERY_STATUS', 'OVERFLOW', '')] if self.overflow else []


class QueryPool:
    """Connections of one server process to the archive, for VO queries.

    Parameters
    ----------
    database : archive.db.Database
    size : int, optional
        Most connections kept open.
    """

    def __init__(self, database, size=8):
        self.database = database
        self.size = size
        self._pool = None
        self._lock = threading.Lock()
        self._oid_names = {}

    def _configure(self, conn):
        # Geometry text in radians: vo.votable converts it to degrees.
        conn.execute("SELECT set_sphere_output('RAD')")
        conn.commit()

    @property
    def pool(self):
        # Created on first use, so that each gunicorn worker (after fork) has its own.
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self.database.ensure_ready()
                self._pool = ConnectionPool(self.database.conninfo, min_size=1,
                                            max_size=self.size, configure=self._configure,
                                            open=True, timeout=30)
                with self._pool.connection() as conn:
                    rows = conn.execute("SELECT oid, typname FROM pg_type WHERE typname IN "
                                        "('spoint', 'scircle', 'spoly', 'sbox')").fetchall()
                    self._oid_names = {oid: name for oid, name in rows}
        return self._pool

    def close(self):
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def ping(self):
        """True when the database answers a query."""
        try:
            with self.pool.connection(timeout=5) as conn:
                return conn.execute('SELECT 1').fetchone()[0] == 1
        except Exception:  # any failure means "not available" for VOSI
            return False

    def fetch(self, sql, params=None, role=READER):
        """All rows of a small, fixed service query, read only, for the `viewer`.

        ``role=None`` runs it as the owner, unfiltered (never for user-visible rows).

        Raises
        ------
        ServiceUnavailable
            When the database cannot be reached or fails.
        """
        import psycopg

        try:
            with self.pool.connection() as conn:
                with conn.transaction():
                    conn.execute("SELECT set_config('transaction_read_only', 'on', true), "
                                 "set_config('role', %s, true), "
                                 "set_config('spheredc.viewer', %s, true)",
                                 (role or 'none', viewer.get() or ''))
                    return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise ServiceUnavailable(f'database error: {exc}') from exc

    @staticmethod
    def _run_bounded(conn, sql, params, binary):
        # Binary results convert 3 to 5 times faster, but pg_sphere types have no binary
        # output: binary only when no output column is a geometry, in a savepoint so
        # that a geometry the metadata did not announce falls back to text.
        import psycopg

        if binary:
            try:
                with conn.transaction():
                    cur = conn.cursor(binary=True)
                    cur.execute(sql, params)
                return cur
            except psycopg.errors.UndefinedFunction:
                pass
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur

    def execute(self, sql, params=None, *, columns=(), maxrec=None, timeout_s=60,
                base_url='', setup=None, on_backend=None, role=READER,
                binary=None):
        """Run one SELECT as the read-only role.

        Parameters
        ----------
        sql : str
            One SELECT statement (from the ADQL translator or a service).
        params : sequence, optional
            Query parameters (psycopg ``%s`` placeholders).
        columns : sequence of vo.adql.Column, optional
            Output column metadata.
        maxrec : int, optional
            Rows to return at most (the SQL should LIMIT to maxrec + 1).
        timeout_s : float
            Statement timeout (0: none).
        base_url : str
            Public URL of the service (ivoa.obscore builds access_url from it).
        setup : callable, optional
            ``setup(conn)`` run first, as the owner, in the same transaction
            (creates the uploaded tables).
        on_backend : callable, optional
            Called with the backend PID before the query runs (to cancel it).
        role : str or None
            Role the query runs as; None keeps the owner's, unfiltered by the
            row-level security (never for rows a user will see).
        binary : bool, optional
            Ask for binary results (faster to convert; not for pg_sphere types).
            Default: when ``columns`` are given and none is a geometry.

        Returns
        -------
        Result

        Raises
        ------
        QueryError
            When the database refuses or fails the query.
        ServiceUnavailable
            When no connection can be had.
        """
        import psycopg

        try:
            ctx = self.pool.connection()
            conn = ctx.__enter__()
        except Exception as exc:
            raise ServiceUnavailable(f'database unavailable: {exc}') from exc

        def release(exc=None):
            try:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()
            except psycopg.Error:
                pass
            ctx.__exit__(None, None, None)

        try:
            if setup is not None:
                setup(conn)
            if on_backend is not None:
                on_backend(conn.info.backend_pid)
            conn.execute("SELECT set_config('role', %s, true), "
                         "set_config('statement_timeout', %s, true), "
                         "set_config('transaction_read_only', 'on', true), "
                         "set_config('spheredc.base_url', %s, true), "
                         "set_config('spheredc.viewer', %s, true)",
                         (role or 'none', str(int(timeout_s * 1000)), base_url,
                          viewer.get() or ''))
            limit = re.search(r'\bLIMIT (\d+)\s*$', sql)
            if (limit and int(limit.group(1)) <= SMALL_LIMIT) or (
                    maxrec is not None and maxrec < SMALL_LIMIT):
                if binary is None:
                    binary = bool(columns) and not any(c.xtype in _GEOMETRY_XTYPES
                                                       for c in columns)
                cur = self._run_bounded(conn, sql, params, binary)
                first = cur.fetchmany(_FETCH_ROWS)

                def more():
                    return itertools.chain.from_iterable(
                        iter(lambda: cur.fetchmany(_FETCH_ROWS), []))
            else:
                # Streamed in chunks (libpq >= 17) rather than with a server-side cursor:
                # memory stays constant and PostgreSQL may still plan in parallel,
                # which it never does for DECLARE CURSOR.
                cur = conn.cursor()
                chunk = _FETCH_ROWS if psycopg.pq.version() >= 170000 else 1
                stream = cur.stream(sql, params, size=chunk)
                first = list(itertools.islice(stream, 1))

                def more():
                    try:
                        yield from stream
                    except psycopg.Error as exc:
                        raise QueryError(
                            f'query failed: {exc.diag.message_primary or exc}') from exc
                    finally:
                        stream.close()
            fields = fields_for(cur.description, self._oid_names, columns)
        except psycopg.errors.QueryCanceled as exc:
            release()
            raise QueryError(f'query cancelled (time limit of {timeout_s:g} s or abort): '
                             f'{exc.diag.message_primary}') from exc
        except psycopg.Error as exc:
            release()
            raise QueryError(f'query failed: {exc.diag.message_primary or exc}') from exc
        except BaseException:
            release()
            raise
        return Result(fields, first, more, maxrec, release)

