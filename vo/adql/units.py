"""IN_UNIT: unit inference on expressions and conversion factors (astropy.units).

The unit of an expression is inferred from the units that `vo.adql.annotate`
attached to its column references (ADQL 2.1 section 4.8.2).
"""
from . import nodes as n
from .exceptions import ADQLTranslationError

__all__ = ['unit_of', 'in_unit']


def _parse(text):
    import astropy.units as u
    try:
        return u.Unit(text, format='vounit', parse_strict='raise')
    except ValueError:
        try:
            return u.Unit(text, parse_strict='raise')
        except ValueError:
            return None


def unit_of(expr):
    """Infer the unit of an expression.

    Parameters
    ----------
    expr : vo.adql.nodes.Node
        An annotated expression.

    Returns
    -------
    astropy.units.UnitBase or None
        None when it cannot be told (no metadata, unknown functions).
    """
    import astropy.units as u
    if isinstance(expr, n.ColumnRef):
        info = expr.info
        unit = getattr(info, 'unit', None)
        if unit is None:
            return None
        return _parse(unit) if unit else u.dimensionless_unscaled
    if isinstance(expr, n.Literal) and expr.kind in ('number', 'hex'):
        return u.dimensionless_unscaled
    if isinstance(expr, (n.Paren,)):
        return unit_of(expr.expr)
    if isinstance(expr, n.Unary):
        return unit_of(expr.operand)
    if isinstance(expr, n.BinOp):
        left, right = unit_of(expr.left), unit_of(expr.right)
        if left is None or right is None:
            return None
        if expr.op in '+-':
            return left if left.is_equivalent(right) else None
        if expr.op == '*':
            return left * right
        if expr.op == '/':
            return left / right
        return None
    if isinstance(expr, n.FuncCall):
        args = expr.args
        if expr.name in ('ABS', 'MIN', 'MAX', 'AVG', 'SUM', 'ROUND', 'TRUNCATE',
                         'CEILING', 'FLOOR') and args:
            return unit_of(args[0])
        if expr.name == 'SQRT':
            inner = unit_of(args[0])
            return None if inner is None else inner ** 0.5
        if expr.name == 'POWER':
            base = unit_of(args[0])
            exponent = args[1]
            if base is not None and isinstance(exponent, n.Literal) and exponent.kind == 'number':
                return base ** float(exponent.text)
    return None


def in_unit(expr, target, warnings, pos=None):
    """SQL node for ``IN_UNIT(expr, target)``.

    Parameters
    ----------
    expr : vo.adql.nodes.Node
        The (already morphed) expression; its ColumnRefs still carry their
        metadata.
    target : str
        The VOUnit to convert to.
    warnings : list of str
        Receives a warning when the unit of `expr` is unknown.
    pos : tuple, optional
        Position for error messages.

    Returns
    -------
    vo.adql.nodes.Node

    Raises
    ------
    ADQLTranslationError
        For a target that is not a unit, or units that do not convert.
    """
    unit = _parse(target)
    if unit is None:
        raise ADQLTranslationError(f'IN_UNIT: {target!r} is not a unit', pos)
    source = unit_of(expr)
    if source is None:
        warnings.append(f'IN_UNIT(..., {target!r}): the unit of the expression is '
                        'unknown, the value is returned unconverted')
        return expr
    try:
        factor = source.to(unit)
    except Exception:  # astropy raises UnitConversionError (a ValueError) and others
        raise ADQLTranslationError(
            f'IN_UNIT: cannot convert {source.to_string()} to {target}', pos) from None
    if factor == 1:
        return expr
    return n.Paren(n.BinOp('*', n.Paren(expr), n.Literal('number', repr(float(factor)))))
