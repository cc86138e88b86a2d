"""The simple STC-S shapes that REGION() accepts, as pg_sphere literals.

Only single Position, Circle, Box and Polygon regions map onto one pg_sphere
value; unions, intersections and negations do not (pg_sphere has no such type).
Reference: IVOA STC-S Note 1.33 and DALI 1.1 section 3.3.
"""
from .exceptions import ADQLTranslationError

__all__ = ['stcs_to_pgsphere', 'polygon_literal']

_FRAMES = {'ICRS', 'FK4', 'FK5', 'J2000', 'B1950', 'ECLIPTIC', 'GALACTIC', 'UNKNOWNFRAME'}
_FLAGS = _FRAMES | {'BARYCENTER', 'GEOCENTER', 'TOPOCENTER', 'HELIOCENTER',
                    'UNKNOWNREFPOS', 'SPHERICAL2', 'CARTESIAN2'}


def _fmt(deg):
    return f'{deg!r}d'


def stcs_to_pgsphere(text):
    """Translate a simple STC-S region into a pg_sphere literal.

    Parameters
    ----------
    text : str
        e.g. ``'Circle ICRS 10 20 1'`` (degrees).

    Returns
    -------
    tuple of (str, str or None)
        The SQL literal (e.g. ``scircle '<(10.0d, 20.0d), 1.0d>'``) and the
        frame named in the string (None when absent).

    Raises
    ------
    ADQLTranslationError
        For compound or malformed regions.
    """
    words = text.replace('(', ' ( ').replace(')', ' ) ').split()
    if not words:
        raise ADQLTranslationError('empty STC-S region')
    shape = words[0].upper()
    frame = None
    rest = words[1:]
    while rest and rest[0].upper() in _FLAGS:
        if rest[0].upper() in _FRAMES:
            frame = rest[0].upper()
        rest = rest[1:]
    try:
        nums = [float(w) for w in rest]
    except ValueError:
        raise ADQLTranslationError(
            f'cannot translate the STC-S region {text!r}: only single Position, '
            'Circle, Box and Polygon regions are supported') from None
    if shape == 'POSITION' and len(nums) == 2:
        return f"spoint '({_fmt(nums[0])}, {_fmt(nums[1])})'", frame
    if shape == 'CIRCLE' and len(nums) == 3:
        return f"scircle '<({_fmt(nums[0])}, {_fmt(nums[1])}), {_fmt(nums[2])}>'", frame
    if shape == 'BOX' and len(nums) == 4:
        x, y, w, h = nums
        corners = [(x - w / 2, y - h / 2), (x - w / 2, y + h / 2),
                   (x + w / 2, y + h / 2), (x + w / 2, y - h / 2)]
        return polygon_literal(corners), frame
    if shape == 'POLYGON' and len(nums) >= 6 and len(nums) % 2 == 0:
        return polygon_literal(list(zip(nums[::2], nums[1::2]))), frame
    raise ADQLTranslationError(
        f'cannot translate the STC-S region {text!r}: only single Position, '
        'Circle, Box and Polygon regions are supported')


def polygon_literal(vertices_deg):
    """A pg_sphere spoly literal from (lon, lat) vertices in degrees.

    Parameters
    ----------
    vertices_deg : sequence of (float, float)

    Returns
    -------
    str
    """
    inner = ','.join(f'({_fmt(a)},{_fmt(b)})' for a, b in vertices_deg)
    return "spoly '{" + inner + "}'"


