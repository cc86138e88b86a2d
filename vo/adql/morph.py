"""ADQL to PostgreSQL + pg_sphere (pass 4 of 5).

Small functions keyed by node type, run bottom-up by `morph`; each returns
the replacement node and may record warnings.  Angles are degrees in ADQL and
radians in pg_sphere, so every geometry constructor converts on the way in and
every angle coming out (DISTANCE, COORD1, ...) is converted back.

Tables that store their position as a pg_sphere point (``pos``, computed by
PostgreSQL from ``ra`` and ``dec``) get ``POINT('ICRS', t.ra, t.dec)`` written as
``t.pos`` first (`use_point_columns`): the same value, but one that the GiST index
on ``pos`` serves, also under row-level security (where an index is only used for
leakproof operators on plain columns, never for ``spoint(radians(ra), ...)``).
Constant cones on such a table also get an equivalent condition on its indexed
HEALPix column (`vo.adql.prefilter`).
"""
import dataclasses

from . import nodes as n
from .exceptions import ADQLTranslationError
from .metadata import Column
from .prefilter import (ICRS_LIKE, add_healpix_ranges, column_sql, drop_icrs_frame,
                        number_value)
from .stcs import polygon_literal, stcs_to_pgsphere

__all__ = ['morph', 'Morpher', 'use_point_columns']

_SAME_NAME = {'ABS', 'ACOS', 'ASIN', 'ATAN', 'ATAN2', 'CEILING', 'COS', 'COT', 'DEGREES',
              'EXP', 'FLOOR', 'POWER', 'RADIANS', 'SIN', 'SQRT', 'TAN', 'PI', 'LOWER',
              'UPPER', 'COALESCE', 'NULLIF', 'GREATEST', 'LEAST', 'COUNT', 'AVG', 'SUM',
              'MIN', 'MAX'}


def _f(name, *args):
    return n.SqlFunc(name, tuple(args))


def _is_point(node):
    return isinstance(node, n.SqlFunc) and node.name == 'spoint' or (
        isinstance(node, n.SqlRaw) and node.text.startswith('spoint ')) or (
        isinstance(node, n.ColumnRef) and getattr(node.info, 'xtype', '') == 'point')


def _as_int_test(op, left, right):
    """A pg_sphere boolean test as ADQL's integer 0/1 value."""
    return n.Cast(n.SqlOp(op, left, right), 'INTEGER')


def _spoly(points):
    """A polygon from spoint expressions: pg_sphere only builds one with its aggregate."""
    rows = ', '.join(f'({i}, {{{i}}})' for i in range(len(points)))
    from .flatten import flatten
    rows = rows.format(*[flatten(p) for p in points])
    return n.SqlRaw(f'(SELECT spoly(v.p ORDER BY v.i) FROM (VALUES {rows}) AS v(i, p))')


