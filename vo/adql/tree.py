"""Build the node tree from the lark parse tree (pass 2 of 5).

`parse` is the entry point: ADQL text in, a checked `vo.adql.nodes.Statement`
out, or `ADQLSyntaxError`.
"""
from . import nodes as n
from .exceptions import ADQLSyntaxError
from .grammar import parser

__all__ = ['parse']


def _pos(meta):
    line = getattr(meta, 'line', None)
    return (line, meta.column) if line is not None else None


def _tokpos(tok):
    return (tok.line, tok.column)


def _is_tok(x, *types):
    return getattr(x, 'type', None) in types


def _number_to_int(tok, what):
    text = str(tok)
    if not text.isdigit():
        raise ADQLSyntaxError(f'{what} needs an unsigned integer, not {text!r}', _tokpos(tok))
    return int(text)


def _build_transformer():
    # lark is imported lazily so that importing vo.adql stays cheap.
    from lark import Transformer, v_args

    @v_args(meta=True)
    class ToNodes(Transformer):
        """Turn each grammar rule into a node (one method per rule)."""

        def start(self, meta, ch):
            ctes = ch[0] if len(ch) == 2 else ()
            return n.Statement(tuple(ctes), ch[-1], pos=_pos(meta))

        def with_clause(self, meta, ch):
            return tuple(ch[1:])

        def cte(self, meta, ch):
            name = ch[0]
            cols = ch[1] if isinstance(ch[1], tuple) else ()
            return n.CTE(name, cols, ch[-1], pos=_pos(meta))

        def column_names(self, meta, ch):
            return tuple(ch)

        def _setop(self, op, meta, ch):
            return n.SetOp(op, any(_is_tok(c, 'ALL') for c in ch), ch[0], ch[-1],
                           pos=_pos(meta))

        def union(self, meta, ch):
            return self._setop('UNION', meta, ch)

        def except_(self, meta, ch):
            return self._setop('EXCEPT', meta, ch)

        def intersect(self, meta, ch):
            return self._setop('INTERSECT', meta, ch)

        def paren_query(self, meta, ch):
            return n.ParenQuery(ch[0], pos=_pos(meta))

        def select_stmt(self, meta, ch):
            parts = {'quantifier': None, 'top': None, 'where': None, 'group_by': (),
                     'having': None, 'order_by': (), 'offset': None}
            for c in ch[1:]:
                if isinstance(c, tuple):
                    parts[c[0]] = c[1]
            return n.Select(parts['quantifier'], parts['top'], parts['items'],
                            parts['from_'], parts['where'], parts['group_by'],
                            parts['having'], parts['order_by'], parts['offset'],
                            pos=_pos(meta))

        def set_quantifier(self, meta, ch):
            return ('quantifier', str(ch[0]).upper())

        def top(self, meta, ch):
            return ('top', _number_to_int(ch[1], 'TOP'))

        def offset(self, meta, ch):
            return ('offset', _number_to_int(ch[1], 'OFFSET'))

        def select_list(self, meta, ch):
            return ('items', tuple(ch))

        def star(self, meta, ch):
            return n.Star(pos=_pos(meta))

        def qualified_star(self, meta, ch):
            return n.QualifiedStar(ch[0], pos=_pos(meta))

        def select_expr(self, meta, ch):
            return n.SelectItem(ch[0], ch[1] if len(ch) > 1 else None, pos=_pos(meta))

        def alias(self, meta, ch):
            return ch[-1]

        def from_clause(self, meta, ch):
            return ('from_', tuple(ch[1:]))

        def where_clause(self, meta, ch):
            return ('where', ch[1])

        def group_by(self, meta, ch):
            return ('group_by', tuple(ch[2:]))

        def having(self, meta, ch):
            return ('having', ch[1])

        def order_by(self, meta, ch):
            return ('order_by', tuple(ch[2:]))

        def order_item(self, meta, ch):
            direction = str(ch[1]).upper() if len(ch) > 1 else None
            return n.OrderItem(ch[0], direction, pos=_pos(meta))

        def table_name(self, meta, ch):
            return n.TableName(ch[0], ch[1] if len(ch) > 1 else None, pos=_pos(meta))

        def derived_table(self, meta, ch):
            return n.DerivedTable(ch[0], ch[1], pos=_pos(meta))

        def joined_table(self, meta, ch):
            natural = any(_is_tok(c, 'NATURAL') for c in ch)
            kind = next((c for c in ch if isinstance(c, str) and not hasattr(c, 'type')),
                        None)
            tables = [c for c in ch if isinstance(c, n.Node) or isinstance(c, tuple)]
            left, right = tables[0], tables[1]
            spec = tables[2] if len(tables) > 2 else None
            on = spec if isinstance(spec, n.Node) else None
            using = spec[1] if isinstance(spec, tuple) else ()
            return n.Join(kind or 'INNER', natural, left, right, on, using,
                          explicit_kind=kind is not None, pos=_pos(meta))

        def cross_join(self, meta, ch):
            return n.Join('CROSS', False, ch[0], ch[-1], pos=_pos(meta))

        def join_type(self, meta, ch):
            return str(str(ch[0]).upper())  # a plain str marks the join kind

        def join_on(self, meta, ch):
            return ch[1]

        def join_using(self, meta, ch):
            return ('using', ch[1])

        def or_(self, meta, ch):
            return n.BoolOp('OR', ch[0], ch[2], pos=_pos(meta))

        def and_(self, meta, ch):
            return n.BoolOp('AND', ch[0], ch[2], pos=_pos(meta))

        def not_(self, meta, ch):
            return n.Not(ch[1], pos=_pos(meta))

        def comparison(self, meta, ch):
            op = '<>' if ch[1] == '!=' else str(ch[1])
            return n.Comparison(op, ch[0], ch[2], pos=_pos(meta))

        def between(self, meta, ch):
            neg = _is_tok(ch[1], 'NOT')
            vals = [c for c in ch if isinstance(c, n.Node)]
            return n.Between(vals[0], vals[1], vals[2], neg, pos=_pos(meta))

        def in_list(self, meta, ch):
            return n.InList(ch[0], ch[-1], _is_tok(ch[1], 'NOT'), pos=_pos(meta))

        def in_query(self, meta, ch):
            return n.InQuery(ch[0], ch[-1], _is_tok(ch[1], 'NOT'), pos=_pos(meta))

        def like(self, meta, ch):
            neg = _is_tok(ch[1], 'NOT')
            op = str(ch[2 if neg else 1]).upper()
            return n.Like(ch[0], ch[-1], neg, op, pos=_pos(meta))

        def is_null(self, meta, ch):
            return n.IsNull(ch[0], _is_tok(ch[2], 'NOT'), pos=_pos(meta))

        def exists(self, meta, ch):
            return n.Exists(ch[1], pos=_pos(meta))

        def expr_list(self, meta, ch):
            return tuple(ch)

        def binop(self, meta, ch):
            return n.BinOp(str(ch[1]), ch[0], ch[2], pos=_pos(meta))

        def unary(self, meta, ch):
            return n.Unary(str(ch[0]), ch[1], pos=_pos(meta))

        def number(self, meta, ch):
            return n.Literal('number', str(ch[0]), pos=_pos(meta))

        def hex_number(self, meta, ch):
            return n.Literal('hex', str(ch[0]), pos=_pos(meta))

        def string(self, meta, ch):
            text = ''.join(str(t)[1:-1].replace("''", "'") for t in ch)
            return n.Literal('string', text, pos=_pos(meta))

        def null(self, meta, ch):
            return n.Literal('null', 'NULL', pos=_pos(meta))

        def column_ref(self, meta, ch):
            return n.ColumnRef(ch[0], pos=_pos(meta))

        def paren(self, meta, ch):
            return n.Paren(ch[0], pos=_pos(meta))

        def subquery(self, meta, ch):
            return n.Subquery(ch[0], pos=_pos(meta))

        def cast(self, meta, ch):
            words, length = ch[3]
            return n.Cast(ch[1], words, length, pos=_pos(meta))

        def cast_type(self, meta, ch):
            words = ' '.join(c.name.upper() for c in ch if isinstance(c, n.Ident))
            length = next((int(c) for c in ch if _is_tok(c, 'NUMBER')), None)
            return (words, length)

        def _fname(self, ident):
            if ident.delimited:
                raise ADQLSyntaxError('function names cannot be delimited identifiers',
                                      ident.pos)
            return ident.name.upper()

        def call(self, meta, ch):
            args = ch[1] if len(ch) > 1 else ()
            return n.FuncCall(self._fname(ch[0]), args, pos=_pos(meta))

        def call_star(self, meta, ch):
            return n.FuncCall(self._fname(ch[0]), (), star=True, pos=_pos(meta))

        def call_quantified(self, meta, ch):
            return n.FuncCall(self._fname(ch[0]), (ch[2],), quantifier=ch[1][1],
                              pos=_pos(meta))

        def case_expr(self, meta, ch):
            body = [c for c in ch if isinstance(c, n.Node)]
            operand = body[0] if not isinstance(body[0], n.When) else None
            whens = tuple(c for c in body if isinstance(c, n.When))
            has_else = any(_is_tok(c, 'ELSE') for c in ch)
            return n.Case(operand, whens, body[-1] if has_else else None, pos=_pos(meta))

        def when_clause(self, meta, ch):
            return n.When(ch[1], ch[3], pos=_pos(meta))

        def dotted(self, meta, ch):
            if len(ch) == 1:
                return (ch[0],)
            return ch[0] + (ch[1],)

        def identifier(self, meta, ch):
            tok = ch[0]
            if tok.type == 'DELIMITED_ID':
                return n.Ident(str(tok)[1:-1].replace('""', '"'), True, _tokpos(tok))
            return n.Ident(str(tok), False, _tokpos(tok))

    return ToNodes()


