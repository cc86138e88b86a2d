"""Request parameters: case-insensitive names (DALI 1.1 section 3), typed values."""
import math

from .exceptions import UsageError

__all__ = ['Params', 'parse_float', 'parse_int']


class Params:
    """Request parameters with case-insensitive names (values keep their case).

    Parameters
    ----------
    pairs : iterable of (str, str)
        Name and value pairs as they arrive (query string and form body).
    """

    def __init__(self, pairs=()):
        self._values = {}
        for name, value in pairs:
            self._values.setdefault(name.lower(), []).append(value)

    def __contains__(self, name):
        return name.lower() in self._values

    def names(self):
        """Lower-case names present."""
        return list(self._values)

    def getlist(self, name):
        """All values of ``name`` (empty list when absent)."""
        return list(self._values.get(name.lower(), ()))

    def get(self, name, default=None):
        """The single value of ``name``.

        Raises
        ------
        UsageError
            When the parameter is given more than once with different values.
        """
        values = self._values.get(name.lower())
        if not values:
            return default
        if len(set(values)) > 1:
            raise UsageError(f'parameter {name.upper()} given more than once')
        return values[0]

    def as_dict(self):
        """``{lower-case name: first value}`` (for storing job parameters)."""
        return {k: v[0] for k, v in self._values.items()}


def parse_float(text, name, lo=-math.inf, hi=math.inf):
    """A finite float within [lo, hi] from a parameter value.

    Raises
    ------
    UsageError
        When ``text`` is not a number or out of range.
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f'{name} must be a number, not {text!r}') from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise UsageError(f'{name}={text} is out of range [{lo}, {hi}]')
    return value


def parse_int(text, name, lo=0, hi=None):
    """An integer >= lo (and <= hi when given) from a parameter value.

    Raises
    ------
    UsageError
        When ``text`` is not an integer or out of range.
    """
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        raise UsageError(f'{name} must be an integer, not {text!r}') from None
    if value < lo or (hi is not None and value > hi):
        raise UsageError(f'{name}={value} is out of range')
    return value
