"""SIA 2.0 parameters over ivoa.obscore."""
import io

import pytest
import requests
from astropy.io.votable import parse_single_table

from vo.exceptions import UsageError
from vo.params import Params
from vo.query import Limits
from vo.sia2 import parse_sia


def test_parse_combines_or_within_and_across():
    where, args, maxrec, fmt = parse_sia(Params([
        ('POS', 'CIRCLE 10 20 1'), ('POS', 'RANGE 0 5 -10 -5'), ('BAND', '1e-6 +Inf'),
        ('CALIB', '3'), ('DPTYPE', 'image'), ('MAXREC', '7')]), Limits())
    assert where.count(' OR ') == 1 and where.count(' AND ') >= 4
    assert args[:3] == [10.0, 20.0, 1.0] and float('inf') in args
    assert (maxrec, fmt) == (7, 'votable')


@pytest.mark.parametrize('pairs', [[('POS', 'CIRCLE 1 2')], [('POS', 'SQUARE 1 2 3')],
                                   [('POS', 'POLYGON 1 2 3 4')], [('BAND', 'a b')],
                                   [('CALIB', 'x')], [('POL', 'Z')], [('MAXREC', '-3')],
                                   [('RESPONSEFORMAT', 'image/gif')]])
def test_parse_errors(pairs):
    with pytest.raises(UsageError):
        parse_sia(Params(pairs), Limits())


def _table(resp):
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def test_http_queries(vo_server, database):
    with database.connect() as conn:
        ra, dec, seq = conn.execute("SELECT ra, dec, sequence_id FROM sphere.products "
                                    "WHERE product_type = 'master_cube' LIMIT 1").fetchone()
    url = vo_server + '/sia/query'
    everything = _table(requests.get(url, timeout=30))
    assert len(everything) == 12
    here = _table(requests.get(url, params={'POS': f'CIRCLE {ra} {dec} 0.01'}, timeout=30))
    assert set(here['obs_id']) >= {seq}
    box = _table(requests.get(url, params={
        'POS': f'RANGE {ra - 0.01} {ra + 0.01} {dec - 0.01} {dec + 0.01}'}, timeout=30))
    assert len(box) == len(here)
    poly = _table(requests.get(url, params={'POS': (
        f'POLYGON {ra - 0.01} {dec - 0.01} {ra + 0.01} {dec - 0.01} {ra} {dec + 0.01}')},
        timeout=30))
    assert len(poly) == len(here)
    cubes = _table(requests.get(url, params={'DPTYPE': 'cube', 'CALIB': 2}, timeout=30))
    assert len(cubes) == 3 and set(cubes['dataproduct_subtype']) == {'master_cube'}
    timed = _table(requests.get(url, params={'TIME': '0 1000', 'FOV': '0 1'}, timeout=30))
    assert len(timed) == 0
    bad = requests.get(url, params={'POS': 'CIRCLE 1'}, timeout=30)
    assert bad.status_code == 400 and 'value="ERROR"' in bad.text
