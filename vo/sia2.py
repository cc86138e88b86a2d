"""SIA 2.0 queries over ``ivoa.obscore`` (``/sia/query``).

Each parameter may repeat: values of one parameter are OR-ed, parameters
AND-ed (SIA 2.0 section 2.1). Intervals are DALI ``lo hi`` pairs (``-Inf``,
``+Inf`` allowed); POS is ``CIRCLE ra dec r``, ``RANGE ra1 ra2 dec1 dec2`` or
``POLYGON ra1 dec1 ...`` in degrees, matched against ``s_region``.
"""
import math

from .exceptions import UsageError, VOError
from .params import parse_int
from .reply import Reply, error_reply
from .votable import FORMATS, resolve_format, stream_csv, stream_votable

__all__ = ['parse_sia', 'sia_query']

_INTERVALS = {'BAND': ('em_min', 'em_max'), 'TIME': ('t_min', 't_max'),
              'FOV': ('s_fov', 's_fov'), 'SPATRES': ('s_resolution', 's_resolution'),
              'EXPTIME': ('t_exptime', 't_exptime')}
_STRINGS = {'ID': 'obs_publisher_did', 'COLLECTION': 'obs_collection',
            'FACILITY': 'facility_name', 'INSTRUMENT': 'instrument_name',
            'DPTYPE': 'dataproduct_type', 'TARGET': 'target_name', 'FORMAT': 'access_format'}
_POL_STATES = ('I', 'Q', 'U', 'V', 'RR', 'LL', 'RL', 'LR', 'XX', 'YY', 'XY', 'YX', 'POLI',
               'POLA')


def _numbers(text, name, count=None):
    parts = text.split()
    if count is not None and len(parts) != count:
        raise UsageError(f'{name}={text!r}: expected {count} numbers')
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise UsageError(f'{name}={text!r}: not numbers') from None


def _pos_clause(text):
    words = text.split(None, 1)
    if len(words) != 2:
        raise UsageError(f'POS={text!r}: expected CIRCLE, RANGE or POLYGON with numbers')
    shape, rest = words[0].upper(), words[1]
    if shape == 'CIRCLE':
        ra, dec, r = _numbers(rest, 'POS', 3)
        if not (-90 <= dec <= 90 and 0 <= r <= 180):
            raise UsageError(f'POS={text!r}: out of range')
        return ('s_region && scircle(spoint(radians(%s), radians(%s)), radians(%s))',
                [ra, dec, r])
    if shape == 'RANGE':
        ra1, ra2, dec1, dec2 = _numbers(rest, 'POS', 4)
        ra1, ra2 = (0.0 if math.isinf(ra1) else ra1), (360.0 if math.isinf(ra2) else ra2)
        dec1, dec2 = max(dec1, -90.0), min(dec2, 90.0)
        return ('s_region && sbox(spoint(radians(%s), radians(%s)), '
                'spoint(radians(%s), radians(%s)))', [ra1, dec1, ra2, dec2])
    if shape == 'POLYGON':
        values = _numbers(rest, 'POS')
        if len(values) < 6 or len(values) % 2:
            raise UsageError(f'POS={text!r}: a polygon needs at least 3 vertices')
        poly = '{' + ','.join(f'({values[i]:.12g}d,{values[i + 1]:.12g}d)'
                              for i in range(0, len(values), 2)) + '}'
        return 's_region && %s::spoly', [poly]
    raise UsageError(f'POS shape {shape!r} is not CIRCLE, RANGE or POLYGON')


def parse_sia(params, limits):
    """Turn SIA 2.0 parameters into a WHERE clause.

    Returns
    -------
    where : str
    args : list
    maxrec : int
    fmt : str

    Raises
    ------
    UsageError
        For malformed values.
    """
    clauses, args = [], []

    def any_of(parts):
        if parts:
            clauses.append('(' + ' OR '.join(p for p, _ in parts) + ')')
            for _, a in parts:
                args.extend(a)

    any_of([_pos_clause(v) for v in params.getlist('POS')])
    for name, (lo_col, hi_col) in _INTERVALS.items():
        parts = []
        for value in params.getlist(name):
            lo, hi = _numbers(value, name, 2)
            parts.append((f'({lo_col} <= %s AND {hi_col} >= %s)', [hi, lo]))
        any_of(parts)
    for name, col in _STRINGS.items():
        any_of([(f'{col} = %s', [v]) for v in params.getlist(name)])
    any_of([('calib_level = %s', [parse_int(v, 'CALIB', lo=0, hi=4)])
            for v in params.getlist('CALIB')])
    pol = []
    for value in params.getlist('POL'):
        if value.upper() not in _POL_STATES:
            raise UsageError(f'POL={value!r} is not a polarization state')
        pol.append(('pol_states LIKE %s', [f'%/{value.upper()}/%']))
    any_of(pol)
    maxrec = params.get('MAXREC')
    maxrec = limits.default_maxrec if maxrec in (None, '') else min(
        parse_int(maxrec, 'MAXREC'), limits.hard_maxrec)
    fmt = resolve_format(params.get('RESPONSEFORMAT'))
    if fmt is None:
        raise UsageError(f'RESPONSEFORMAT={params.get("RESPONSEFORMAT")} is not supported')
    return ' AND '.join(clauses) or 'true', args, maxrec, fmt


def sia_query(pool, params, limits, base_url=''):
    """The whole of ``/sia/query``: a reply for any request.

    Returns
    -------
    vo.reply.Reply
    """
    from archive.schema import table_def

    from .tapschema import field_from_column

    try:
        where, args, maxrec, fmt = parse_sia(params, limits)
        tdef = table_def('ivoa.obscore')
        cols = ', '.join(c.name for c in tdef.columns)
        result = pool.execute(f'SELECT {cols} FROM ivoa.obscore WHERE {where} LIMIT %s',
                              args + [maxrec + 1], maxrec=maxrec,
                              timeout_s=limits.sync_timeout_s, base_url=base_url)
    except VOError as exc:
        return error_reply(exc)
    result.fields = [field_from_column(c) for c in tdef.columns]
    if fmt in ('csv', 'tsv'):
        return Reply(200, FORMATS[fmt][0], stream_csv(result.fields, result, fmt))
    return Reply(200, FORMATS[fmt][0], stream_votable(result.fields, result, fmt,
                                                      trailer=result.trailer))
