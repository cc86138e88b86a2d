"""Rules of ADQL 2.1 that the untyped grammar does not enforce (end of pass 2).

Reserved words as regular identifiers, name depths, function names and
arities, the shapes of geometry constructors and the coarse typing that the
ADQL BNF builds into its productions (conditions must be predicates, geometries
do not take part in arithmetic or concatenation).
"""
from . import nodes as n
from .exceptions import ADQLSyntaxError
from .functions import lookup

__all__ = ['RESERVED', 'check', 'kind_of']

_ADQL_WORDS = """ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS
COORD1 COORD2 COORDSYS COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG
LOG10 LOWER MOD OFFSET PI POINT POLYGON POWER RADIANS REGION RAND ROUND SIN SQRT TAN TOP
TRUNCATE UPPER"""
# SQL-92 reserved words, without DEC: every ADQL service (and the IVOA test
# queries) accepts `dec` as a column name.
_SQL92_WORDS = """ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT
AUTHORIZATION AVG BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG
CHAR CHARACTER CHARACTER_LENGTH CHAR_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN
COMMIT CONNECT CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT
CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE
DAY DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR
DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END ESCAPE EXCEPT EXCEPTION EXEC
EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET
GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER
INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE
LAST LEADING LEFT LEVEL LIKE LOCAL MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL
NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER
OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR
PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK
ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE
SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP
TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION
UNIQUE UNKNOWN UPDATE USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER
WHERE WITH WORK WRITE YEAR ZONE"""
RESERVED = frozenset((_ADQL_WORDS + ' ' + _SQL92_WORDS).split())

_CAST_TYPES = {'SMALLINT', 'INTEGER', 'BIGINT', 'REAL', 'DOUBLE PRECISION', 'CHAR',
               'VARCHAR', 'TIMESTAMP', 'POINT', 'CIRCLE', 'POLYGON'}


def _fail(message, node):
    raise ADQLSyntaxError(message, getattr(node, 'pos', None))


def _check_name(ident):
    if not ident.delimited and ident.name.upper() in RESERVED:
        _fail(f'{ident.name!r} is a reserved word; write it as a delimited '
              f'identifier ("{ident.name}") to use it as a name', ident)


def _is_cs(node):
    """A coordinate-system argument: a string literal or NULL."""
    return isinstance(node, n.Literal) and node.kind in ('string', 'null')


def _check_geometry(call, kinds):
    name, args = call.name, call.args
    nargs = len(args)
    has_cs = nargs > 0 and _is_cs(args[0])
    rest = kinds[1:] if has_cs else kinds
    if name == 'POINT':
        ok = len(rest) == 2 and (nargs == 2 or has_cs or kinds[0] in ('str', 'any'))
    elif name == 'CIRCLE':
        ok = (len(rest) == 2 and rest[0] in ('geom', 'any')) or len(rest) == 3
    elif name == 'BOX':
        ok = (len(rest) == 3 and rest[0] in ('geom', 'any')) or len(rest) == 4
    elif name == 'POLYGON':
        if all(k == 'geom' for k in rest):
            ok = len(rest) >= 3
        else:
            ok = len(rest) >= 6 and len(rest) % 2 == 0
    elif name == 'REGION':
        ok = kinds[0] in ('str', 'any')
    else:
        ok = True
    if not ok:
        _fail(f'wrong arguments for {name}()', call)


def _check_call(call, kinds):
    spec = lookup(call.name)
    if spec is None:
        _fail(f'unknown function {call.name}(): neither ADQL 2.1 nor a user-defined '
              'function of this service', call)
    lo, hi, result, _ = spec
    nargs = 1 if call.star else len(call.args)
    if call.star and call.name != 'COUNT':
        _fail(f'{call.name}(*) is not allowed; only COUNT(*)', call)
    if nargs < lo or (hi is not None and nargs > hi) or (call.name == 'DISTANCE' and nargs == 3):
        _fail(f'{call.name}() takes {lo}' + ('' if hi == lo else f' to {hi or "any number"}')
              + f' arguments, not {nargs}', call)
    for arg, kind in zip(call.args, kinds):
        if kind == 'bool':
            _fail(f'a condition cannot be an argument of {call.name}()', arg)
    if call.name in ('POINT', 'CIRCLE', 'BOX', 'POLYGON', 'REGION'):
        _check_geometry(call, kinds)
    return result


