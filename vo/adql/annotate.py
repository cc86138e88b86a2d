"""Name resolution against table metadata (pass 3 of 5).

Every table and column reference is resolved (correlated subqueries see the
enclosing scopes), ColumnRefs get their `Column` as ``info``, functions that
this service does not implement are rejected, and the output columns of the
query are described.
"""
import dataclasses

from . import nodes as n
from .check import kind_of
from .exceptions import ADQLNameError
from .functions import lookup
from .metadata import Column

__all__ = ['annotate']

_KIND_TYPES = {'num': 'double', 'str': 'char', 'bool': 'boolean', 'any': 'char'}
_GEOM_XTYPES = {'POINT': 'point', 'CIRCLE': 'circle', 'POLYGON': 'polygon',
                'BOX': 'polygon', 'REGION': 'region', 'CENTROID': 'point'}


@dataclasses.dataclass
class _Source:
    names: frozenset      # how the FROM item can be named: alias, table, schema.table
    columns: tuple        # of Column
    merged: frozenset = frozenset()  # USING/NATURAL columns: not ambiguous


class _Scope:
    def __init__(self, parent=None, ctes=None):
        self.parent = parent
        self.ctes = dict(ctes or (parent.ctes if parent else {}))
        self.sources = []
        self.aliases = set()

    def resolve(self, ref):
        qual = '.'.join(p.key for p in ref.parts[:-1])
        key = ref.parts[-1].key
        scope = self
        while scope is not None:
            hits = []
            for src in scope.sources:
                if qual and qual not in src.names:
                    continue
                col = _find(src.columns, key)
                if col is not None:
                    hits.append((src, col))
            if len(hits) > 1 and not all(key in s.merged for s, _ in hits):
                raise ADQLNameError(f'column {_show(ref)} is ambiguous: qualify it with '
                                    'its table name', ref.pos)
            if hits:
                return hits[0][1]
            scope = scope.parent
        if not qual and key in self.aliases:
            return None  # a select-list alias, used in ORDER BY or GROUP BY
        if qual and not any(qual in s.names for sc in self._chain() for s in sc.sources):
            raise ADQLNameError(f'no table {qual!r} in FROM for column {_show(ref)}', ref.pos)
        raise ADQLNameError(f'unknown column {_show(ref)}', ref.pos)

    def _chain(self):
        scope = self
        while scope is not None:
            yield scope
            scope = scope.parent


def _show(ref):
    return '.'.join(p.name for p in ref.parts)


def _find(columns, key):
    for col in columns:
        if col.name == key or col.name.lower() == key:
            return col
    return None


def _names_for(parts, alias):
    if alias is not None:
        return frozenset({alias.key})
    keys = [p.key for p in parts]
    return frozenset('.'.join(keys[i:]) for i in range(len(keys)))


