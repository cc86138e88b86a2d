"""Simple Cone Search 1.03 on the tables with a sky position.

``/scs/<table>?RA=&DEC=&SR=[&VERB=]``: RA, DEC and SR in degrees (ICRS).
The main identifier, RA and Dec FIELDs carry the UCD1 names the standard
requires (ID_MAIN, POS_EQ_RA_MAIN, POS_EQ_DEC_MAIN); errors are VOTables with
an INFO named "Error" (SCS 1.03 section 3).
"""
import dataclasses
import functools

from .exceptions import UsageError, VOError
from .params import parse_float, parse_int
from .reply import Reply
from .tapschema import field_from_column
from .votable import VOTABLE_HEAD, info_xml, stream_votable

__all__ = ['CONE_TABLES', 'ConeRequest', 'parse_cone', 'cone_sql', 'cone_search',
           'cone_error']

#: Cone-searchable tables: URL name -> (table, main identifier column).
CONE_TABLES = {'candidates': ('sphere.candidates', 'candidate_id'),
               'sequences': ('sphere.sequences', 'sequence_id')}

_UCD1 = {'id': 'ID_MAIN', 'ra': 'POS_EQ_RA_MAIN', 'dec': 'POS_EQ_DEC_MAIN'}
MAX_SR_DEG = 180.0


@dataclasses.dataclass(frozen=True)
class ConeRequest:
    """A validated cone search."""

    ra_deg: float
    dec_deg: float
    sr_deg: float
    verb: int = 2
    maxrec: int | None = None


def parse_cone(params, limits):
    """Validate RA, DEC, SR, VERB (and MAXREC, an extension).

    Raises
    ------
    UsageError
        When a parameter is missing, not a number or out of range.
    """
    for name in ('RA', 'DEC', 'SR'):
        if params.get(name) in (None, ''):
            raise UsageError(f'parameter {name} is required (degrees)')
    ra = parse_float(params.get('RA'), 'RA', 0.0, 360.0)
    dec = parse_float(params.get('DEC'), 'DEC', -90.0, 90.0)
    sr = parse_float(params.get('SR'), 'SR', 0.0, MAX_SR_DEG)
    verb = params.get('VERB')
    verb = 2 if verb in (None, '') else parse_int(verb, 'VERB', lo=1, hi=3)
    maxrec = params.get('MAXREC')
    maxrec = limits.default_maxrec if maxrec in (None, '') else min(
        parse_int(maxrec, 'MAXREC'), limits.hard_maxrec)
    return ConeRequest(ra % 360.0, dec, sr, verb, maxrec)


@functools.cache
def cone_fields(table_name, verb):
    """(column definitions, FIELDs) returned at verbosity ``verb`` (tuples, made once)."""
    from archive.schema import table_def

    table, id_col = CONE_TABLES[table_name]
    tdef = table_def(table)
    wanted = {1: lambda c: c.name in (id_col, 'ra', 'dec'),
              2: lambda c: c.principal or c.name in (id_col, 'ra', 'dec'),
              3: lambda c: True}[verb]
    cols = [c for c in tdef.columns if wanted(c) and c.type != 'spoint']
    fields = []
    for c in cols:
        field = field_from_column(c)
        key = 'id' if c.name == id_col else c.name
        if key in _UCD1:
            field = dataclasses.replace(field, ucd=_UCD1[key])
        fields.append(field)
    return tuple(cols), tuple(fields)


def cone_sql(table_name, request):
    """SQL and parameters of a cone search (HEALPix ranges, then the exact pg_sphere test)."""
    from .healpix_ranges import cone_ranges, ranges_condition

    table, _ = CONE_TABLES[table_name]
    cols, _ = cone_fields(table_name, request.verb)
    # Names come from schemas/, not from the request: quoting is enough.
    select = f'SELECT {", ".join(chr(34) + c.name + chr(34) for c in cols)} FROM {table} '
    limit = request.maxrec + 1
    if request.sr_deg <= 90:
        ranges = cone_ranges(request.ra_deg, request.dec_deg, request.sr_deg)
        # the HEALPix B-tree ranges beside the exact test (see vo.healpix_ranges)
        healpix = '' if ranges is None else ' AND ' + ranges_condition('healpix_nest', ranges)
        return (select + 'WHERE pos <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))'
                + healpix + ' LIMIT %s', (request.ra_deg, request.dec_deg, request.sr_deg, limit))
    # pg_sphere circles stop at 90 degrees: beyond, exclude the antipodal cap instead.
    return (select + 'WHERE pos IS NOT NULL AND NOT pos <@ scircle(spoint(radians(%s), '
            'radians(%s)), radians(%s)) LIMIT %s',
            ((request.ra_deg + 180) % 360, -request.dec_deg, 180 - request.sr_deg, limit))


def cone_error(message):
    """SCS 1.03 error document (INFO name="Error", plus the DALI QUERY_STATUS)."""
    return (VOTABLE_HEAD + '<RESOURCE type="results">\n' + info_xml('Error', message)
            + info_xml('QUERY_STATUS', 'ERROR', message)
            + '</RESOURCE>\n</VOTABLE>\n').encode('utf-8')


def cone_search(pool, table_name, params, limits):
    """The whole of ``/scs/<table>``: a reply for any request.

    Parameters
    ----------
    pool : vo.query.QueryPool
    table_name : str
        A key of `CONE_TABLES`.
    params : vo.params.Params
    limits : vo.query.Limits

    Returns
    -------
    vo.reply.Reply
    """
    mime = 'text/xml'
    if table_name not in CONE_TABLES:
        return Reply(404, mime, cone_error(f'no cone search on {table_name!r}'))
    try:
        request = parse_cone(params, limits)
        query, args = cone_sql(table_name, request)
        _, fields = cone_fields(table_name, request.verb)
        result = pool.execute(query, args, maxrec=request.maxrec, timeout_s=limits.sync_timeout_s,
                              binary=True)  # no geometry column is returned
    except VOError as exc:
        return Reply(200 if exc.http_status < 500 else exc.http_status, mime,
                     cone_error(exc.message))
    result.fields = fields
    text = f'Cone search on {CONE_TABLES[table_name][0]}'
    return Reply(200, mime, stream_votable(fields, result, trailer=result.trailer,
                                           description=text))
