"""Running a SELECT for a VO service: pooled connections, read-only role, streaming.

Every query runs in its own transaction as the read-only role
``spheredc_reader`` (migration 0002) with a statement timeout, and with the
setting ``spheredc.viewer`` naming the user it runs for (`viewer`), on which
the row-level security policies of migration 0003 filter proprietary rows; big results are
streamed in chunks so memory stays constant, small ones
(LIMIT <= `SMALL_LIMIT`) in one round trip. The result's FIELDs come from the
PostgreSQL result types, enriched with the metadata of the query's columns.

For BINARY2 output, a bounded result whose columns are all numbers, booleans or
text is serialised by PostgreSQL itself (`binary2_sql`): each row becomes its
BINARY2 bytes (``float8send`` and the like write big-endian values) and
``string_agg`` joins them, so that neither psycopg nor numpy touches a cell.
"""
import contextlib
import contextvars
import dataclasses
import itertools
import re
import threading

from .exceptions import QueryError, ServiceUnavailable
from .votable import Field

__all__ = ['Limits', 'QueryPool', 'Result', 'fields_for', 'binary2_sql', 'viewer', 'as_viewer']

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


#: How PostgreSQL writes one cell of each type in BINARY2 (``{c}`` is the column): the
#: bytes the general path writes for what psycopg returns (`vo.votable`), with the
#: same fillers for NULL (zero, NaN, ``?``, an empty string).
_BINARY2_CELLS = {
    21: "coalesce(int2send({c}), '\\x0000'::bytea)",
    23: "coalesce(int4send({c}), '\\x00000000'::bytea)",
    20: "coalesce(int8send({c}), '\\x0000000000000000'::bytea)",
    700: "coalesce(float4send({c}), '\\x7fc00000'::bytea)",
    701: "coalesce(float8send({c}), '\\x7ff8000000000000'::bytea)",
    1700: "coalesce(float8send({c}::float8), '\\x7ff8000000000000'::bytea)",
    16: "CASE WHEN {c} THEN '\\x54'::bytea WHEN NOT {c} THEN '\\x46'::bytea "
        "ELSE '\\x3f'::bytea END",
    # VOTable char is ASCII: like str.encode('ascii', 'replace'), one '?' per other
    # character (octet_length is free, char_length reads the string).
    25: "coalesce(CASE WHEN octet_length({c}) = char_length({c}) THEN "
        "int4send(octet_length({c})) || textsend({c}) ELSE int4send(char_length({c})) || "
        "convert_to(regexp_replace({c}, '[^\\x01-\\x7f]', '?', 'g'), 'UTF8') END, "
        "'\\x00000000'::bytea)",
}
_BINARY2_CELLS[1043] = _BINARY2_CELLS[25].replace('{c}', '{c}::text')  # varchar
_TEXT_OIDS = (25, 1043)


def binary2_sql(sql, type_oids, with_last_length=False):
    """A query returning the BINARY2 serialisation of the rows of ``sql``.

    Parameters
    ----------
    sql : str
        One SELECT.
    type_oids : sequence of int
        PostgreSQL types of its columns; every one must be a key of
        ``_BINARY2_CELLS`` (`binary2_packable`).
    with_last_length : bool
        Also return the BINARY2 length of the rows' strings, 4 bytes a row, so
        that the last row can be cut off (an overflow row).

    Returns
    -------
    str
        A query of one row: the number of rows, their BINARY2 bytes (NULL when
        there are none) and, if asked, the string lengths.
    """
    names = [f'c{i}' for i in range(len(type_oids))]
    masks = []
    for first in range(0, len(names), 8):
        group = names[first:first + 8]
        bits = ' | '.join(f'(CASE WHEN {c} IS NULL THEN {0x80 >> i} ELSE 0 END)'
                          for i, c in enumerate(group))
        # IS NULL costs no function call: the bits are only computed for rows with nulls
        masks.append(f"CASE WHEN {' OR '.join(f'{c} IS NULL' for c in group)} THEN "
                     f"set_byte('\\x00'::bytea, 0, {bits}) ELSE '\\x00'::bytea END")
    cells = [_BINARY2_CELLS[oid].format(c=c) for c, oid in zip(names, type_oids)]
    parts = [f"count(*), string_agg({' || '.join(masks + cells)}, ''::bytea)"]
    texts = [f'coalesce(char_length({c}), 0)' for c, oid in zip(names, type_oids)
             if oid in _TEXT_OIDS]
    if with_last_length:
        parts.append(f"string_agg(int4send({' + '.join(texts or ['0'])}), ''::bytea)")
    return f"SELECT {', '.join(parts)} FROM ({sql}) AS q({', '.join(names)})"


def binary2_packable(type_oids):
    """True when PostgreSQL can write every column of these types in BINARY2."""
    return bool(type_oids) and all(oid in _BINARY2_CELLS for oid in type_oids)


