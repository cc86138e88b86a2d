"""TAP table uploads (TAP 1.1 section 3.3.5; DALI 1.1 section 3.4.5).

``UPLOAD=name,param:part`` takes a VOTable sent as a multipart part;
``UPLOAD=name,http://...`` fetches one, http(s) only, never from loopback,
private or link-local addresses, with size and time limits. Each table
becomes ``tap_upload.name``, created inside the query's transaction (never
committed, invisible to other sessions).
"""
import dataclasses
import io
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from .exceptions import UploadError

__all__ = ['UploadTable', 'parse_uploads', 'create_upload_tables']

_NAME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]{0,62}$')
_PG_TYPES = {'short': 'smallint', 'int': 'integer', 'long': 'bigint', 'float': 'real',
             'double': 'double precision', 'boolean': 'boolean', 'unsignedByte': 'smallint'}


@dataclasses.dataclass
class UploadTable:
    """One uploaded table: its ADQL description and its rows."""

    name: str
    table: object          # vo.adql.Table
    sql_types: list
    rows: list


def _fetch_url(url, max_bytes):
    import urllib.request

    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise UploadError(f'upload URL {url!r}: only http and https URLs are accepted')
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, None)}
    except OSError as exc:
        raise UploadError(f'upload URL {url!r}: cannot resolve host ({exc})') from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split('%')[0])
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast \
                or ip.is_reserved or ip.is_unspecified:
            raise UploadError(f'upload URL {url!r}: host resolves to a forbidden address')
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = resp.read(max_bytes + 1)
    except OSError as exc:
        raise UploadError(f'upload URL {url!r} cannot be read: {exc}') from exc
    if len(data) > max_bytes:
        raise UploadError(f'upload {url!r} is larger than {max_bytes} bytes', 413)
    return data


def _read_votable(name, data, limits):
    import warnings

    import numpy as np
    from astropy.io.votable import parse_single_table

    from vo.adql import Column, Table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            votable = parse_single_table(io.BytesIO(data), verify='ignore')
    except Exception as exc:  # astropy raises many kinds for a malformed document
        raise UploadError(f'upload {name}: not a readable VOTable ({exc})') from exc
    if len(votable.array) > limits.upload_rows:
        raise UploadError(f'upload {name}: more than {limits.upload_rows} rows', 413)
    columns, sql_types, converters = [], [], []
    for field in votable.fields:
        col_name = (field.name or field.ID).lower()
        if not _NAME_RE.match(col_name):
            col_name = re.sub(r'\W', '_', col_name)
        scalar = field.arraysize in (None, '1') or field.datatype in ('char', 'unicodeChar')
        sql_type = _PG_TYPES.get(field.datatype, 'text') if scalar else 'text'
        if sql_type == 'text' and field.xtype == 'timestamp':
            sql_type = 'timestamp'  # so the result column keeps xtype timestamp
        datatype = {'text': 'char', 'timestamp': 'char', 'smallint': 'short', 'integer': 'int',
                    'bigint': 'long', 'real': 'float', 'double precision': 'double',
                    'boolean': 'boolean'}[sql_type]
        columns.append(Column(col_name, datatype, field.unit and str(field.unit) or '',
                              field.ucd or '', field.utype or '',
                              str(field.description or ''), '*' if datatype == 'char' else '',
                              'timestamp' if sql_type == 'timestamp' else ''))
        sql_types.append(sql_type)
        converters.append(sql_type)
    data_arr = votable.array
    cells = []
    for field, sql_type in zip(votable.fields, converters):
        col = data_arr[field.ID or field.name]
        masked = np.ma.getmaskarray(col)
        masked = masked.reshape(len(col), -1).any(axis=1) if masked.ndim > 1 else masked
        values = np.ma.getdata(col)
        cells.append([None if m else _python_value(v, sql_type)
                      for v, m in zip(values, masked)])
    rows = list(zip(*cells)) if cells else []
    return Table(f'tap_upload.{name}', tuple(columns)), sql_types, rows


def _python_value(value, sql_type):
    import numpy as np

    if sql_type in ('text', 'timestamp'):
        if isinstance(value, bytes):
            return value.decode('utf-8', 'replace')
        return str(value) if np.ndim(value) == 0 else ' '.join(map(str, np.ravel(value)))
    if sql_type in ('real', 'double precision'):
        return float(value)
    if sql_type == 'boolean':
        return bool(value)
    return int(value)


def parse_uploads(spec_values, files, limits):
    """Read the tables named by UPLOAD parameters.

    Parameters
    ----------
    spec_values : list of str
        UPLOAD values, each ``name,URI[;name,URI...]``.
    files : dict
        Multipart parts by name: bytes.
    limits : vo.query.Limits

    Returns
    -------
    list of UploadTable

    Raises
    ------
    UploadError
        For a malformed specification, a missing part, a forbidden URL, a
        document that is not a VOTable, or one over the limits.
    """
    tables = []
    for spec in spec_values:
        for item in filter(None, (s.strip() for s in spec.split(';'))):
            if ',' not in item:
                raise UploadError(f'UPLOAD {item!r}: expected name,URI')
            name, uri = (s.strip() for s in item.split(',', 1))
            if not _NAME_RE.match(name):
                raise UploadError(f'UPLOAD table name {name!r} is not a valid ADQL name')
            if uri.startswith('param:'):
                part = uri[len('param:'):]
                if part not in files:
                    raise UploadError(f'UPLOAD {name}: no inline part called {part!r}')
                data = files[part]
                if len(data) > limits.upload_bytes:
                    raise UploadError(f'upload {name} is larger than {limits.upload_bytes} '
                                      'bytes', 413)
            else:
                data = _fetch_url(uri, limits.upload_bytes)
            table, sql_types, rows = _read_votable(name, data, limits)
            tables.append(UploadTable(name.lower(), table, sql_types, rows))
    return tables


def create_upload_tables(conn, uploads):
    """Create and fill ``tap_upload.*`` in the current transaction of ``conn``.

    Parameters
    ----------
    conn : psycopg.Connection
        The owner's connection, inside the query's transaction.
    uploads : list of UploadTable
    """
    from psycopg import sql

    for up in uploads:
        ident = sql.Identifier('tap_upload', up.name)
        cols = sql.SQL(', ').join(sql.SQL('{} {}').format(sql.Identifier(c.name), sql.SQL(t))
                                  for c, t in zip(up.table.columns, up.sql_types))
        conn.execute(sql.SQL('CREATE TABLE {} ({})').format(ident, cols))
        with conn.cursor().copy(sql.SQL('COPY {} FROM STDIN').format(ident)) as copy:
            for row in up.rows:
                copy.write_row(row)
        conn.execute(sql.SQL('GRANT SELECT ON {} TO spheredc_reader').format(ident))
