"""Streaming output: VOTable 1.3 (TABLEDATA, BINARY2), CSV, TSV and error documents.

Rows come from an iterator (a database cursor) and leave as chunks of bytes,
so memory stays constant for any result size (VOTable 1.3, DALI 1.1). If the
row iterator fails once the table has started, the document is closed
properly and ends with ``<INFO name="QUERY_STATUS" value="ERROR">``
(DALI 1.1 section 4.4.1). FIELDs come from `Field`, built from the
``schemas/`` column definitions (`vo.tapschema`) or from the result's types.
"""
import binascii
import csv
import dataclasses
import io
import itertools
import json
import logging
import math
import operator
import re
import struct
from xml.sax.saxutils import escape, quoteattr

__all__ = ['Field', 'FORMATS', 'stcs_polygon', 'resolve_format', 'stream_votable', 'stream_csv',
           'error_document', 'to_votable_value', 'field_xml', 'info_xml']

log = logging.getLogger(__name__)

VOTABLE_NS = 'http://www.ivoa.net/xml/VOTable/v1.3'
VOTABLE_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<VOTABLE version="1.3" xmlns="{VOTABLE_NS}" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n')

#: Output formats: short name -> (MIME type sent, aliases accepted in RESPONSEFORMAT).
FORMATS = {
    'votable': ('application/x-votable+xml', ('votable', 'application/x-votable+xml',
                                              'text/xml', 'application/xml',
                                              'votable/td', 'votabletd',
                                              'application/x-votable+xml;serialization=tabledata')),
    'votable/b2': ('application/x-votable+xml;serialization=binary2',
                   ('votable/b2', 'votableb2', 'binary2',
                    'application/x-votable+xml;serialization=binary2')),
    'csv': ('text/csv;header=present', ('csv', 'text/csv', 'text/csv;header=present')),
    'tsv': ('text/tab-separated-values', ('tsv', 'text/tab-separated-values')),
}

_GEOM_SIZES = {'point': '2', 'circle': '3', 'polygon': '*'}
_FLOAT_RE = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')
_XML_BAD = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f]')


@dataclasses.dataclass(frozen=True)
class Field:
    """One VOTable FIELD (datatype, arraysize and xtype as in VOTable 1.3 / DALI 1.1)."""

    name: str
    datatype: str = 'char'
    arraysize: str = ''
    xtype: str = ''
    unit: str = ''
    ucd: str = ''
    utype: str = ''
    description: str = ''


def resolve_format(text):
    """The short format name for a RESPONSEFORMAT/FORMAT value, or None if unknown.

    Parameters
    ----------
    text : str or None
        MIME type or short name; None or '' gives ``'votable'``.
    """
    if not text:
        return 'votable'
    wanted = text.strip().lower().replace(' ', '')
    for key, (_, aliases) in FORMATS.items():
        if wanted in aliases:
            return key
    return None


def to_votable_value(field, value):
    """Turn a database value into what the VOTable cell holds.

    pg_sphere geometries arrive as text in radians and become flat lists of
    degrees (DALI point/circle/polygon); timestamps become ISO 8601 strings;
    arrays become '#'-joined strings (as ``ivo_hashlist_has`` reads them).
    """
    if value is None:
        return None
    if field.xtype in _GEOM_SIZES:
        return [math.degrees(float(x)) for x in _FLOAT_RE.findall(value)]
    if field.xtype == 'adql:REGION':
        return stcs_polygon(value)
    if field.xtype == 'timestamp':
        return value.isoformat() if hasattr(value, 'isoformat') else str(value)
    if field.datatype == 'char':
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            return '#'.join(map(str, value))
        if isinstance(value, dict):
            return json.dumps(value)
        return str(value)
    if field.datatype in ('float', 'double'):
        return float(value)
    return value


def stcs_polygon(value):
    """STC-S text of a pg_sphere polygon given as text in radians."""
    degrees = [math.degrees(float(x)) for x in _FLOAT_RE.findall(value)]
    return 'Polygon ICRS ' + ' '.join(f'{d:.10g}' for d in degrees)


def _text(value):
    # Cell text shared by TABLEDATA and CSV/TSV.
    if isinstance(value, float):
        if math.isnan(value):
            return 'NaN'
        return repr(value) if math.isfinite(value) else ('+Inf' if value > 0 else '-Inf')
    if isinstance(value, bool):
        return 'T' if value else 'F'
    if isinstance(value, list):
        return ' '.join(_text(v) for v in value)
    return str(value)


