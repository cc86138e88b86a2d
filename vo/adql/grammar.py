"""The ADQL 2.1 grammar (pass 1 of 5), as a lark LALR(1) grammar.

The grammar is deliberately untyped: boolean and value expressions share one
precedence ladder (as in PostgreSQL's own grammar), which keeps it LALR(1) and
fast.  Typing rules that the ADQL BNF encodes in its productions (a WHERE clause
must be a predicate, geometries do not concatenate, ...) are checked after
parsing by `vo.adql.tree`.

Reference: IVOA ADQL 2.1 Recommendation (2023), section 2 and Appendix A.
"""
import functools

__all__ = ['GRAMMAR', 'KEYWORDS', 'parser']

# Words that are grammar tokens, so they can never be regular identifiers.
KEYWORDS = (
    'ALL', 'AND', 'AS', 'ASC', 'BETWEEN', 'BY', 'CASE', 'CAST', 'CROSS', 'DESC',
    'DISTINCT', 'ELSE', 'END', 'EXCEPT', 'EXISTS', 'FROM', 'FULL', 'GROUP',
    'HAVING', 'ILIKE', 'IN', 'INNER', 'INTERSECT', 'IS', 'JOIN', 'LEFT', 'LIKE',
    'NATURAL', 'NOT', 'NULL', 'OFFSET', 'ON', 'OR', 'ORDER', 'OUTER', 'RIGHT',
    'SELECT', 'THEN', 'TOP', 'UNION', 'USING', 'WHEN', 'WHERE', 'WITH')

_RULES = r"""
start: with_clause? query_expr

with_clause: WITH cte ("," cte)*
cte: identifier column_names? AS "(" query_expr ")"
column_names: "(" identifier ("," identifier)* ")"

?query_expr: query_term
    | query_expr UNION ALL? query_term      -> union
    | query_expr EXCEPT ALL? query_term     -> except_
?query_term: query_primary
    | query_term INTERSECT ALL? query_primary -> intersect
?query_primary.2: select_stmt
    | "(" query_expr ")"                    -> paren_query

select_stmt: SELECT set_quantifier? top? select_list from_clause where_clause? \
    group_by? having? order_by? offset?
set_quantifier: DISTINCT | ALL
top: TOP NUMBER
select_list: select_item ("," select_item)*
?select_item: "*"                           -> star
    | dotted "." "*"                        -> qualified_star
    | expr alias?                           -> select_expr
alias: AS? identifier

from_clause: FROM table_ref ("," table_ref)*
?table_ref: table_primary | joined_table
joined_table: table_ref NATURAL? join_type? JOIN table_primary join_spec?
    | table_ref CROSS JOIN table_primary    -> cross_join
join_type: INNER | LEFT OUTER? | RIGHT OUTER? | FULL OUTER?
?join_spec: ON expr                         -> join_on
    | USING column_names                    -> join_using
?table_primary: dotted alias?               -> table_name
    | "(" query_expr ")" alias              -> derived_table
    | "(" joined_table ")"

where_clause: WHERE expr
group_by: GROUP BY expr ("," expr)*
having: HAVING expr
order_by: ORDER BY order_item ("," order_item)*
order_item: expr (ASC | DESC)?
offset: OFFSET NUMBER

?expr: or_expr
?or_expr: and_expr | or_expr OR and_expr    -> or_
?and_expr: not_expr | and_expr AND not_expr -> and_
?not_expr: predicate | NOT not_expr         -> not_
?predicate: value
    | value COMP_OP value                   -> comparison
    | value NOT? BETWEEN value AND value    -> between
    | value NOT? IN "(" expr_list ")"       -> in_list
    | value NOT? IN "(" query_expr ")"      -> in_query
    | value NOT? (LIKE | ILIKE) value       -> like
    | value IS NOT? NULL                    -> is_null
    | EXISTS "(" query_expr ")"             -> exists
expr_list: expr ("," expr)*

?value: bitwise
    | value CONCAT bitwise                  -> binop
?bitwise: additive
    | bitwise BIT_OP additive               -> binop
?additive: term
    | additive ADD_OP term                  -> binop
?term: factor
    | term (STAR | SLASH) factor            -> binop
?factor: primary
    | ADD_OP factor                         -> unary
    | TILDE factor                          -> unary
?primary: NUMBER                            -> number
    | HEX_NUMBER                            -> hex_number
    | STRING+                               -> string
    | NULL                                  -> null
    | dotted                                -> column_ref
    | function
    | "(" expr ")"                          -> paren
    | "(" query_expr ")"                    -> subquery
    | case_expr
    | CAST "(" expr AS cast_type ")"        -> cast
function: identifier "(" ")"                -> call
    | identifier "(" expr_list ")"          -> call
    | identifier "(" "*" ")"                -> call_star
    | identifier "(" set_quantifier expr ")" -> call_quantified
cast_type: identifier+ ("(" NUMBER ")")?
case_expr: CASE value? when_clause+ (ELSE expr)? END
when_clause: WHEN expr THEN expr

dotted: identifier | dotted "." identifier
identifier: REGULAR_ID | DELIMITED_ID

COMP_OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
CONCAT: "||"
BIT_OP: "&" | "|" | "^"
TILDE: "~"
ADD_OP: "+" | "-"
STAR: "*"
SLASH: "/"
HEX_NUMBER.2: /0x[0-9a-f]+/i
NUMBER: /(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?/i
STRING: /'(?:[^']|'')*'/
REGULAR_ID: /[a-z][a-z0-9_]*/i
DELIMITED_ID: /"(?:[^"]|"")+"/
COMMENT: /--[^\n]*/
WHITESPACE: /[ \t\f\r\n]+/
%ignore COMMENT
%ignore WHITESPACE
"""

GRAMMAR = _RULES + ''.join(f'{kw}: "{kw.lower()}"i\n' for kw in KEYWORDS)


@functools.lru_cache(maxsize=1)
def parser():
    """Return the (cached) lark LALR parser for ADQL.

    Returns
    -------
    lark.Lark
        A parser whose ``parse`` gives a raw lark tree with positions.
    """
    import lark
    return lark.Lark(GRAMMAR, parser='lalr', lexer='basic',
                     propagate_positions=True, maybe_placeholders=False)
