"""HEALPix range conditions for constant cones (part of `use_point_columns`).

A WHERE clause that requires a table's stored point to lie in a constant cone
(``1 = CONTAINS(POINT(t.ra, t.dec), CIRCLE(180, 0, 0.5))``, the same with
INTERSECTS, or ``DISTANCE(POINT(t.ra, t.dec), POINT(180, 0)) < 0.5``) gets the
equivalent B-tree condition on the table's ``healpix_nest`` column added beside
it (`vo.healpix_ranges`). The cone test implies the added condition, and both are
top-level conjuncts of one WHERE, so the rows are the same; PostgreSQL can now
read the matching index ranges instead of the whole table, also under row-level
security and whatever indexes the pg_sphere column has.
"""
from . import nodes as n
from .flatten import flatten

__all__ = ['ICRS_LIKE', 'conjuncts', 'constant_cone', 'add_healpix_ranges', 'column_sql',
           'drop_icrs_frame', 'number_value']

#: Coordinate systems taken as ICRS (the first word of an ADQL frame argument).
ICRS_LIKE = {'', 'ICRS', 'J2000', 'UNKNOWNFRAME'}


def conjuncts(node):
    """The top-level AND terms of a condition (parentheses looked through)."""
    while isinstance(node, n.Paren):
        node = node.expr
    if isinstance(node, n.BoolOp) and node.op == 'AND':
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def number_value(node):
    """The float value of a numeric literal (signed, parenthesised or not), else None."""
    while isinstance(node, n.Paren):
        node = node.expr
    if isinstance(node, n.Literal) and node.kind == 'number':
        return float(node.text)
    if isinstance(node, n.Unary) and node.op in '+-':
        v = number_value(node.operand)
        return None if v is None else (-v if node.op == '-' else v)
    return None


def _func(node, *names):
    while isinstance(node, n.Paren):
        node = node.expr
    return node if isinstance(node, n.FuncCall) and node.name in names else None


def drop_icrs_frame(args):
    """Arguments without a leading ICRS-like frame; None for another frame."""
    if args and isinstance(args[0], n.Literal) and args[0].kind in ('string', 'null'):
        frame = args[0].text.strip().upper() if args[0].kind == 'string' else ''
        return args[1:] if frame.split(' ')[0] in ICRS_LIKE else None
    return args


def _constant_point(node):
    point = _func(node, 'POINT')
    args = None if point is None else drop_icrs_frame(point.args)
    if not args or len(args) != 2:
        return None
    ra, dec = (number_value(a) for a in args)
    return None if ra is None or dec is None else (ra, dec)


def _circle(node):
    circle = _func(node, 'CIRCLE')
    args = None if circle is None else drop_icrs_frame(circle.args)
    if args is None:
        return None
    if len(args) == 3:
        ra, dec, r = (number_value(a) for a in args)
        centre = None if ra is None or dec is None else (ra, dec)
    elif len(args) == 2:
        centre, r = _constant_point(args[0]), number_value(args[1])
    else:
        return None
    return None if centre is None or r is None else (*centre, r)


def constant_cone(term):
    """``(POINT node, ra_deg, dec_deg, radius_deg)`` when ``term`` tests a point
    against a constant cone, else None.

    Parameters
    ----------
    term : vo.adql.nodes.Node
        One conjunct of a WHERE clause, before morphing.
    """
    while isinstance(term, n.Paren):
        term = term.expr
    if not isinstance(term, n.Comparison):
        return None
    left, right, op = term.left, term.right, term.op
    if op == '=' and number_value(left) == 1.0:
        left, right = right, left
    if op == '=' and number_value(right) == 1.0:
        test = _func(left, 'CONTAINS', 'INTERSECTS')
        if test is None or len(test.args) != 2:
            return None
        a, b = test.args
        if test.name == 'INTERSECTS' and _circle(a) is not None:
            a, b = b, a
        cone = _circle(b)
        return None if cone is None or _func(a, 'POINT') is None else (_func(a, 'POINT'),
                                                                        *cone)
    flipped = {'>': '<', '>=': '<='}
    if op in flipped:
        left, right, op = right, left, flipped[op]
    distance, r = _func(left, 'DISTANCE'), number_value(right)
    if op not in ('<', '<=') or distance is None or r is None or len(distance.args) != 2:
        return None
    for point, other in (distance.args, distance.args[::-1]):
        centre = _constant_point(other)
        if centre is not None and _func(point, 'POINT') is not None:
            return _func(point, 'POINT'), *centre, r
    return None


def add_healpix_ranges(where, rewritten, resolve):
    """``rewritten AND <healpix ranges>`` for each constant cone of ``where``.

    Parameters
    ----------
    where : vo.adql.nodes.Node
        The WHERE condition as written (annotated ADQL).
    rewritten : vo.adql.nodes.Node
        The same condition after the point rewriting.
    resolve : callable
        ``resolve(point_node)`` -> SQL text of the HEALPix column of the table
        whose stored point ``point_node`` is, or None.

    Returns
    -------
    vo.adql.nodes.Node
    """
    from ..healpix_ranges import cone_ranges, ranges_condition

    for term in conjuncts(where):
        cone = constant_cone(term)
        if cone is None:
            continue
        column = resolve(cone[0])
        ranges = None if column is None else cone_ranges(*cone[1:])
        if ranges is not None:
            rewritten = n.BoolOp('AND', rewritten, n.SqlRaw(ranges_condition(column, ranges)))
    return rewritten


def column_sql(qualifier, name):
    """SQL text of column ``name`` of the table named by ``qualifier`` (Idents)."""
    return flatten(n.ColumnRef(tuple(qualifier) + (n.Ident(name),)))