def field_xml(field):
    """The FIELD element of ``field``."""
    attrs = [('name', field.name), ('datatype', field.datatype)]
    for key in ('arraysize', 'xtype', 'unit', 'ucd', 'utype'):
        if getattr(field, key):
            attrs.append((key, getattr(field, key)))
    head = '<FIELD ' + ' '.join(f'{k}={quoteattr(v)}' for k, v in attrs)
    if field.description:
        return f'{head}><DESCRIPTION>{escape(field.description)}</DESCRIPTION></FIELD>\n'
    return head + '/>\n'


def info_xml(name, value, text=''):
    """An INFO element (text content optional)."""
    head = f'<INFO name={quoteattr(name)} value={quoteattr(str(value))}'
    return f'{head}>{escape(_XML_BAD.sub(" ", text))}</INFO>\n' if text else head + '/>\n'


def error_document(message, status='ERROR'):
    """A complete DALI error VOTable.

    Parameters
    ----------
    message : str
        What went wrong.
    status : str, optional
        QUERY_STATUS value (ERROR, or OVERFLOW for special uses).

    Returns
    -------
    bytes
    """
    return (VOTABLE_HEAD + '<RESOURCE type="results">\n' + info_xml('QUERY_STATUS', status, message)
            + '</RESOURCE>\n</VOTABLE>\n').encode('utf-8')


# --- BINARY2 encoders: one per field, (value) -> bytes, and the null filler.
def _binary2_codec(field):
    fixed = {'short': '>h', 'int': '>i', 'long': '>q', 'float': '>f', 'double': '>d',
             'unsignedByte': '>B'}
    if field.xtype in _GEOM_SIZES:
        size = _GEOM_SIZES[field.xtype]
        if size == '*':
            return (lambda v: struct.pack(f'>I{len(v)}d', len(v), *v)), b'\0\0\0\0'
        fmt = struct.Struct(f'>{size}d')
        return (lambda v: fmt.pack(*v)), fmt.pack(*[math.nan] * int(size))
    if field.datatype == 'boolean':
        return (lambda v: b'T' if v else b'F'), b'?'
    if field.datatype in fixed:
        pack = struct.Struct(fixed[field.datatype]).pack
        filler = pack(math.nan) if field.datatype in ('float', 'double') else pack(0)
        return pack, filler

    def var_text(v):
        # VOTable char is ASCII; in BINARY2 other characters cannot be sent as they are.
        data = v.encode('ascii', 'replace')
        return len(data).to_bytes(4, 'big') + data
    return var_text, b'\0\0\0\0'


def _tabledata_rows(fields, rows):
    convert = [(lambda v, f=f: to_votable_value(f, v)) for f in fields]
    for row in rows:
        cells = []
        for conv, value in zip(convert, row):
            value = conv(value)
            if value is None:
                cells.append('<TD/>')
            elif isinstance(value, str):
                cells.append('<TD>' + escape(_XML_BAD.sub(' ', value)) + '</TD>')
            else:
                cells.append('<TD>' + _text(value) + '</TD>')
        yield '<TR>' + ''.join(cells) + '</TR>\n'


_NUMPY_TYPES = {'short': '>i2', 'int': '>i4', 'long': '>i8', 'float': '>f4', 'double': '>f8',
                'unsignedByte': 'u1'}

#: BINARY2 bytes per base64 line (65,536 characters): lines depend only on the byte
#: stream, so rows packed here and rows packed by the database give the same document.
B64_LINE_BYTES = 3 * 2 ** 14


def _batch_packable(fields):
    # Numbers and strings (timestamps included) are packed a batch at a time.
    return all(f.datatype in _NUMPY_TYPES or (f.datatype == 'char' and f.xtype not in
                                              _GEOM_SIZES) for f in fields)


