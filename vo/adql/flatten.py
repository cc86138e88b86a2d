"""Write a morphed node tree as PostgreSQL text (pass 5 of 5)."""
from . import nodes as n

__all__ = ['flatten', 'quote_ident', 'PG_KEYWORDS']

# PostgreSQL 15 keywords that cannot be bare column names or need quoting in
# some positions (pg_get_keywords() categories R, C and T); quoting a lower-case
# name never changes its meaning, so we quote all of them.
PG_KEYWORDS = frozenset("""
all analyse analyze and any array as asc asymmetric authorization between bigint binary
bit boolean both case cast char character check coalesce collate collation column
concurrently constraint create cross current_catalog current_date current_role
current_schema current_time current_timestamp current_user dec decimal default deferrable
desc distinct do else end except exists extract false fetch float for foreign freeze from
full grant greatest group grouping having ilike in initially inner inout int integer
intersect interval into is isnull join json_array json_arrayagg json_object
json_objectagg lateral leading least left like limit localtime localtimestamp national
natural nchar none normalize not notnull null nullif numeric offset on only or order
outer out overlaps overlay placing position precision primary real references returning
right row select session_user setof similar smallint some substring symmetric
system_user table tablesample then time timestamp to trailing treat trim true union
unique user using values varchar variadic verbose when where window with xmlattributes
xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot
xmlserialize xmltable""".split())

# PostgreSQL binding strength of the binary operators we emit (higher binds tighter).
_PRECEDENCE = {'*': 3, '/': 3, '%': 3, '+': 2, '-': 2}


def quote_ident(ident):
    """SQL for one identifier.

    Parameters
    ----------
    ident : vo.adql.nodes.Ident
        Regular identifiers come out in lower case (quoted only where they are
        PostgreSQL keywords); delimited ones keep their case and quotes.

    Returns
    -------
    str
    """
    name = ident.key
    if ident.delimited or name in PG_KEYWORDS:
        return '"' + name.replace('"', '""') + '"'
    return name


def _name(parts):
    return '.'.join(quote_ident(p) for p in parts)


