"""Cone Search 1.03: parameters, UCD1 names, error documents, large radii."""
import io

import pytest
import requests
from astropy.io.votable import parse_single_table

from vo.exceptions import UsageError
from vo.params import Params
from vo.query import Limits
from vo.scs import cone_fields, parse_cone


@pytest.mark.parametrize('pairs, fragment', [
    ([('RA', '10'), ('DEC', '5')], 'SR'),
    ([('RA', 'x'), ('DEC', '5'), ('SR', '1')], 'RA'),
    ([('RA', '10'), ('DEC', '95'), ('SR', '1')], 'DEC'),
    ([('RA', '10'), ('DEC', '5'), ('SR', '-1')], 'SR'),
    ([('RA', '10'), ('DEC', '5'), ('SR', '1'), ('VERB', '4')], 'VERB'),
])
def test_parse_errors(pairs, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_cone(Params(pairs), Limits())


def test_parse_case_insensitive_and_verbosity_columns():
    req = parse_cone(Params([('ra', '360'), ('dec', '-5'), ('sr', '0.5')]), Limits())
    assert (req.ra_deg, req.dec_deg, req.sr_deg, req.verb) == (0.0, -5.0, 0.5, 2)
    _, f1 = cone_fields('candidates', 1)
    assert [f.ucd for f in f1] == ['ID_MAIN', 'POS_EQ_RA_MAIN', 'POS_EQ_DEC_MAIN']
    _, f3 = cone_fields('candidates', 3)
    assert len(f3) > len(cone_fields('candidates', 2)[1]) > 3


def test_http_cone_and_errors(vo_server, vo_archive):
    resp = requests.get(vo_server + '/scs/candidates',
                        params={'RA': 0, 'DEC': 0, 'SR': 180}, timeout=30)
    table = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert sorted(table['candidate_id']) == sorted(vo_archive['candidates'])
    ra, dec = float(table['ra'][0]), float(table['dec'][0])
    # a cap larger than a hemisphere still excludes the far side
    far = requests.get(vo_server + '/scs/candidates', timeout=30, params={
        'RA': (ra + 180) % 360, 'DEC': -dec, 'SR': 120}).content
    assert len(parse_single_table(io.BytesIO(far)).to_table()) == 0
    err = requests.get(vo_server + '/scs/candidates', params={'RA': 1}, timeout=30)
    assert err.status_code == 200 and '<INFO name="Error"' in err.text
    assert requests.get(vo_server + '/scs/nope', params={'RA': 1, 'DEC': 1, 'SR': 1},
                        timeout=30).status_code == 404
    caps = requests.get(vo_server + '/scs/candidates/capabilities', timeout=30).text
    assert 'ivo://ivoa.net/std/ConeSearch' in caps