class Morpher:
    """Holds the state of one morphing run.

    Parameters
    ----------
    maxrec : int, optional
        The service's row limit; the outermost query gets LIMIT
        min(TOP, maxrec + 1) so an overflow can be detected.
    """

    def __init__(self, maxrec=None):
        self.maxrec = maxrec
        self.warnings = []

    def __call__(self, node):
        fn = getattr(self, 'm_' + type(node).__name__, None)
        return fn(node) if fn is not None else node

    # -- queries -----------------------------------------------------------
    def m_Select(self, node):
        if node.top is not None:
            node = dataclasses.replace(node, limit=node.top)
        return node

    def m_SetOp(self, node):
        right = node.right
        # ADQL 2.1 section 4.6.4: a trailing ORDER BY/OFFSET sorts the whole set.
        if isinstance(right, n.Select) and right.top is None and (
                right.order_by or right.offset is not None):
            node = dataclasses.replace(
                node, right=dataclasses.replace(right, order_by=(), offset=None),
                order_by=right.order_by, offset=right.offset)
        return node

    # -- predicates --------------------------------------------------------
    def m_Comparison(self, node):
        for test, const in ((node.left, node.right), (node.right, node.left)):
            value = number_value(const)
            if (isinstance(test, n.Cast) and isinstance(test.expr, n.SqlOp)
                    and test.type_name == 'INTEGER' and test.expr.op in ('@', '&&')
                    and value in (0.0, 1.0) and node.op in ('=', '<>')):
                # keep the bare operator so that a GiST index can be used
                positive = (value == 1.0) == (node.op == '=')
                return test.expr if positive else n.Not(test.expr, pos=node.pos)
        return node

    # -- functions ---------------------------------------------------------
    def m_FuncCall(self, node):
        name = node.name
        if name in _SAME_NAME:
            return node
        method = getattr(self, 'f_' + name, None)
        if method is not None:
            return method(node, node.args)
        # a UDF: ours are created in the database under their ADQL names
        if not name.startswith('IVO_') or name not in ('IVO_HEALPIX_INDEX',
                                                      'IVO_HASHLIST_HAS'):
            self.warnings.append(f'{name.lower()}() is not a function of this service')
        return n.SqlFunc(name.lower(), node.args, pos=node.pos)

    def f_LOG(self, node, args):
        return _f('ln', *args)

    def f_LOG10(self, node, args):
        return _f('log', *args)

    def f_RAND(self, node, args):
        if args:
            self.warnings.append('RAND(seed): the seed is ignored')
        return _f('random')

    def _numeric(self, x):
        return n.Cast(x, 'NUMERIC')  # round/trunc to n digits need numeric in PostgreSQL

    def f_ROUND(self, node, args):
        if len(args) == 1:
            return _f('round', *args)
        return _f('round', self._numeric(args[0]), args[1])

    def f_TRUNCATE(self, node, args):
        if len(args) == 1:
            return _f('trunc', *args)
        return _f('trunc', self._numeric(args[0]), args[1])

    def f_MOD(self, node, args):
        return _f('mod', self._numeric(args[0]), self._numeric(args[1]))

    def f_IVO_STRING_AGG(self, node, args):
        return _f('string_agg', *args)

    def f_IVO_INTERVAL_OVERLAPS(self, node, args):
        lo1, hi1, lo2, hi2 = args
        test = n.BoolOp('AND', n.Comparison('<=', lo1, hi2), n.Comparison('<=', lo2, hi1))
        return n.Cast(n.Paren(test), 'INTEGER')

    def f_IVO_HEALPIX_INDEX(self, node, args):
        if len(args) == 2:  # (order, point)
            args = (args[0], self._coord(args[1], 'long'), self._coord(args[1], 'lat'))
        return _f('ivo_healpix_index', *args)

    def f_IN_UNIT(self, node, args):
        from .units import in_unit
        expr, target = args
        if not (isinstance(target, n.Literal) and target.kind == 'string'):
            raise ADQLTranslationError('the unit of IN_UNIT must be a string literal',
                                       node.pos)
        return in_unit(expr, target.text, self.warnings, node.pos)

    # -- geometry ------------------------------------------------------------
    def _frame(self, args):
        """Split off a coordinate-system argument, warning on ones we ignore."""
        if args and isinstance(args[0], n.Literal) and args[0].kind in ('string', 'null'):
            frame = args[0].text.strip().upper() if args[0].kind == 'string' else ''
            if frame.split(' ')[0] not in ICRS_LIKE:
                self.warnings.append(f'coordinate system {args[0].text!r} ignored: '
                                     'all positions are taken as ICRS')
            return args[1:]
        return args

    @staticmethod
    def _point(x, y):
        return _f('spoint', _f('radians', x), _f('radians', y))

    @staticmethod
    def _coord(point, which):
        return _f('degrees', _f(which, point))

    def f_POINT(self, node, args):
        return self._point(*self._frame(args))

    def f_CIRCLE(self, node, args):
        args = self._frame(args)
        center = args[0] if len(args) == 2 else self._point(args[0], args[1])
        return _f('scircle', center, _f('radians', args[-1]))

    def f_BOX(self, node, args):
        args = self._frame(args)
        if len(args) == 3:
            x, y = self._coord(args[0], 'long'), self._coord(args[0], 'lat')
        else:
            x, y = args[0], args[1]
        w, h = args[-2], args[-1]
        values = [number_value(v) for v in (x, y, w, h)]
        if None not in values:
            cx, cy, hw, hh = values[0], values[1], values[2] / 2, values[3] / 2
            return n.SqlRaw(polygon_literal([(cx - hw, cy - hh), (cx - hw, cy + hh),
                                             (cx + hw, cy + hh), (cx + hw, cy - hh)]))
        half_w = n.BinOp('/', n.Paren(w), n.Literal('number', '2'))
        half_h = n.BinOp('/', n.Paren(h), n.Literal('number', '2'))
        corners = [(n.BinOp(sx, n.Paren(x), half_w), n.BinOp(sy, n.Paren(y), half_h))
                   for sx, sy in (('-', '-'), ('-', '+'), ('+', '+'), ('+', '-'))]
        return _spoly([self._point(a, b) for a, b in corners])

    def f_POLYGON(self, node, args):
        args = self._frame(args)
        if all(_is_point(a) for a in args):
            return _spoly(list(args))
        values = [number_value(v) for v in args]
        if None not in values:
            return n.SqlRaw(polygon_literal(list(zip(values[::2], values[1::2]))))
        return _spoly([self._point(a, b) for a, b in zip(args[::2], args[1::2])])

    def f_REGION(self, node, args):
        (text,) = args
        if not (isinstance(text, n.Literal) and text.kind == 'string'):
            raise ADQLTranslationError('REGION() needs a string literal', node.pos)
        literal, frame = stcs_to_pgsphere(text.text)
        if frame not in (None, 'ICRS', 'J2000', 'UNKNOWNFRAME'):
            self.warnings.append(f'frame {frame} of REGION ignored: taken as ICRS')
        return n.SqlRaw(literal)

    def f_CENTROID(self, node, args):
        return _f('center', *args)

    def f_AREA(self, node, args):
        return _f('degrees', _f('degrees', _f('area', *args)))  # sr -> deg^2

    def f_COORD1(self, node, args):
        return self._coord(args[0], 'long')

    def f_COORD2(self, node, args):
        return self._coord(args[0], 'lat')

    def f_COORDSYS(self, node, args):
        return n.SqlRaw("'ICRS'")

    def f_DISTANCE(self, node, args):
        if len(args) == 4:
            args = (self._point(args[0], args[1]), self._point(args[2], args[3]))
        return _f('degrees', n.SqlOp('<->', args[0], args[1]))

    def f_CONTAINS(self, node, args):
        return _as_int_test('@', args[0], args[1])

    def f_INTERSECTS(self, node, args):
        # ADQL 2.1 section 4.2.11: with a point, INTERSECTS means CONTAINS
        if _is_point(args[1]):
            return _as_int_test('@', args[1], args[0])
        if _is_point(args[0]):
            return _as_int_test('@', args[0], args[1])
        return _as_int_test('&&', args[0], args[1])

    # -- casts -------------------------------------------------------------
    def m_Cast(self, node):
        if node.type_name not in ('POINT', 'CIRCLE', 'POLYGON'):
            return node
        if not (isinstance(node.expr, n.Literal) and node.expr.kind == 'string'):
            raise ADQLTranslationError(
                f'CAST to {node.type_name} is only supported for string literals', node.pos)
        try:
            nums = [float(v) for v in node.expr.text.split()]
        except ValueError:
            raise ADQLTranslationError(f'bad DALI {node.type_name.lower()} '
                                       f'{node.expr.text!r}', node.pos) from None
        shape = {'POINT': 'Position', 'CIRCLE': 'Circle', 'POLYGON': 'Polygon'}
        literal, _ = stcs_to_pgsphere(shape[node.type_name] + ' ' +
                                      ' '.join(map(repr, nums)))
        return n.SqlRaw(literal)