class _Writer:
    def __call__(self, node):
        return getattr(self, type(node).__name__)(node)

    def Statement(self, node):
        text = self(node.query)
        if node.ctes:
            text = 'WITH ' + ', '.join(self(c) for c in node.ctes) + ' ' + text
        return text

    def CTE(self, node):
        cols = ' (' + ', '.join(map(quote_ident, node.columns)) + ')' if node.columns else ''
        return f'{quote_ident(node.name)}{cols} AS ({self(node.query)})'

    def _tail(self, node):
        text = ''
        if node.order_by:
            text += ' ORDER BY ' + ', '.join(self(o) for o in node.order_by)
        if node.limit is not None:
            text += f' LIMIT {node.limit}'
        if node.offset is not None:
            text += f' OFFSET {node.offset}'
        return text

    def _operand(self, node):
        return self(node) if isinstance(node, n.ParenQuery) else f'({self(node)})'

    def SetOp(self, node):
        op = node.op + (' ALL' if node.all else '')
        return f'{self._operand(node.left)} {op} {self._operand(node.right)}' + self._tail(node)

    def ParenQuery(self, node):
        return f'({self(node.query)})'

    def Select(self, node):
        text = 'SELECT '
        if node.quantifier == 'DISTINCT':
            text += 'DISTINCT '
        text += ', '.join(self(i) for i in node.items)
        text += ' FROM ' + ', '.join(self(t) for t in node.from_)
        if node.where is not None:
            text += ' WHERE ' + self(node.where)
        if node.group_by:
            text += ' GROUP BY ' + ', '.join(self(g) for g in node.group_by)
        if node.having is not None:
            text += ' HAVING ' + self(node.having)
        return text + self._tail(node)

    def Star(self, node):
        return '*'

    def QualifiedStar(self, node):
        return _name(node.parts) + '.*'

    def SelectItem(self, node):
        text = self(node.expr)
        return text + ' AS ' + quote_ident(node.alias) if node.alias is not None else text

    def TableName(self, node):
        text = _name(node.parts)
        return text + ' AS ' + quote_ident(node.alias) if node.alias is not None else text

    def DerivedTable(self, node):
        return f'({self(node.query)}) AS {quote_ident(node.alias)}'

    def Join(self, node):
        right = self(node.right)
        if isinstance(node.right, n.Join):
            right = f'({right})'
        if node.kind == 'CROSS' or (node.kind == 'INNER' and not node.natural
                                    and node.on is None and not node.using):
            return f'{self(node.left)} CROSS JOIN {right}'
        kind = {'INNER': 'INNER', 'LEFT': 'LEFT OUTER', 'RIGHT': 'RIGHT OUTER',
                'FULL': 'FULL OUTER'}[node.kind]
        text = f'{self(node.left)} {"NATURAL " if node.natural else ""}{kind} JOIN {right}'
        if node.on is not None:
            text += ' ON ' + self(node.on)
        elif node.using:
            text += ' USING (' + ', '.join(map(quote_ident, node.using)) + ')'
        elif not node.natural:
            text += ' ON TRUE'  # ADQL allows an outer join without condition; SQL does not
        return text

    def ColumnRef(self, node):
        return _name(node.parts)

    def Literal(self, node):
        if node.kind == 'string':
            return "'" + node.text.replace("'", "''") + "'"
        if node.kind == 'hex':
            return str(int(node.text, 16))  # PostgreSQL 15 has no hex literals
        return node.text

    def _operand_of(self, child, parent_op, right):
        text = self(child)
        if isinstance(child, n.BinOp):
            mine = _PRECEDENCE.get(parent_op, 1)
            theirs = _PRECEDENCE.get(child.op, 1)
            if theirs < mine or (right and theirs == mine) or (theirs == mine == 1
                                                                and child.op != parent_op):
                text = f'({text})'
        return text

    def BinOp(self, node):
        op = {'^': '#'}.get(node.op, node.op)  # ADQL xor is # in PostgreSQL
        return (f'{self._operand_of(node.left, op, False)} {op} '
                f'{self._operand_of(node.right, op, True)}')

    def Unary(self, node):
        inner = self(node.operand)
        if not isinstance(node.operand, (n.Literal, n.ColumnRef, n.FuncCall, n.SqlFunc,
                                         n.Paren)) or inner.startswith(('-', '+')):
            inner = f'({inner})'  # also keeps "- -1" from becoming a "--" comment
        return node.op + inner

    def Paren(self, node):
        return f'({self(node.expr)})'

    def Comparison(self, node):
        return f'{self(node.left)} {node.op} {self(node.right)}'

    def BoolOp(self, node):
        return f'{self(node.left)} {node.op} {self(node.right)}'

    def Not(self, node):
        return f'NOT {self(node.expr)}'

    def Between(self, node):
        neg = 'NOT ' if node.negated else ''
        return f'{self(node.expr)} {neg}BETWEEN {self(node.low)} AND {self(node.high)}'

    def InList(self, node):
        neg = 'NOT ' if node.negated else ''
        return f'{self(node.expr)} {neg}IN (' + ', '.join(self(i) for i in node.items) + ')'

    def InQuery(self, node):
        neg = 'NOT ' if node.negated else ''
        return f'{self(node.expr)} {neg}IN ({self(node.query)})'

    def Like(self, node):
        neg = 'NOT ' if node.negated else ''
        return f'{self(node.expr)} {neg}{node.op} {self(node.pattern)}'

    def IsNull(self, node):
        return f'{self(node.expr)} IS {"NOT " if node.negated else ""}NULL'

    def Exists(self, node):
        return f'EXISTS ({self(node.query)})'

    def Subquery(self, node):
        return f'({self(node.query)})'

    def FuncCall(self, node):
        if node.star:
            return f'{node.name.lower()}(*)'
        quant = node.quantifier + ' ' if node.quantifier else ''
        return f'{node.name.lower()}({quant}' + ', '.join(self(a) for a in node.args) + ')'

    def Case(self, node):
        text = 'CASE'
        if node.operand is not None:
            text += ' ' + self(node.operand)
        for w in node.whens:
            text += f' WHEN {self(w.condition)} THEN {self(w.result)}'
        if node.else_ is not None:
            text += ' ELSE ' + self(node.else_)
        return text + ' END'

    def Cast(self, node):
        length = f'({node.length})' if node.length is not None else ''
        return f'CAST({self(node.expr)} AS {node.type_name.lower()}{length})'

    def OrderItem(self, node):
        return self(node.expr) + (' ' + node.direction if node.direction else '')

    def SqlFunc(self, node):
        return f'{node.name}(' + ', '.join(self(a) for a in node.args) + ')'

    def SqlOp(self, node):
        return f'({self(node.left)} {node.op} {self(node.right)})'

    def SqlRaw(self, node):
        return node.text


def flatten(tree):
    """Serialise a morphed tree.

    Parameters
    ----------
    tree : vo.adql.nodes.Node
        The output of `vo.adql.morph.morph`.

    Returns
    -------
    str
        One PostgreSQL SELECT statement, without a trailing semicolon.
    """
    return _Writer()(tree)
