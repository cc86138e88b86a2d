"""SSA 1.1 queryData over the candidate spectra (``/ssa``).

POS is ``ra,dec`` (ICRS degrees), SIZE the search diameter in degrees, BAND a
wavelength range ``lo/hi`` in metres, TIME a range of ISO 8601 dates,
FORMAT one of all/compliant/votable/metadata (the spectra are VOTables),
MAXREC the row limit. FIELDs carry the SSA 1.1 utypes pyvo reads.
"""
import datetime

from .exceptions import UsageError, VOError
from .params import parse_float, parse_int
from .reply import Reply, error_reply
from .votable import Field, stream_votable

__all__ = ['SSA_FIELDS', 'parse_ssa', 'ssa_query']

MIME = 'application/x-votable+xml'
DEFAULT_SIZE_DEG = 0.1

#: (SQL expression, Field) of each output column.
SSA_COLUMNS = (
    ("'ivo://spheredc/products?' || product_id",
     Field('ssa_pubdid', 'char', '*', ucd='meta.ref.ivoid', utype='ssa:Curation.PublisherDID',
           description='Publisher dataset identifier (DataLink ID).')),
    ("'Spectrum of ' || product_id",
     Field('ssa_title', 'char', '*', ucd='meta.title;meta.dataset', utype='ssa:DataID.Title',
           description='Title of the spectrum.')),
    ('target_name', Field('ssa_targname', 'char', '*', ucd='meta.id;src',
                          utype='ssa:Target.Name', description='Host star.')),
    ('spoint(radians(ra), radians(dec))',
     Field('ssa_location', 'double', '2', 'point', 'deg', 'pos.eq;meta.main',
           'ssa:Char.SpatialAxis.Coverage.Location.Value', 'Position of the companion.')),
    ('wavelength_min_um * 1e-6',
     Field('ssa_specstart', 'double', unit='m', ucd='em.wl;stat.min',
           utype='ssa:Char.SpectralAxis.Coverage.Bounds.Start',
           description='Shortest wavelength.')),
    ('wavelength_max_um * 1e-6',
     Field('ssa_specend', 'double', unit='m', ucd='em.wl;stat.max',
           utype='ssa:Char.SpectralAxis.Coverage.Bounds.Stop', description='Longest wavelength.')),
    ('(mjd_start + mjd_end) / 2',
     Field('ssa_dateobs', 'double', unit='d', ucd='time.epoch',
           utype='ssa:Char.TimeAxis.Coverage.Location.Value', description='Mid-time (MJD).')),
    ('exptime_s', Field('ssa_timeext', 'double', unit='s', ucd='time.duration;obs.exposure',
                        utype='ssa:Char.TimeAxis.Coverage.Bounds.Extent',
                        description='Exposure time.')),
    ("'spectrum'", Field('ssa_dstype', 'char', '*', ucd='meta.code.class',
                         utype='ssa:Dataset.Type', description='Dataset type.')),
    ('%(base)s || \'/files/product/\' || product_id',
     Field('accref', 'char', '*', ucd='meta.ref.url', utype='ssa:Access.Reference',
           description='URL of the spectrum.')),
    ('content_type', Field('mime', 'char', '*', ucd='meta.code.mime',
                           utype='ssa:Access.Format', description='MIME type.')),
    ('(size_bytes + 1023) / 1024', Field('accsize', 'long', unit='kbyte',
                                         ucd='phys.size;meta.file', utype='ssa:Access.Size',
                                         description='File size.')),
)
SSA_FIELDS = [f for _, f in SSA_COLUMNS]


def _range(text, name, convert):
    if '/' not in text:
        value = convert(text)
        return value, value
    lo, hi = text.split('/', 1)
    return (convert(lo) if lo.strip() else None), (convert(hi) if hi.strip() else None)


def _mjd(text):
    try:
        t = datetime.datetime.fromisoformat(text.strip().replace('Z', ''))
    except ValueError:
        raise UsageError(f'TIME={text!r}: not an ISO 8601 date') from None
    return (t - datetime.datetime(1858, 11, 17)).total_seconds() / 86400.0


def parse_ssa(params, limits):
    """Validate an SSA queryData request.

    Returns
    -------
    where : str
    args : dict
    maxrec : int
    metadata_only : bool

    Raises
    ------
    UsageError
    """
    request = params.get('REQUEST')
    if request is None or request.lower() != 'querydata':
        raise UsageError('REQUEST=queryData is required')
    fmt = (params.get('FORMAT') or 'all').lower()
    if fmt not in ('all', 'compliant', 'votable', 'native', 'metadata',
                   'application/x-votable+xml'):
        raise UsageError(f'FORMAT={fmt} is not available (spectra are VOTables)')
    # Proprietary spectra are filtered by the row-level security, for the viewer.
    clauses, args = ["product_type = 'spectrum'", 'is_current'], {}
    pos = params.get('POS')
    if pos:
        parts = pos.split(';')[0].split(',')
        if len(parts) != 2:
            raise UsageError(f'POS={pos!r}: expected ra,dec in degrees')
        args['ra'] = parse_float(parts[0], 'POS ra', 0, 360)
        args['dec'] = parse_float(parts[1], 'POS dec', -90, 90)
        size = params.get('SIZE')
        args['r'] = (parse_float(size, 'SIZE', 0, 360) if size else DEFAULT_SIZE_DEG) / 2
        clauses.append('pos <@ scircle(spoint(radians(%(ra)s), radians(%(dec)s)), '
                       'radians(%(r)s))')
    band = params.get('BAND')
    if band:
        lo, hi = _range(band, 'BAND', lambda t: parse_float(t, 'BAND', 0))
        if lo is not None:
            args['band_lo'] = lo * 1e6
            clauses.append('wavelength_max_um >= %(band_lo)s')
        if hi is not None:
            args['band_hi'] = hi * 1e6
            clauses.append('wavelength_min_um <= %(band_hi)s')
    time_range = params.get('TIME')
    if time_range:
        lo, hi = _range(time_range, 'TIME', _mjd)
        if lo is not None:
            args['t_lo'] = lo
            clauses.append('mjd_end >= %(t_lo)s')
        if hi is not None:
            args['t_hi'] = hi + (1 if '/' not in time_range else 0)
            clauses.append('mjd_start <= %(t_hi)s')
    maxrec = params.get('MAXREC')
    maxrec = limits.default_maxrec if maxrec in (None, '') else min(
        parse_int(maxrec, 'MAXREC'), limits.hard_maxrec)
    return ' AND '.join(clauses), args, maxrec, fmt == 'metadata'


def ssa_query(pool, params, limits, base_url=''):
    """The whole of ``/ssa``: a reply for any request.

    Returns
    -------
    vo.reply.Reply
    """
    try:
        where, args, maxrec, metadata_only = parse_ssa(params, limits)
        args['base'] = base_url
        args['limit'] = 0 if metadata_only else maxrec + 1
        select = ', '.join(expr for expr, _ in SSA_COLUMNS)
        result = pool.execute(f'SELECT {select} FROM sphere.products WHERE {where} '
                              'ORDER BY product_id LIMIT %(limit)s', args, maxrec=maxrec,
                              timeout_s=limits.sync_timeout_s)
    except VOError as exc:
        return error_reply(exc)
    result.fields = SSA_FIELDS
    return Reply(200, MIME, stream_votable(SSA_FIELDS, result, trailer=result.trailer,
                                           infos=[('SERVICE_PROTOCOL', '1.1', 'SSAP')]))