class _Annotator:
    def __init__(self, metadata):
        self.metadata = metadata

    # -- queries ---------------------------------------------------------
    def statement(self, node):
        ctes = {}
        new_ctes = []
        for cte in node.ctes:
            scope = _Scope(ctes=ctes)
            query, cols = self.query(cte.query, scope)
            if cte.columns:
                cols = [dataclasses.replace(c, name=i.key) for c, i in zip(cols, cte.columns)]
            ctes[cte.name.key] = tuple(cols)
            new_ctes.append(dataclasses.replace(cte, query=query))
        query, cols = self.query(node.query, _Scope(ctes=ctes))
        return dataclasses.replace(node, ctes=tuple(new_ctes), query=query), cols

    def query(self, node, scope):
        if isinstance(node, n.SetOp):
            left, cols = self.query(node.left, _Scope(scope.parent, scope.ctes))
            right, _ = self.query(node.right, _Scope(scope.parent, scope.ctes))
            return dataclasses.replace(node, left=left, right=right), cols
        if isinstance(node, n.ParenQuery):
            inner, cols = self.query(node.query, scope)
            return dataclasses.replace(node, query=inner), cols
        return self.select(node, scope)

    def select(self, sel, scope):
        from_ = tuple(self.table(t, scope) for t in sel.from_)
        for item in sel.items:
            if isinstance(item, n.SelectItem) and item.alias is not None:
                scope.aliases.add(item.alias.key)
        items, columns = [], []
        for i, item in enumerate(sel.items):
            if isinstance(item, n.Star):
                for src in scope.sources:
                    columns.extend(src.columns)
                items.append(item)
            elif isinstance(item, n.QualifiedStar):
                qual = '.'.join(p.key for p in item.parts)
                srcs = [s for s in scope.sources if qual in s.names]
                if not srcs:
                    raise ADQLNameError(f'no table {qual!r} in FROM', item.pos)
                columns.extend(srcs[0].columns)
                items.append(item)
            else:
                expr = self.expr(item.expr, scope)
                columns.append(_describe(expr, item.alias, i))
                items.append(dataclasses.replace(item, expr=expr))
        ex = lambda e: None if e is None else self.expr(e, scope)  # noqa: E731
        new = dataclasses.replace(
            sel, items=tuple(items), from_=from_, where=ex(sel.where),
            group_by=tuple(ex(g) for g in sel.group_by), having=ex(sel.having),
            order_by=tuple(dataclasses.replace(o, expr=ex(o.expr)) for o in sel.order_by))
        return new, columns

    def table(self, node, scope):
        if isinstance(node, n.TableName):
            keys = [p.key for p in node.parts]
            names = _names_for(node.parts, node.alias)
            if len(keys) == 1 and keys[0] in scope.ctes:
                columns = scope.ctes[keys[0]]
            else:
                found = self.metadata.find(keys)
                if not found:
                    raise ADQLNameError(f'unknown table {".".join(p.name for p in node.parts)}',
                                        node.pos)
                if len(found) > 1:
                    raise ADQLNameError(f'table name {keys[-1]} is ambiguous: add its schema',
                                        node.pos)
                columns = found[0].columns
                # write the qualified name: the schema need not be on the search path
                parts = tuple(n.Ident(k) for k in found[0].name.lower().split('.'))
                if node.alias is None:
                    names = names | _names_for(parts, None)
                node = dataclasses.replace(node, parts=parts)
            scope.sources.append(_Source(names, tuple(columns)))
            return node
        if isinstance(node, n.DerivedTable):
            query, cols = self.query(node.query, _Scope(None, scope.ctes))
            scope.sources.append(_Source(frozenset({node.alias.key}), tuple(cols)))
            return dataclasses.replace(node, query=query)
        # a join: both sides in the same scope, then the condition
        left = self.table(node.left, scope)
        right = self.table(node.right, scope)
        merged = {u.key for u in node.using}
        if node.natural:
            lcols = {c.name.lower() for c in scope.sources[-2].columns}
            merged |= {c.name.lower() for c in scope.sources[-1].columns} & lcols
        for src in scope.sources:
            src.merged = src.merged | frozenset(merged)
        on = self.expr(node.on, scope) if node.on is not None else None
        return dataclasses.replace(node, left=left, right=right, on=on)

    # -- expressions -----------------------------------------------------
    def expr(self, node, scope):
        if isinstance(node, n.ColumnRef):
            return dataclasses.replace(node, info=scope.resolve(node))
        if isinstance(node, (n.Subquery, n.Exists)):
            query, _ = self.query(node.query, _Scope(scope))
            return dataclasses.replace(node, query=query)
        if isinstance(node, n.InQuery):
            query, _ = self.query(node.query, _Scope(scope))
            return dataclasses.replace(node, expr=self.expr(node.expr, scope), query=query)
        if isinstance(node, n.FuncCall) and lookup(node.name)[3] == 'foreign':
            raise ADQLNameError(f'function {node.name.lower()}() is not available on '
                                'this service', node.pos)
        return n.map_children(node, lambda child: self.expr(child, scope))


def _describe(expr, alias, index):
    """Output column for one select-list expression."""
    inner = expr
    while isinstance(inner, n.Paren):
        inner = inner.expr
    if isinstance(inner, n.ColumnRef) and inner.info is not None:
        col = inner.info
        return col if alias is None else dataclasses.replace(col, name=alias.key)
    if alias is not None:
        name = alias.key
    elif isinstance(inner, n.FuncCall):
        name = inner.name.lower()
    else:
        name = f'col{index + 1}'
    if isinstance(inner, n.FuncCall) and inner.name in _GEOM_XTYPES:
        return Column(name, 'char', xtype=_GEOM_XTYPES[inner.name])
    if isinstance(inner, n.FuncCall) and inner.name == 'IN_UNIT':
        return Column(name, 'double', unit=getattr(inner.args[1], 'text', ''))
    if isinstance(inner, n.FuncCall) and inner.name == 'COUNT':
        return Column(name, 'long')
    if isinstance(inner, n.FuncCall) and inner.name in ('MIN', 'MAX', 'AVG', 'SUM') \
            and isinstance(inner.args[0], n.ColumnRef) and inner.args[0].info is not None:
        col = inner.args[0].info
        return Column(name, col.datatype if inner.name in ('MIN', 'MAX') else 'double',
                      unit=col.unit, ucd=col.ucd)
    return Column(name, _KIND_TYPES.get(kind_of(inner), 'char'))


def annotate(tree, metadata):
    """Resolve all names of a parsed query against `metadata`.

    Parameters
    ----------
    tree : vo.adql.nodes.Statement
        Output of `vo.adql.tree.parse`.
    metadata : vo.adql.metadata.Metadata
        The tables the query may use.

    Returns
    -------
    tuple of (vo.adql.nodes.Statement, list of vo.adql.metadata.Column)
        The tree with ColumnRef.info filled, and the output columns in order.

    Raises
    ------
    ADQLNameError
        For unknown tables, unknown or ambiguous columns and functions this
        service does not implement.
    """
    return _Annotator(metadata).statement(tree)