_TRANSFORMER = []


def _lark_error(exc):
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == '$END':
            return ADQLSyntaxError('unexpected end of query', None)
        expected = ', '.join(sorted(exc.expected)[:8])
        return ADQLSyntaxError(f'unexpected {exc.token!s:.30}; expected one of: {expected}',
                               (exc.line, exc.column))
    if isinstance(exc, UnexpectedCharacters):
        return ADQLSyntaxError(f'unexpected character {exc.char!r}', (exc.line, exc.column))
    if isinstance(exc, UnexpectedEOF):
        return ADQLSyntaxError('unexpected end of query', None)
    return ADQLSyntaxError(str(exc), None)


def parse(adql):
    """Parse ADQL text into a checked node tree.

    Parameters
    ----------
    adql : str
        One ADQL 2.1 query.

    Returns
    -------
    vo.adql.nodes.Statement
        The root of the tree.

    Raises
    ------
    ADQLSyntaxError
        If the text is not a valid ADQL query; ``.position`` is (line, column).
    """
    from lark.exceptions import LarkError, VisitError
    from .check import check
    if not _TRANSFORMER:
        _TRANSFORMER.append(_build_transformer())
    try:
        raw = parser().parse(adql)
    except LarkError as exc:
        raise _lark_error(exc) from None
    try:
        tree = _TRANSFORMER[0].transform(raw)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ADQLSyntaxError):
            raise exc.orig_exc from None
        raise
    check(tree)
    return tree