class _PointColumns:
    """The rewriting of `use_point_columns`, with the FROM sources of each SELECT.

    Only references that resolve in the SELECT's own FROM are rewritten (never
    correlated ones), and in a grouped SELECT only its WHERE and join conditions:
    ``GROUP BY ra, dec`` does not group by ``pos``.
    """

    def __init__(self, points):
        self.points = points

    def query(self, node):
        if isinstance(node, n.Select):
            return self.select(node)
        if isinstance(node, n.SetOp):
            return dataclasses.replace(node, left=self.query(node.left),
                                       right=self.query(node.right))
        if isinstance(node, n.ParenQuery):
            return dataclasses.replace(node, query=self.query(node.query))
        return node

    def select(self, sel):
        sources = []  # (names the source answers to, point columns or None)
        from_ = tuple(self.table(t, sources) for t in sel.from_)
        scope = sources if sources else None
        grouped = bool(sel.group_by) or sel.having is not None
        shown = None if grouped else scope  # select list, HAVING, ORDER BY
        where = None if sel.where is None else self.expr(sel.where, scope)
        if where is not None and scope is not None:
            where = add_healpix_ranges(sel.where, where,
                                       lambda point: self.healpix_column(point, scope))
        items = tuple(dataclasses.replace(i, expr=self.expr(i.expr, shown))
                      if isinstance(i, n.SelectItem) else i for i in sel.items)
        having = None if sel.having is None else self.expr(sel.having, shown)
        order_by = tuple(dataclasses.replace(o, expr=self.expr(o.expr, shown))
                         for o in sel.order_by)
        group_by = tuple(self.expr(g, None) for g in sel.group_by)
        return dataclasses.replace(sel, from_=from_, where=where, items=items, having=having,
                                   order_by=order_by, group_by=group_by)

    def table(self, node, sources):
        if isinstance(node, n.TableName):
            names = _source_names(node)
            sources.append((names, self.points.get('.'.join(p.key for p in node.parts))))
            return node
        if isinstance(node, n.DerivedTable):
            sources.append((frozenset({node.alias.key}), None))
            return dataclasses.replace(node, query=self.query(node.query))
        left = self.table(node.left, sources)
        right = self.table(node.right, sources)
        on = None if node.on is None else self.expr(node.on, sources)
        return dataclasses.replace(node, left=left, right=right, on=on)

    def expr(self, node, scope):
        if isinstance(node, (n.Subquery, n.Exists)):
            return dataclasses.replace(node, query=self.query(node.query))
        if isinstance(node, n.InQuery):
            return dataclasses.replace(node, expr=self.expr(node.expr, scope),
                                       query=self.query(node.query))
        if isinstance(node, n.FuncCall) and node.name == 'POINT' and scope is not None:
            column = self.point_column(node, scope)
            if column is not None:
                return column
        return n.map_children(node, lambda child: self.expr(child, scope))

    @classmethod
    def point_column(cls, node, scope):
        """``t.pos`` for POINT(frame, t.ra, t.dec) on a table storing it, else None."""
        found = cls.stored(node, scope)
        if found is None:
            return None
        qualifier, (_, _, pos, *_) = found
        return n.ColumnRef(qualifier + (n.Ident(pos),),
                           info=Column(pos, 'double', arraysize='2', xtype='point'), pos=node.pos)

    @classmethod
    def healpix_column(cls, node, scope):
        """SQL of ``t.healpix_nest`` for POINT(frame, t.ra, t.dec) of a table that has
        one, else None."""
        found = cls.stored(node, scope)
        if found is None or len(found[1]) < 4 or found[1][3] is None:
            return None
        return column_sql(found[0], found[1][3])

    @staticmethod
    def stored(node, scope):
        """(qualifier, stored-point tuple) of POINT(frame, t.ra, t.dec), else None."""
        args = drop_icrs_frame(node.args)
        if args is None:
            return None  # another frame: keep the warning about it
        if len(args) != 2 or not all(isinstance(a, n.ColumnRef) for a in args):
            return None
        x, y = args
        qualifier = x.parts[:-1]
        if [p.key for p in y.parts[:-1]] != [p.key for p in qualifier]:
            return None
        if qualifier:
            wanted = '.'.join(p.key for p in qualifier)
            hits = [point for names, point in scope if wanted in names]
        else:
            hits = [point for _, point in scope]  # unqualified: one source only
        if len(hits) != 1 or hits[0] is None:
            return None
        if (x.parts[-1].key, y.parts[-1].key) != hits[0][:2]:
            return None
        return qualifier, hits[0]


