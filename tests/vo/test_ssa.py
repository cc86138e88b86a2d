"""SSA 1.1 over the candidate spectra."""
import io

import pytest
import requests
from astropy.io.votable import parse_single_table

from vo.exceptions import UsageError
from vo.params import Params
from vo.query import Limits
from vo.ssa import parse_ssa


@pytest.mark.parametrize('pairs, fragment', [
    ([], 'REQUEST'), ([('REQUEST', 'queryData'), ('POS', '10')], 'POS'),
    ([('REQUEST', 'queryData'), ('FORMAT', 'image/png')], 'FORMAT'),
    ([('REQUEST', 'queryData'), ('TIME', 'yesterday')], 'TIME'),
])
def test_parse_errors(pairs, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_ssa(Params(pairs), Limits())


def test_http_queries(vo_server, vo_archive, database):
    with database.connect() as conn:
        ra, dec, mjd = conn.execute('SELECT ra, dec, epoch_mjd FROM sphere.candidates '
                                    'LIMIT 1').fetchone()
    url = vo_server + '/ssa'
    base = {'REQUEST': 'queryData'}
    everything = parse_single_table(io.BytesIO(requests.get(url, params=base,
                                                            timeout=30).content)).to_table()
    assert len(everything) == len(vo_archive['spectra'])
    near = parse_single_table(io.BytesIO(requests.get(url, timeout=30, params=dict(
        base, POS=f'{ra},{dec}', SIZE='0.001')).content))
    utypes = {f.utype for f in near.fields}
    assert {'ssa:Access.Reference', 'ssa:Access.Format', 'ssa:DataID.Title'} <= utypes
    assert 1 <= len(near.to_table()) < len(everything)
    band = parse_single_table(io.BytesIO(requests.get(url, timeout=30, params=dict(
        base, BAND='2e-6/3e-6')).content)).to_table()
    assert len(band) == 0
    meta = requests.get(url, params=dict(base, FORMAT='METADATA'), timeout=30)
    assert len(parse_single_table(io.BytesIO(meta.content)).to_table()) == 0
    bad = requests.get(url, params={'POS': '1,2'}, timeout=30)
    assert bad.status_code == 400 and 'REQUEST' in bad.text
