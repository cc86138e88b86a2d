"""TAP 1.1 synchronous queries: parse the request, run it, write the result.

Parameters are case-insensitive (DALI); LANG=ADQL (2.0 or 2.1) is required,
REQUEST may be ``doQuery``; RESPONSEFORMAT (or FORMAT) picks VOTable
TABLEDATA, BINARY2, CSV or TSV and the reply echoes the MIME type asked
for; MAXREC limits rows, the SQL fetching MAXREC + 1 to detect OVERFLOW.
"""
import dataclasses
import functools

from .exceptions import QueryError, UsageError, VOError
from .params import parse_int
from .reply import Reply, error_reply
from .votable import FORMATS, resolve_format, stream_csv, stream_votable

__all__ = ['TapRequest', 'parse_tap_request', 'translate_query', 'run_tap_query',
           'result_reply', 'sync_query', 'point_columns']

LANGS = ('ADQL', 'ADQL-2.0', 'ADQL-2.1')


@dataclasses.dataclass(frozen=True)
class TapRequest:
    """A validated TAP query request.

    Attributes
    ----------
    query : str
        The ADQL text.
    fmt : str
        Short output format (a key of `vo.votable.FORMATS`).
    mime : str
        MIME type to answer with (the one asked for when given).
    maxrec : int
        Rows to return at most.
    runid : str or None
    uploads : tuple of str
        UPLOAD parameter values.
    """

    query: str
    fmt: str
    mime: str
    maxrec: int
    runid: str | None = None
    uploads: tuple = ()


def parse_tap_request(params, limits):
    """Validate the parameters of a TAP query.

    Parameters
    ----------
    params : vo.params.Params
    limits : vo.query.Limits

    Returns
    -------
    TapRequest

    Raises
    ------
    UsageError
        For a missing or invalid LANG, QUERY, REQUEST, MAXREC or RESPONSEFORMAT.
    """
    request = params.get('REQUEST')
    if request is not None and request.lower() != 'doquery':
        raise UsageError(f'REQUEST={request} is not supported (use doQuery)')
    lang = params.get('LANG')
    if lang is None:
        raise UsageError('LANG is required (LANG=ADQL)')
    if lang.upper() not in LANGS:
        raise UsageError(f'LANG={lang} is not supported (use ADQL)')
    query = params.get('QUERY')
    if not query or not query.strip():
        raise UsageError('QUERY is required')
    asked = params.get('RESPONSEFORMAT') or params.get('FORMAT')
    fmt = resolve_format(asked)
    if fmt is None:
        raise UsageError(f'RESPONSEFORMAT={asked} is not supported '
                         f'(one of {", ".join(FORMATS)})')
    mime = asked if asked and '/' in asked else FORMATS[fmt][0]
    maxrec = params.get('MAXREC')
    maxrec = limits.default_maxrec if maxrec in (None, '') else parse_int(maxrec, 'MAXREC')
    return TapRequest(query, fmt, mime, min(maxrec, limits.hard_maxrec), params.get('RUNID'),
                      tuple(params.getlist('UPLOAD')))


def translate_query(query, maxrec, uploads=()):
    """ADQL to SQL against the published tables (and the uploaded ones).

    Returns
    -------
    vo.adql.Translation

    Raises
    ------
    QueryError
        For a syntax error, an unknown name or an untranslatable construct.
    """
    from vo.adql import ADQLError, translate

    from .tapschema import adql_metadata

    try:
        if not uploads:
            return _translate_published(query, maxrec)
        return translate(query, adql_metadata([u.table for u in uploads]), maxrec=maxrec,
                         points=point_columns())
    except ADQLError as exc:
        raise QueryError(f'{type(exc).__name__}: {exc}') from exc
    except RecursionError:
        raise QueryError('query too deeply nested') from None


@functools.lru_cache(maxsize=512)
def _translate_published(query, maxrec):
    # Parsing costs ~6 ms, more than running a small indexed query: repeated queries
    # (clients polling, TOPCAT refreshes) reuse the translation. Errors are not cached.
    from vo.adql import translate

    from .tapschema import adql_metadata

    return translate(query, adql_metadata(), maxrec=maxrec, points=point_columns())


@functools.cache
def point_columns():
    """Published tables storing their position as a pg_sphere point.

    Returns
    -------
    dict
        Qualified table name to ``(ra, dec, pos, healpix)`` column names, for the
        tables of ``schemas/`` with a ``sky_position`` and a column computed as
        ``spoint(radians(ra), radians(dec))`` (what ADQL's POINT of them is);
        ``healpix`` is the column computed as its order-29 HEALPix index, or None.
    """
    from .healpix_ranges import HEALPIX_ORDER
    from .tapschema import published_tables

    points = {}
    for tdef in published_tables():
        sky = tdef.sky_position
        if not sky:
            continue
        point = f"spoint(radians({sky['ra']}), radians({sky['dec']}))"
        computed = {(c.computed or '').replace(' ', ''): c.name for c in tdef.columns}
        pos = computed.get(point.replace(' ', ''))
        if pos is not None:
            healpix = computed.get(f'healpix_nest({HEALPIX_ORDER},{point})'.replace(' ', ''))
            points[tdef.qualified_name.lower()] = (sky['ra'], sky['dec'], pos, healpix)
    return points


def run_tap_query(pool, request, files, limits, base_url='', timeout_s=None, on_backend=None):
    """Translate and execute a `TapRequest`.

    Parameters
    ----------
    pool : vo.query.QueryPool
    request : TapRequest
    files : dict
        Multipart parts (inline uploads) by name: bytes.
    limits : vo.query.Limits
    base_url : str
        Public URL of the server.
    timeout_s : float, optional
        Statement timeout (default: the sync limit).
    on_backend : callable, optional
        Receives the backend PID (async jobs use it to cancel).

    Returns
    -------
    vo.query.Result

    Raises
    ------
    VOError
        For any problem of the request, the upload or the query.
    """
    from .upload import create_upload_tables, parse_uploads

    uploads = parse_uploads(request.uploads, files, limits) if request.uploads else []
    translation = translate_query(request.query, request.maxrec, uploads)
    setup = (lambda conn: create_upload_tables(conn, uploads)) if uploads else None
    return pool.execute(translation.sql, columns=translation.columns, maxrec=request.maxrec,
                        timeout_s=limits.sync_timeout_s if timeout_s is None else timeout_s,
                        base_url=base_url, setup=setup, on_backend=on_backend,
                        binary2=request.fmt == 'votable/b2')


def result_body(result, request):
    """The result document as an iterator of bytes."""
    if request.fmt in ('csv', 'tsv'):
        return stream_csv(result.fields, result, request.fmt)
    infos = [('QUERY', request.query, '')]
    if request.runid:
        infos.append(('RUNID', request.runid, ''))
    return stream_votable(result.fields, result, request.fmt, infos=infos,
                          trailer=result.trailer, binary2=result.binary2)


def result_reply(result, request):
    """The HTTP reply for an executed query (streamed)."""
    return Reply(200, request.mime, result_body(result, request))


def sync_query(pool, params, files, limits, base_url=''):
    """The whole of ``/tap/sync``: a reply for any request, good or bad.

    Parameters
    ----------
    pool : vo.query.QueryPool
    params : vo.params.Params
    files : dict
    limits : vo.query.Limits
    base_url : str

    Returns
    -------
    vo.reply.Reply
    """
    try:
        request = parse_tap_request(params, limits)
        result = run_tap_query(pool, request, files, limits, base_url)
    except VOError as exc:
        return error_reply(exc)
    return result_reply(result, request)