def _source_names(node):
    # How a FROM table can be named (as vo.adql.annotate resolves qualifiers).
    if node.alias is not None:
        return frozenset({node.alias.key})
    keys = [p.key for p in node.parts]
    return frozenset('.'.join(keys[i:]) for i in range(len(keys)))


def use_point_columns(tree, points):
    """Write ``POINT(frame, t.ra, t.dec)`` as ``t.pos`` where the table stores that point.

    Parameters
    ----------
    tree : vo.adql.nodes.Statement
        A parsed (and annotated: table names qualified) ADQL tree.
    points : dict
        Lower-case qualified table name to ``(ra, dec, pos)`` or ``(ra, dec, pos,
        healpix)``: the names of the columns of a table whose column ``pos`` is
        ``spoint(radians(ra), radians(dec))`` and ``healpix`` (when not None) its
        order-29 NESTED HEALPix index, both computed by PostgreSQL. Constant
        cones on such a table also get a condition on ``healpix``
        (`vo.adql.prefilter`).

    Returns
    -------
    vo.adql.nodes.Statement
        The tree, unchanged where the point is not certainly the stored one
        (other frames, expressions, correlated references, ambiguous names).
    """
    if not points:
        return tree
    rewriter = _PointColumns(points)
    ctes = tuple(dataclasses.replace(c, query=rewriter.query(c.query)) for c in tree.ctes)
    return dataclasses.replace(tree, ctes=ctes, query=rewriter.query(tree.query))


def morph(tree, maxrec=None):
    """Turn an (annotated) ADQL tree into a PostgreSQL/pg_sphere tree.

    Parameters
    ----------
    tree : vo.adql.nodes.Statement
        Output of `vo.adql.tree.parse` (optionally annotated).
    maxrec : int, optional
        The service's row limit (see `Morpher`).

    Returns
    -------
    tuple of (vo.adql.nodes.Statement, list of str)
        The morphed tree and the warnings collected.

    Raises
    ------
    ADQLTranslationError
        For valid ADQL this service cannot express in SQL.
    """
    morpher = Morpher(maxrec)
    new = n.transform(tree, morpher)
    top_level = new.query
    while isinstance(top_level, n.ParenQuery):  # outer parentheses mean nothing
        top_level = top_level.query
    if maxrec is not None:
        limit = maxrec + 1 if top_level.limit is None else min(top_level.limit, maxrec + 1)
        top_level = dataclasses.replace(top_level, limit=limit)
    new = dataclasses.replace(new, query=top_level)
    return new, morpher.warnings