class _Checker:
    """Walks the tree once, computing the coarse kind of each expression."""

    def query(self, node):
        if isinstance(node, n.Statement):
            for cte in node.ctes:
                _check_name(cte.name)
                self.query(cte.query)
            self.query(node.query)
        elif isinstance(node, n.SetOp):
            self.query(node.left)
            self.query(node.right)
        elif isinstance(node, n.ParenQuery):
            self.query(node.query)
        elif isinstance(node, n.Select):
            self.select(node)

    def select(self, sel):
        for item in sel.items:
            if isinstance(item, n.QualifiedStar):
                self.names(item.parts, 3, item)
            elif isinstance(item, n.SelectItem):
                self.value(item.expr)
                if item.alias is not None:
                    _check_name(item.alias)
        for table in sel.from_:
            self.table(table)
        for cond in (sel.where, sel.having):
            if cond is not None:
                self.condition(cond)
        for expr in sel.group_by:
            self.value(expr)
        for item in sel.order_by:
            self.value(item.expr)

    def names(self, parts, depth, node):
        if len(parts) > depth:
            _fail(f'too many parts in the name {".".join(p.name for p in parts)}', node)
        for p in parts:
            _check_name(p)

    def table(self, node):
        if isinstance(node, n.TableName):
            self.names(node.parts, 3, node)
            if node.alias is not None:
                _check_name(node.alias)
        elif isinstance(node, n.DerivedTable):
            _check_name(node.alias)
            self.query(node.query)
        elif isinstance(node, n.Join):
            self.table(node.left)
            self.table(node.right)
            if node.on is not None:
                self.condition(node.on)
            for col in node.using:
                _check_name(col)

    def condition(self, node):
        if self.kind(node) != 'bool':
            _fail('a condition (a comparison or predicate) is needed here', node)

    def value(self, node):
        kind = self.kind(node)
        if kind == 'bool':
            _fail('a condition cannot be used as a value here', node)
        return kind

    def kind(self, node):  # noqa: C901 (a dispatch on node type)
        if isinstance(node, n.Literal):
            return {'number': 'num', 'hex': 'num', 'string': 'str'}.get(node.kind, 'any')
        if isinstance(node, n.ColumnRef):
            self.names(node.parts, 4, node)
            return 'any'
        if isinstance(node, n.Paren):
            return self.kind(node.expr)
        if isinstance(node, (n.BoolOp, n.Not)):
            for child in n.children(node):
                self.condition(child)
            return 'bool'
        if isinstance(node, n.Comparison):
            self.value(node.left)
            self.value(node.right)
            return 'bool'
        if isinstance(node, (n.Between, n.InList, n.Like, n.IsNull)):
            for child in n.children(node):
                if isinstance(child, n.Node):
                    self.value(child)
            return 'bool'
        if isinstance(node, n.InQuery):
            self.value(node.expr)
            self.query(node.query)
            return 'bool'
        if isinstance(node, n.Exists):
            self.query(node.query)
            return 'bool'
        if isinstance(node, n.Subquery):
            self.query(node.query)
            return 'any'
        if isinstance(node, n.BinOp):
            kinds = (self.value(node.left), self.value(node.right))
            if 'geom' in kinds:
                _fail(f'geometries cannot be operands of {node.op}', node)
            if node.op == '||':
                return 'str'
            return 'num'
        if isinstance(node, n.Unary):
            if self.value(node.operand) == 'geom':
                _fail(f'a geometry cannot be an operand of {node.op}', node)
            return 'num'
        if isinstance(node, n.FuncCall):
            kinds = [self.value(a) for a in node.args]
            return _check_call(node, kinds)
        if isinstance(node, n.Case):
            if node.operand is not None:
                self.value(node.operand)
            for when in node.whens:
                if node.operand is None:
                    self.condition(when.condition)
                else:
                    self.value(when.condition)
                self.value(when.result)
            if node.else_ is not None:
                self.value(node.else_)
            return 'any'
        if isinstance(node, n.Cast):
            self.value(node.expr)
            if node.type_name not in _CAST_TYPES or (
                    node.length is not None and node.type_name not in ('CHAR', 'VARCHAR')):
                _fail(f'cannot CAST to {node.type_name}; ADQL 2.1 types are '
                      + ', '.join(sorted(_CAST_TYPES)), node)
            return 'geom' if node.type_name in ('POINT', 'CIRCLE', 'POLYGON') else 'any'
        raise TypeError(f'unexpected node {type(node).__name__}')  # a bug, not user error


def kind_of(expr):
    """Coarse kind of an expression: 'bool', 'num', 'str', 'geom' or 'any'.

    Parameters
    ----------
    expr : vo.adql.nodes.Node
        An expression node of a parsed query.

    Returns
    -------
    str
    """
    return _Checker().kind(expr)


def check(tree):
    """Enforce the ADQL rules the grammar leaves open.

    Parameters
    ----------
    tree : vo.adql.nodes.Statement
        A freshly parsed tree.

    Raises
    ------
    ADQLSyntaxError
        On the first violation, with its position.
    """
    _Checker().query(tree)