def _text_column(field, values):
    """A char column as (lengths, bytes): ASCII, '?' for other characters.

    The values are joined with NUL (which PostgreSQL text never holds) and
    encoded in one call, instead of one ``encode`` per cell.
    """
    import numpy as np

    try:
        joined = '\0'.join(values)
    except TypeError:  # nulls, or values to convert (timestamps, arrays)
        joined = '\0'.join('' if v is None else v if isinstance(v, str) else
                           to_votable_value(field, v) for v in values)
    data = np.frombuffer(joined.encode('ascii', 'replace'), np.uint8)
    ends = np.flatnonzero(data == 0)
    if len(ends) != len(values) - 1:  # a NUL inside a value: encode value by value
        encoded = [b'' if v is None else (v if isinstance(v, str) else
                                          to_votable_value(field, v)).encode('ascii', 'replace')
                   for v in values]
        return (np.fromiter(map(len, encoded), np.int64, len(encoded)),
                np.frombuffer(b''.join(encoded), np.uint8))
    bounds = np.concatenate(([-1], ends, [len(data)]))
    return np.diff(bounds) - 1, (np.delete(data, ends) if len(ends) else data)


def _binary2_batch(fields, batch, n_mask):
    """BINARY2 bytes of a batch of rows, vectorised with numpy.

    A Python loop over cells costs about 10 microseconds a row. Here each column
    becomes one numpy array; the fixed-size parts of the rows (null mask,
    numbers, string lengths) are numpy record arrays, one per run of columns
    between strings, and the string bytes are scattered between them by index
    arithmetic: a few numpy operations per column, whatever the number of rows.
    """
    import numpy as np

    n = len(batch)
    mask = np.zeros((n, n_mask), np.uint8)
    blocks, texts = [], []  # fixed-size runs of columns, and the strings after each
    names, formats, values = ['mask'], [(np.uint8, n_mask)], [mask]
    for j, field in enumerate(fields):
        col = list(map(operator.itemgetter(j), batch))
        has_null = None in col  # a C-level scan; the per-cell mask only when needed
        if has_null:
            mask[np.fromiter((v is None for v in col), bool, n), j // 8] |= 0x80 >> (j % 8)
        if field.datatype in _NUMPY_TYPES:
            if has_null:
                fill = math.nan if field.datatype in ('float', 'double') else 0
                col = [fill if v is None else v for v in col]
            names.append(f'c{j}')
            formats.append(_NUMPY_TYPES[field.datatype])
            values.append(np.array(col, _NUMPY_TYPES[field.datatype]))
            continue
        lengths, data = _text_column(field, col)
        names.append(f'n{j}')
        formats.append('>u4')
        values.append(lengths)
        blocks.append((names, formats, values))
        texts.append((lengths, data))
        names, formats, values = [], [], []
    blocks.append((names, formats, values))
    arrays = []
    for names, formats, values in blocks:
        table = np.empty(n, dtype={'names': names, 'formats': formats})
        for name, value in zip(names, values):
            table[name] = value
        arrays.append(table.view(np.uint8).reshape(n, table.dtype.itemsize))
    if not texts:
        return arrays[0].tobytes()
    row_bytes = sum(a.shape[1] for a in arrays) + sum(lengths for lengths, _ in texts)
    ends = np.cumsum(row_bytes)
    out = np.empty(int(ends[-1]), np.uint8)
    offset = ends - row_bytes  # where each row's next part goes
    for k, array in enumerate(arrays):
        if array.shape[1]:
            out[offset[:, None] + np.arange(array.shape[1])] = array
            offset += array.shape[1]
        if k < len(texts):
            lengths, data = texts[k]
            if len(data):
                starts = np.cumsum(lengths) - lengths
                out[np.repeat(offset - starts, lengths) + np.arange(len(data))] = data
            offset += lengths
    return out.tobytes()


def _binary2_row(codecs, fields, n_mask, row):
    mask = 0
    body = []
    for j, ((encode, filler), field, value) in enumerate(zip(codecs, fields, row)):
        value = to_votable_value(field, value)
        if value is None:
            mask |= 1 << (8 * n_mask - 1 - j)
            body.append(filler)
        else:
            body.append(encode(value))
    return mask.to_bytes(n_mask, 'big') + b''.join(body)


def _binary2_rows(fields, rows, batch=5000):
    """BINARY2 bytes of the rows, a batch at a time."""
    n_mask = (len(fields) + 7) // 8
    if _batch_packable(fields):
        def pack(rows_):
            return _binary2_batch(fields, rows_, n_mask)
    else:
        codecs = [_binary2_codec(f) for f in fields]

        def pack(rows_):
            return b''.join(_binary2_row(codecs, fields, n_mask, row) for row in rows_)
    rows = iter(rows)
    while True:
        chunk = list(itertools.islice(rows, batch))
        if not chunk:
            return
        yield pack(chunk)


def _base64_lines(pieces):
    """Base64 lines (bytes, newline included) of a stream of bytes.

    Each line but the last encodes `B64_LINE_BYTES` bytes, however the stream
    was cut into pieces.
    """
    pending = b''
    for piece in pieces:
        data = pending + piece if pending else piece
        whole = len(data) - len(data) % B64_LINE_BYTES
        view = memoryview(data)
        for i in range(0, whole, B64_LINE_BYTES):
            yield binascii.b2a_base64(view[i:i + B64_LINE_BYTES])
        pending = bytes(view[whole:])
    if pending:
        yield binascii.b2a_base64(pending)


def stream_votable(fields, rows, fmt='votable', infos=(), trailer=None, description='',
                   binary2=None):
    """Write a TAP result as a VOTable, chunk by chunk.

    Parameters
    ----------
    fields : sequence of Field
    rows : iterable of tuple
        Database rows, in field order.
    fmt : {'votable', 'votable/b2'}
        TABLEDATA or BINARY2 serialization.
    infos : sequence of (name, value, text)
        INFOs written before the table (QUERY_STATUS OK is always first).
    trailer : callable, optional
        Called after the last row; returns more (name, value, text) INFOs
        (e.g. ``('QUERY_STATUS', 'OVERFLOW', '')``).
    description : str, optional
        DESCRIPTION of the RESOURCE.
    binary2 : bytes, optional
        The rows already serialised as BINARY2 (by the database: see
        `vo.query.QueryPool.execute`); ``rows`` is then not read. The document
        is the same as for the rows themselves.

    Yields
    ------
    bytes
    """
    head = [VOTABLE_HEAD, '<RESOURCE type="results">\n']
    if description:
        head.append(f'<DESCRIPTION>{escape(description)}</DESCRIPTION>\n')
    head.append(info_xml('QUERY_STATUS', 'OK'))
    head.extend(info_xml(*info) for info in infos)
    head.append('<TABLE>\n')
    head.extend(field_xml(f) for f in fields)
    binary = fmt == 'votable/b2' or binary2 is not None
    head.append('<DATA><BINARY2><STREAM encoding="base64">\n' if binary
                else '<DATA><TABLEDATA>\n')
    yield ''.join(head).encode('utf-8')
    error = None
    buffer, size = [], 0
    try:
        if binary:  # base64 lines of 64 KiB: sent as they come
            yield from _base64_lines([binary2] if binary2 is not None
                                     else _binary2_rows(fields, rows))
        else:
            for piece in _tabledata_rows(fields, rows):
                buffer.append(piece)
                size += len(piece)
                if size > 65536:
                    yield ''.join(buffer).encode('utf-8')
                    buffer, size = [], 0
    except Exception as exc:  # headers are sent: the only way left to report it is an INFO
        log.exception('error while streaming a result')
        error = getattr(exc, 'message', None) or str(exc) or type(exc).__name__
    tail = buffer + ['</STREAM></BINARY2></DATA>\n' if binary else '</TABLEDATA></DATA>\n',
                     '</TABLE>\n']
    if error is not None:
        tail.append(info_xml('QUERY_STATUS', 'ERROR', error))
    elif trailer is not None:
        tail.extend(info_xml(*info) for info in trailer())
    tail.append('</RESOURCE>\n</VOTABLE>\n')
    yield ''.join(tail).encode('utf-8')


def stream_csv(fields, rows, fmt='csv'):
    """Write rows as CSV (RFC 4180, header line) or TSV, chunk by chunk.

    Parameters
    ----------
    fields : sequence of Field
    rows : iterable of tuple
    fmt : {'csv', 'tsv'}

    Yields
    ------
    bytes
    """
    out = io.StringIO()
    if fmt == 'csv':
        writer = csv.writer(out, lineterminator='\r\n')
        write = writer.writerow
    else:
        def write(cells):  # TSV has no quoting: tabs and newlines inside values become spaces
            out.write('\t'.join(re.sub(r'[\t\r\n]', ' ', c) for c in cells) + '\n')
    write([f.name for f in fields])
    for i, row in enumerate(rows, 1):
        write(['' if v is None else _text(v)
               for v in (to_votable_value(f, x) for f, x in zip(fields, row))])
        if i % 2000 == 0:
            yield out.getvalue().encode('utf-8')
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode('utf-8')
