"""Node classes of the ADQL tree (pass 2 of 5).

Nodes are frozen dataclasses.  Children are nodes or tuples of nodes; `pos`
((line, column) in the ADQL text) and `info` (metadata attached by
`vo.adql.annotate`) never take part in comparisons.  Nodes whose names start
with ``Sql`` only appear after morphing: they are PostgreSQL constructs.
"""
import dataclasses
from dataclasses import dataclass, field

__all__ = [
    'Node', 'Ident', 'Statement', 'CTE', 'SetOp', 'ParenQuery', 'Select', 'Star',
    'QualifiedStar', 'SelectItem', 'TableName', 'DerivedTable', 'Join',
    'ColumnRef', 'Literal', 'BinOp', 'Unary', 'Paren', 'Comparison', 'BoolOp',
    'Not', 'Between', 'InList', 'InQuery', 'Like', 'IsNull', 'Exists',
    'Subquery', 'FuncCall', 'When', 'Case', 'Cast', 'OrderItem', 'SqlFunc',
    'SqlOp', 'SqlRaw', 'children', 'transform', 'walk']


def _pos():
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    """Base class of all nodes."""


@dataclass(frozen=True)
class Ident(Node):
    """An identifier; `delimited` ones keep their case and are quoted in SQL."""
    name: str
    delimited: bool = False
    pos: tuple = _pos()

    @property
    def key(self):
        """str: the name as compared (lower case unless delimited)."""
        return self.name if self.delimited else self.name.lower()


@dataclass(frozen=True)
class Statement(Node):
    ctes: tuple
    query: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class CTE(Node):
    name: Ident
    columns: tuple
    query: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class SetOp(Node):
    op: str            # UNION, EXCEPT, INTERSECT
    all: bool
    left: Node
    right: Node
    order_by: tuple = ()
    offset: int = None
    limit: int = None
    pos: tuple = _pos()


@dataclass(frozen=True)
class ParenQuery(Node):
    query: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Select(Node):
    quantifier: str    # None, 'DISTINCT' or 'ALL'
    top: int
    items: tuple
    from_: tuple
    where: Node = None
    group_by: tuple = ()
    having: Node = None
    order_by: tuple = ()
    offset: int = None
    limit: int = None  # set by morphing (TOP, maxrec)
    pos: tuple = _pos()


@dataclass(frozen=True)
class Star(Node):
    pos: tuple = _pos()


@dataclass(frozen=True)
class QualifiedStar(Node):
    parts: tuple       # of Ident: the table name
    pos: tuple = _pos()


@dataclass(frozen=True)
class SelectItem(Node):
    expr: Node
    alias: Ident = None
    pos: tuple = _pos()


@dataclass(frozen=True)
class TableName(Node):
    parts: tuple       # of Ident: [catalog.][schema.]table
    alias: Ident = None
    pos: tuple = _pos()


@dataclass(frozen=True)
class DerivedTable(Node):
    query: Node
    alias: Ident
    pos: tuple = _pos()


@dataclass(frozen=True)
class Join(Node):
    kind: str          # INNER, LEFT, RIGHT, FULL, CROSS
    natural: bool
    left: Node
    right: Node
    on: Node = None
    using: tuple = ()
    explicit_kind: bool = False
    pos: tuple = _pos()


@dataclass(frozen=True)
class ColumnRef(Node):
    parts: tuple       # of Ident: [[[catalog.]schema.]table.]column
    info: object = field(default=None, compare=False, repr=False)
    pos: tuple = _pos()


@dataclass(frozen=True)
class Literal(Node):
    kind: str          # number, hex, string, null
    text: str          # as written (strings without their quotes, unescaped)
    pos: tuple = _pos()


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Paren(Node):
    expr: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Comparison(Node):
    op: str
    left: Node
    right: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class BoolOp(Node):
    op: str            # AND, OR
    left: Node
    right: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Not(Node):
    expr: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Between(Node):
    expr: Node
    low: Node
    high: Node
    negated: bool = False
    pos: tuple = _pos()


@dataclass(frozen=True)
class InList(Node):
    expr: Node
    items: tuple
    negated: bool = False
    pos: tuple = _pos()


@dataclass(frozen=True)
class InQuery(Node):
    expr: Node
    query: Node
    negated: bool = False
    pos: tuple = _pos()


@dataclass(frozen=True)
class Like(Node):
    expr: Node
    pattern: Node
    negated: bool = False
    op: str = 'LIKE'   # or ILIKE
    pos: tuple = _pos()


@dataclass(frozen=True)
class IsNull(Node):
    expr: Node
    negated: bool = False
    pos: tuple = _pos()


@dataclass(frozen=True)
class Exists(Node):
    query: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Subquery(Node):
    query: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class FuncCall(Node):
    name: str          # upper case for regular names
    args: tuple = ()
    quantifier: str = None  # DISTINCT/ALL inside an aggregate
    star: bool = False      # COUNT(*)
    pos: tuple = _pos()


@dataclass(frozen=True)
class When(Node):
    condition: Node
    result: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class Case(Node):
    operand: Node
    whens: tuple
    else_: Node = None
    pos: tuple = _pos()


@dataclass(frozen=True)
class Cast(Node):
    expr: Node
    type_name: str     # an ADQL 2.1 type, upper case (or a pg_sphere type after morphing)
    length: int = None
    pos: tuple = _pos()


@dataclass(frozen=True)
class OrderItem(Node):
    expr: Node
    direction: str = None  # ASC, DESC
    pos: tuple = _pos()


@dataclass(frozen=True)
class SqlFunc(Node):
    """A PostgreSQL function call, written exactly as named."""
    name: str
    args: tuple = ()
    pos: tuple = _pos()


@dataclass(frozen=True)
class SqlOp(Node):
    """A PostgreSQL infix operator; flattened inside parentheses."""
    op: str
    left: Node
    right: Node
    pos: tuple = _pos()


@dataclass(frozen=True)
class SqlRaw(Node):
    """SQL text produced by the translator itself (never user text)."""
    text: str
    pos: tuple = _pos()


def children(node):
    """Yield the direct child nodes of `node` (looking into tuples)."""
    for f in dataclasses.fields(node):
        if f.name in ('pos', 'info'):
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Node))


def walk(node):
    """Yield `node` and all its descendants, depth first, parents first."""
    yield node
    for child in children(node):
        yield from walk(child)


def map_children(node, fn):
    """`node` with ``fn(child)`` in place of each direct child (looking into tuples).

    Returns `node` itself when no child changed.
    """
    changes = {}
    for f in dataclasses.fields(node):
        if f.name in ('pos', 'info'):
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node):
            new = fn(value)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Node) for v in value):
            new = tuple(fn(v) if isinstance(v, Node) else v for v in value)
            if any(a is not b for a, b in zip(new, value)):
                changes[f.name] = new
    return dataclasses.replace(node, **changes) if changes else node


def transform(node, fn):
    """Rebuild a tree bottom-up.

    Parameters
    ----------
    node : Node
        The root.
    fn : callable
        Called as ``fn(node)`` on every node after its children were
        transformed; returns the replacement node (or the node itself).

    Returns
    -------
    Node
        The new root.
    """
    return fn(map_children(node, lambda child: transform(child, fn)))
