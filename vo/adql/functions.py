"""What ADQL 2.1 knows about functions: names, arities and result kinds.

Result kinds are coarse types used by `vo.adql.check`: ``num``, ``str``,
``geom``, ``any``.
"""

__all__ = ['BUILTINS', 'UDFS', 'UDF_PREFIXES', 'AGGREGATES', 'GEOMETRY', 'lookup']

# name: (min args, max args (None: unbounded), result kind)
BUILTINS = {
    **{f: (1, 1, 'num') for f in (
        'ABS', 'ACOS', 'ASIN', 'ATAN', 'CEILING', 'COS', 'COT', 'DEGREES', 'EXP',
        'FLOOR', 'LOG', 'LOG10', 'RADIANS', 'SIN', 'SQRT', 'TAN')},
    'ATAN2': (2, 2, 'num'), 'MOD': (2, 2, 'num'), 'POWER': (2, 2, 'num'),
    'PI': (0, 0, 'num'), 'RAND': (0, 1, 'num'), 'ROUND': (1, 2, 'num'),
    'TRUNCATE': (1, 2, 'num'),
    'COUNT': (1, 1, 'num'), 'AVG': (1, 1, 'num'), 'SUM': (1, 1, 'num'),
    'MIN': (1, 1, 'any'), 'MAX': (1, 1, 'any'),
    'LOWER': (1, 1, 'str'), 'UPPER': (1, 1, 'str'),
    'COALESCE': (1, None, 'any'), 'NULLIF': (2, 2, 'any'),
    'GREATEST': (1, None, 'any'), 'LEAST': (1, None, 'any'),
    'IN_UNIT': (2, 2, 'num'),
    'POINT': (2, 3, 'geom'), 'CIRCLE': (2, 4, 'geom'), 'BOX': (3, 5, 'geom'),
    'POLYGON': (3, None, 'geom'), 'REGION': (1, 1, 'geom'), 'CENTROID': (1, 1, 'geom'),
    'AREA': (1, 1, 'num'), 'COORD1': (1, 1, 'num'), 'COORD2': (1, 1, 'num'),
    'COORDSYS': (1, 1, 'str'), 'CONTAINS': (2, 2, 'num'), 'INTERSECTS': (2, 2, 'num'),
    'DISTANCE': (2, 4, 'num'),
}

AGGREGATES = frozenset({'COUNT', 'AVG', 'SUM', 'MIN', 'MAX'})
GEOMETRY = frozenset({'POINT', 'CIRCLE', 'BOX', 'POLYGON', 'REGION', 'CENTROID'})

# The user-defined functions this service implements (ADQL 2.1 section 4.3).
UDFS = {
    'IVO_HEALPIX_INDEX': (2, 3, 'num'),
    'IVO_HASHLIST_HAS': (2, 2, 'num'),
    'IVO_STRING_AGG': (2, 2, 'str'),
    'IVO_INTERVAL_OVERLAPS': (4, 4, 'num'),
}

# Name prefixes of UDFs defined by the IVOA or by other services: such calls are
# valid ADQL (they parse and type-check) although only our own UDFS can run here.
UDF_PREFIXES = ('IVO_', 'GAVO_', 'ESO_')


def lookup(name):
    """Describe a function by its upper-case name.

    Parameters
    ----------
    name : str
        Upper-case function name.

    Returns
    -------
    tuple or None
        (min args, max args or None, result kind, origin) where origin is
        ``'adql'``, ``'udf'`` (ours) or ``'foreign'`` (a prefixed UDF of
        another service); None for a name that is no function at all.
    """
    if name in BUILTINS:
        return BUILTINS[name] + ('adql',)
    if name in UDFS:
        return UDFS[name] + ('udf',)
    if name.startswith(UDF_PREFIXES):
        return (0, None, 'any', 'foreign')
    return None