def _binary2_fixed_bytes(type_oids):
    # BINARY2 bytes of a row that do not depend on its values: null mask, fixed cells
    # and the 4-byte lengths of the strings.
    sizes = {21: 2, 23: 4, 20: 8, 700: 4, 701: 8, 1700: 8, 16: 1, 25: 4, 1043: 4}
    return (len(type_oids) + 7) // 8 + sum(sizes[oid] for oid in type_oids)


@dataclasses.dataclass(frozen=True)
class _Described:
    # What fields_for reads of a psycopg.Column.
    name: str
    type_code: int


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

    #: The rows as BINARY2 bytes when the database serialised them (see
    #: `QueryPool.execute`), else None; such a result has no rows to iterate.
    binary2 = None

    def __init__(self, fields, first, more, maxrec, release):
        self.fields = fields
        self.maxrec = maxrec
        self.overflow = False
        self.rows_sent = 0
        self._first, self._more, self._release = first, more, release

    @classmethod
    def packed(cls, fields, data, rows, overflow, maxrec):
        """A result whose ``rows`` rows are already BINARY2 ``data`` (bytes)."""
        result = cls(fields, (), lambda: iter(()), maxrec, None)
        result.binary2, result.rows_sent, result.overflow = data, rows, overflow
        return result

    def _iter(self):
        if self.binary2 is not None:
            raise TypeError('the rows of this result were serialised as BINARY2 '
                            'by the database')
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
    def _run_bounded(conn, sql, params, binary, fallback=True):
        # Binary results convert 3 to 5 times faster, but pg_sphere types have no binary
        # output: binary only when no output column is a geometry, in a savepoint so
        # that a geometry the metadata did not announce falls back to text (two round
        # trips a service that knows its columns does without).
        import psycopg

        if binary and not fallback:
            cur = conn.cursor(binary=True)
            cur.execute(sql, params)
            return cur
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

    def _run_binary2(self, conn, sql, columns, maxrec, limit):
        # The result's types without running it (parse and analysis only), then the
        # packing query; None when a type cannot be packed or the packing fails for a
        # reason of its own (too big for a bytea, a numeric beyond float8): its
        # savepoint leaves the transaction as it was for the general path.
        import psycopg

        pgconn = conn.pgconn
        prepared = pgconn.prepare(b'', sql.encode(conn.info.encoding))
        if prepared.status != psycopg.pq.ExecStatus.COMMAND_OK:  # as the general path says
            message = prepared.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
            raise QueryError('query failed: ' + (message or prepared.error_message).decode(
                conn.info.encoding, 'replace').strip())
        info = pgconn.describe_prepared(b'')
        described = [_Described(info.fname(i).decode(conn.info.encoding), info.ftype(i))
                     for i in range(info.nfields)]
        oids = [d.type_code for d in described]
        if not binary2_packable(oids):
            return None
        may_overflow = maxrec is not None and limit > maxrec
        try:
            with conn.transaction():
                cur = conn.cursor(binary=True)
                cur.execute(binary2_sql(sql, oids, with_last_length=may_overflow))
                count, data, lengths = (cur.fetchone() + (None,))[:3]
        except (psycopg.errors.NumericValueOutOfRange, psycopg.errors.ProgramLimitExceeded,
                psycopg.errors.OutOfMemory):
            return None
        data = data or b''
        overflow = may_overflow and count > maxrec
        if overflow:  # the row beyond MAXREC is the last one aggregated
            data = data[:len(data) - _binary2_fixed_bytes(oids)
                        - int.from_bytes(lengths[-4:], 'big')]
            count = maxrec
        return Result.packed(fields_for(described, self._oid_names, columns), data, count,
                             overflow, maxrec)

    def execute(self, sql, params=None, *, columns=(), maxrec=None, timeout_s=60,
                base_url='', setup=None, on_backend=None, role=READER,
                binary=None, binary2=False):
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
            True: the caller knows that no output column is a pg_sphere type (the
            query runs as is); default: binary when ``columns`` are given and none
            is a geometry, falling back to text if an unannounced one turns up.
        binary2 : bool
            The rows will be written as BINARY2: when the result is bounded
            (LIMIT <= `SMALL_LIMIT`), has no parameters and only columns of
            `binary2_packable` types, PostgreSQL serialises them and the
            `Result` has ``binary2`` bytes instead of rows.

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
            if binary2 and params is None and limit and int(limit.group(1)) <= SMALL_LIMIT:
                packed = self._run_binary2(conn, sql, columns, maxrec, int(limit.group(1)))
                if packed is not None:
                    release()
                    return packed
            if (limit and int(limit.group(1)) <= SMALL_LIMIT) or (
                    maxrec is not None and maxrec < SMALL_LIMIT):
                certain = binary is True
                if binary is None:
                    binary = bool(columns) and not any(c.xtype in _GEOMETRY_XTYPES
                                                       for c in columns)
                cur = self._run_bounded(conn, sql, params, binary, fallback=not certain)
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

