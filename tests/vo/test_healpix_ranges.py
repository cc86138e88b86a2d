"""HEALPix index ranges for cones (vo.healpix_ranges) and where the ADQL translator adds them."""
import numpy as np
import pytest

from vo.adql import translate
from vo.healpix_ranges import HEALPIX_ORDER, cone_ranges, ranges_condition
from vo.tap import point_columns
from vo.tapschema import adql_metadata


def _inside(pixels, ranges):
    i = np.searchsorted(ranges[:, 0], pixels, side='right') - 1
    return (i >= 0) & (pixels <= ranges[np.maximum(i, 0), 1])


def test_ranges_cover_every_point_of_the_cone():
    import healpy

    rng = np.random.default_rng(3)
    for k in range(150):
        ra, dec = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))
        dec = (89.99, -89.99, 0.0)[k % 3] if k % 25 == 0 else dec
        radius = 10 ** rng.uniform(-4, np.log10(25))
        ranges = cone_ranges(ra, dec, radius)
        assert np.all(ranges[:, 0] <= ranges[:, 1]) and np.all(ranges[1:, 0] > ranges[:-1, 1])
        assert len(ranges) <= 64
        # points just inside the border, where a too tight cover would miss them
        pa = np.radians(rng.uniform(0, 360, 3000))
        d = np.radians(radius) * rng.uniform(0.995, 1.0, 3000)
        d0, a0 = np.radians(dec), np.radians(ra)
        lat = np.arcsin(np.sin(d0) * np.cos(d) + np.cos(d0) * np.sin(d) * np.cos(pa))
        lon = a0 + np.arctan2(np.sin(pa) * np.sin(d) * np.cos(d0),
                              np.cos(d) - np.sin(d0) * np.sin(lat))
        pixels = healpy.ang2pix(2 ** HEALPIX_ORDER, np.degrees(lon) % 360, np.degrees(lat),
                                nest=True, lonlat=True)
        assert _inside(pixels, ranges).all(), (ra, dec, radius)


def test_ranges_are_tight_enough_to_be_worth_it():
    # the cover of a 0.5 degree cone is a small part of the sky around it
    ranges = cone_ranges(180, 0, 0.5)
    covered = (ranges[:, 1] - ranges[:, 0] + 1).sum() / (12 * 4 ** HEALPIX_ORDER)
    cone = (1 - np.cos(np.radians(0.5))) / 2
    assert cone < covered < 10 * cone


@pytest.mark.parametrize('args', [(0, 0, 31), (0, 91, 1), (0, 0, -1), (np.nan, 0, 1),
                                  (0, 0, np.inf)])
def test_no_ranges_for_wide_or_improper_cones(args):
    assert cone_ranges(*args) is None


def test_condition_text():
    assert ranges_condition('t.h', np.array([[1, 2], [5, 9]])) == \
        '(t.h BETWEEN 1 AND 2 OR t.h BETWEEN 5 AND 9)'
    assert ranges_condition('h', np.zeros((0, 2), np.int64)) == 'FALSE'


def _sql(adql):
    return translate(adql, adql_metadata(), maxrec=10, points=point_columns()).sql


@pytest.mark.parametrize('where', [
    "1 = CONTAINS(POINT('ICRS', c.ra, c.dec), CIRCLE('ICRS', 10, -20, 0.1))",
    "CONTAINS(POINT(c.ra, c.dec), CIRCLE(POINT(10, -20), 0.1)) = 1",
    "1 = INTERSECTS(CIRCLE(10, -20, 0.1), POINT(c.ra, c.dec))",
    "1 = INTERSECTS(POINT(c.ra, c.dec), CIRCLE(10, -20, 0.1))",
    "DISTANCE(POINT(c.ra, c.dec), POINT(10, -20)) < 0.1",
    "0.1 >= DISTANCE(POINT(10, -20), POINT(c.ra, c.dec))",
    "c.snr > 5 AND (1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, -20, 0.1)) AND c.snr < 9)",
])
def test_constant_cones_get_healpix_ranges(where):
    sql = _sql(f'SELECT c.ra FROM sphere.candidates AS c WHERE {where}')
    assert 'c.healpix_nest BETWEEN' in sql


@pytest.mark.parametrize('where', [
    # not a top-level conjunct, not constant, not the stored point, another frame
    "c.snr > 5 OR 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, -20, 0.1))",
    "NOT 1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, -20, 0.1))",
    "0 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, -20, 0.1))",
    "1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, c.dec, 0.1))",
    "1 = CONTAINS(POINT(c.ra + 1, c.dec), CIRCLE(10, -20, 0.1))",
    "1 = CONTAINS(POINT('GALACTIC', c.ra, c.dec), CIRCLE(10, -20, 0.1))",
    "DISTANCE(POINT(c.ra, c.dec), POINT(10, -20)) > 0.1",
    "1 = CONTAINS(POINT(c.ra, c.dec), CIRCLE(10, -20, 40))",
])
def test_other_conditions_get_none(where):
    assert 'healpix_nest' not in _sql(f'SELECT c.ra FROM sphere.candidates AS c WHERE {where}')


def test_ranges_in_subqueries_and_ctes_name_their_own_table():
    sql = _sql("WITH w AS (SELECT ra FROM sphere.candidates WHERE "
               "1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 0.1))) "
               "SELECT s.sequence_id FROM sphere.sequences AS s WHERE s.ra IN (SELECT ra FROM w)"
               " AND DISTANCE(POINT(s.ra, s.dec), POINT(1, 2)) < 1")
    assert sql.count('healpix_nest BETWEEN') >= 2 and 's.healpix_nest BETWEEN' in sql
