"""HEALPix index ranges covering a cone: the B-tree side of every cone search.

Each sky table stores ``healpix_nest``, the NESTED HEALPix index of its position at
order 29, computed by PostgreSQL (pg_sphere's ``healpix_nest``) and indexed with a
B-tree. A cone becomes a few ranges of that index (the pixels of a MOC that covers
it); the condition ``healpix_nest BETWEEN a AND b OR ...``, added beside the exact
pg_sphere test, lets PostgreSQL read only those index ranges. Unlike pg_sphere's
GiST operators, B-tree comparisons of integers are LEAKPROOF, so the index also
serves the read-only role under row-level security on any PostgreSQL (no superuser
needed to mark anything), and a B-tree builds about ten times faster than the GiST
index of a point column (see `bench/tap.py`).

The cover comes from healpy's ``query_disc(..., inclusive=True)``, which returns
every pixel overlapping the disc. (mocpy 0.21's ``MOC.from_cone`` was measured to
miss border pixels of some cones, e.g. radius 7.2 degrees at (170.5, -23.6), so it
is not used for this.)
"""
import math

import numpy as np

__all__ = ['HEALPIX_ORDER', 'cone_ranges', 'ranges_condition']

#: Order of the stored ``healpix_nest`` columns.
HEALPIX_ORDER = 29

#: Cones wider than this get no range condition: they cover a large part of the
#: sky, where reading the table beats reading the index.
MAX_RADIUS_DEG = 30.0

# Pixel side at order 0 is about 58.6 degrees; the disc is covered at the order whose
# pixels are about half the radius (a few to a few tens of ranges for any radius).
_ORDER0_DEG = 58.6
# pg_sphere compares with a tolerance of 1e-9 rad: the cover is taken a little wider.
_MARGIN_DEG = 1e-6


def cone_ranges(ra_deg, dec_deg, radius_deg):
    """HEALPix order-29 index ranges covering a cone.

    Parameters
    ----------
    ra_deg, dec_deg : float
        Centre (ICRS, degrees).
    radius_deg : float
        Radius (degrees).

    Returns
    -------
    numpy.ndarray of int64, shape (n, 2), or None
        Inclusive ``[first, last]`` index ranges at order `HEALPIX_ORDER`, sorted
        and disjoint; None when the cone is too wide to be worth it
        (`MAX_RADIUS_DEG`) or is not a proper cone (non-finite values, a
        negative radius, a declination beyond the poles).
    """
    values = (ra_deg, dec_deg, radius_deg)
    if not all(math.isfinite(v) for v in values) or radius_deg < 0 or abs(dec_deg) > 90 \
            or radius_deg > MAX_RADIUS_DEG:
        return None
    import healpy

    radius = radius_deg + _MARGIN_DEG
    order = int(np.clip(math.floor(math.log2(2 * _ORDER0_DEG / radius)), 0, HEALPIX_ORDER))
    centre = healpy.ang2vec(ra_deg % 360.0, dec_deg, lonlat=True)
    pixels = np.sort(healpy.query_disc(2 ** order, centre, math.radians(radius),
                                       inclusive=True, fact=4, nest=True)).astype(np.int64)
    # runs of consecutive pixels, each one index range at order 29
    breaks = np.flatnonzero(np.diff(pixels) != 1)
    first = pixels[np.r_[0, breaks + 1]]
    last = pixels[np.r_[breaks, len(pixels) - 1]]
    shift = 2 * (HEALPIX_ORDER - order)
    return np.stack([first << shift, ((last + 1) << shift) - 1], axis=1)


def ranges_condition(column_sql, ranges):
    """SQL condition: ``column_sql`` lies in one of ``ranges``.

    Parameters
    ----------
    column_sql : str
        The (trusted, already quoted) column expression.
    ranges : numpy.ndarray of int64, shape (n, 2)
        Inclusive ranges (`cone_ranges`).

    Returns
    -------
    str
        A parenthesised condition with integer literals only (``FALSE`` for no
        range).
    """
    if len(ranges) == 0:
        return 'FALSE'
    return '(' + ' OR '.join(f'{column_sql} BETWEEN {int(lo)} AND {int(hi)}'
                             for lo, hi in ranges) + ')'
