"""The portal's search: the form's validation (pure) and the pages of a real server.

The truth comes from the archive itself, read as the owner (``portal_archive.query``),
restricted to what an anonymous visitor may see (public rows).
"""
import csv
import html
import io
import re

import pytest
import requests

from web.portal import search as S


# --- the form, without a server
def test_parse_defaults():
    s = S.parse_search({})
    assert (s.name, s.ra_deg, s.sort, s.descending, s.page, s.per_page) == (
        None, None, 'night', True, 1, S.DEFAULT_PER_PAGE)


@pytest.mark.parametrize('ra, dec', [('176.15448', '-40.1234'),
                                     ('11:44:37.0752', '-40:07:24.24'),
                                     ('11h44m37.0752s', '-40d07m24.24s'),
                                     ('11 44 37.0752', '-40 07 24.24')])
def test_parse_position_degrees_or_sexagesimal(ra, dec):
    s = S.parse_search({'ra': ra, 'dec': dec})
    assert s.ra_deg == pytest.approx(176.15448, abs=1e-6)
    assert s.dec_deg == pytest.approx(-40.1234, abs=1e-6)
    assert s.radius_arcsec == S.DEFAULT_RADIUS_ARCSEC


@pytest.mark.parametrize('args, field', [
    ({'ra': 'abc', 'dec': '1'}, 'ra'),
    ({'ra': '10', 'dec': '95'}, 'dec'),
    ({'ra': '360', 'dec': '0'}, 'ra'),
    ({'ra': 'nan', 'dec': '0'}, 'ra'),
    ({'ra': '10'}, 'dec'),
    ({'ra': '10', 'dec': '10', 'radius': '1e30'}, 'radius'),
    ({'ra': '10', 'dec': '10', 'radius': '0'}, 'radius'),
    ({'ra': '10', 'dec': '10', 'radius': 'inf'}, 'radius'),
    ({'night_from': '2025-13-01'}, 'night_from'),
    ({'night_from': '12/04/2025'}, 'night_from'),
    ({'night_from': '2025-05-01', 'night_to': '2025-04-01'}, 'night_to'),
    ({'prog_id': "0115.C-0123' OR 1=1"}, 'prog_id'),
    ({'calib_status': 'perfect'}, 'calib_status'),
    ({'min_rotation': '-5'}, 'min_rotation'),
    ({'sort': 'night; DROP TABLE x'}, 'sort'),
    ({'order': 'sideways'}, 'order'),
    ({'page': '0'}, 'page'),
    ({'per_page': '1000'}, 'per_page'),
    ({'name': 'x' * 101}, 'name'),
    ({'filter': 'H2\x00'}, 'filter'),
])
def test_parse_refuses_with_a_message_per_field(args, field):
    with pytest.raises(S.FormError) as info:
        S.parse_search(args)
    assert field in info.value.errors and info.value.errors[field]


def test_sql_is_parameterised_and_uses_the_indexed_cone():
    s = S.parse_search({'name': "O'Brien; DROP TABLE sphere.sequences", 'ra': '10',
                        'dec': '-5', 'radius': '30', 'filter': "H2' --"})
    sql, params = S.results_sql(s, ["O'Brien; DROP TABLE sphere.sequences"])
    assert 'DROP' not in sql and "H2'" not in sql
    assert 's.pos <@ scircle(spoint(radians(%s), radians(%s)), radians(%s))' in sql
    assert [10.0, -5.0, 30 / 3600] == params[1:4]
    assert params[-2:] == [s.per_page, 0]


def test_adql_quotes_text_and_is_valid_adql():
    from vo.adql import to_sql

    s = S.parse_search({'name': "O'Brien", 'ra': '10', 'dec': '-5', 'radius': '30',
                        'filter': "H'2", 'has_candidates': '1', 'prog_id': '0115.c-0123',
                        'night_from': '2025-01-01', 'min_rotation': '10', 'sort': 'rotation',
                        'order': 'asc'})
    adql = S.adql_query(s, ["O'Brien"])
    assert "'O''Brien'" in adql and "'H''2'" in adql
    assert "CONTAINS(POINT('ICRS', s.ra, s.\"dec\"), CIRCLE('ICRS', 10.0, -5.0" in adql
    assert "s.prog_id LIKE '0115.C-0123(%'" in adql
    assert 'ORDER BY s.field_rotation_deg, s.sequence_id' in adql
    to_sql(adql)  # raises on invalid ADQL


def test_name_normalisation_and_suggestions():
    assert S.normalize_name(' HD 95086 ') == S.normalize_name('hd-95086') == 'hd95086'
    known = ['HD 95086', 'beta Pic', 'HR 8799', 'SIMSTAR-1', 'HD95086']
    assert S.resolve_name('hd-95086', known) == ['HD 95086', 'HD95086']
    assert S.resolve_name('Beta_Pic', known) == ['beta Pic']
    assert S.resolve_name('beta Pictoris', known) == []
    assert S.suggest_names('HD 95068', known)[0] == 'HD 95086'
    assert 'SIMSTAR-1' in S.suggest_names('simstar', known)
    assert S.suggest_names('zzzzzz', known) == []


# --- the pages
def _public(archive, where='true', args=()):
    return sorted(r[0] for r in archive.query(
        'SELECT sequence_id FROM sphere.sequences s WHERE (release_date IS NULL OR '
        f"release_date <= now() AT TIME ZONE 'UTC') AND ({where})", args))


def _ids(resp):
    return re.findall(r'<tr data-sequence-id="([^"]+)"', resp.text)


def _get(base, **params):
    return requests.get(base + '/search', params=params, timeout=30)


@pytest.fixture(scope='module')
def public_target(portal_archive):
    """(name, ra_deg, dec_deg) of a public target."""
    return portal_archive.query(
        'SELECT target_name, ra, dec FROM sphere.sequences WHERE sequence_id = %s',
        (portal_archive.public_sequence_ids[0],))[0]


def test_home_page_counts(portal_server, portal_archive):
    resp = requests.get(portal_server + '/', timeout=30)
    assert resp.status_code == 200
    (n_seq, n_targets, n_nights), = portal_archive.query(
        'SELECT count(*), count(DISTINCT target_name), count(DISTINCT night) FROM '
        "sphere.sequences WHERE release_date <= now() AT TIME ZONE 'UTC'")
    counts = re.search(r'<ul class="counts" id="counts">(.*?)</ul>', resp.text, re.S).group(1)
    assert re.findall(r'<strong>(\d+)</strong>', counts) == [str(n_seq), str(n_targets),
                                                              str(n_nights)]
    assert 'id="search-form"' in resp.text


def test_search_everything_lists_public_sequences(portal_server, portal_archive):
    resp = _get(portal_server)
    assert resp.status_code == 200
    assert sorted(_ids(resp)) == _public(portal_archive)


@pytest.mark.parametrize('typed', ['{name}', '{lower}', ' {spaced} '])
def test_search_by_name(portal_server, portal_archive, public_target, typed):
    name = public_target[0]
    text = typed.format(name=name, lower=name.lower(), spaced=name.replace('-', ' ').lower())
    resp = _get(portal_server, name=text)
    assert resp.status_code == 200
    assert sorted(_ids(resp)) == _public(portal_archive, 'target_name = %s', (name,))


def test_unknown_name_says_so_and_suggests(portal_server, public_target):
    name = public_target[0]
    resp = _get(portal_server, name=name[:-1] + 'Q')
    assert resp.status_code == 200
    assert 'id="no-target"' in resp.text and _ids(resp) == []
    suggested = re.findall(r'class="suggestion">([^<]+)<', resp.text)
    assert name in suggested
    resp = _get(portal_server, name='nothing-like-it-at-all-42')
    assert 'id="no-target"' in resp.text and 'No name is close' in resp.text


def test_search_by_position(portal_server, portal_archive, public_target):
    from astropy import units as u
    from astropy.coordinates import Angle

    name, ra, dec = public_target
    expected = _public(portal_archive, 'target_name = %s', (name,))
    resp = _get(portal_server, ra=ra, dec=dec, radius=5)
    assert resp.status_code == 200 and sorted(_ids(resp)) == expected
    sexa = _get(portal_server, ra=Angle(ra, u.deg).to_string(u.hourangle, sep=':', precision=3),
                dec=Angle(dec, u.deg).to_string(sep=':', precision=2, alwayssign=True),
                radius=5)
    assert sorted(_ids(sexa)) == expected
    elsewhere = _get(portal_server, ra=(ra + 1.0) % 360, dec=dec, radius=60)
    assert elsewhere.status_code == 200 and _ids(elsewhere) == []


def test_search_by_night_range(portal_server, portal_archive):
    night = portal_archive.query('SELECT min(night) FROM sphere.sequences')[0][0]
    resp = _get(portal_server, night_from=night, night_to=night)
    assert sorted(_ids(resp)) == _public(portal_archive, 'night = %s', (night,))
    assert _ids(_get(portal_server, night_from='2099-01-01')) == []
    assert sorted(_ids(_get(portal_server, night_to=night))) == _public(
        portal_archive, 'night <= %s', (night,))


def test_search_filters(portal_server, portal_archive):
    arm, filt, prog = portal_archive.query(
        'SELECT arm, filter, prog_id FROM sphere.sequences WHERE sequence_id = %s',
        (portal_archive.public_sequence_ids[0],))[0]
    assert sorted(_ids(_get(portal_server, arm=arm.lower()))) == _public(
        portal_archive, 'arm = %s', (arm,))
    assert sorted(_ids(_get(portal_server, filter=filt.lower()))) == _public(
        portal_archive, 'filter = %s', (filt,))
    programme = prog.split('(')[0]
    assert sorted(_ids(_get(portal_server, prog_id=programme))) == _public(
        portal_archive, "split_part(prog_id, '(', 1) = %s", (programme,))
    with_cands = _public(portal_archive, 'EXISTS (SELECT 1 FROM sphere.candidates c '
                                         'WHERE c.sequence_id = s.sequence_id)')
    assert with_cands  # the small night has candidates
    assert sorted(_ids(_get(portal_server, has_candidates='1'))) == with_cands
    rot = portal_archive.query('SELECT max(field_rotation_deg) FROM sphere.sequences')[0][0]
    assert _ids(_get(portal_server, min_rotation=rot + 1)) == []
    assert sorted(_ids(_get(portal_server, min_rotation=1))) == _public(
        portal_archive, 'field_rotation_deg >= 1')
    status = portal_archive.query('SELECT calib_status FROM sphere.sequences WHERE '
                                  'sequence_id = %s', (portal_archive.public_sequence_ids[0],))
    assert sorted(_ids(_get(portal_server, calib_status=status[0][0]))) == _public(
        portal_archive, 'calib_status = %s', status[0])


def test_sort_and_pagination(portal_server, portal_archive):
    everything = _public(portal_archive)
    assert len(everything) >= 2
    pages = []
    for page in range(1, len(everything) + 1):
        resp = _get(portal_server, sort='id', order='asc', per_page=1, page=page)
        assert resp.status_code == 200
        pages += _ids(resp)
        assert f'page {page} of {len(everything)}' in resp.text
    assert pages == everything
    assert 'rel="next"' in _get(portal_server, sort='id', order='asc', per_page=1).text
    desc = _ids(_get(portal_server, sort='id', order='desc', per_page=100))
    assert desc == everything[::-1]
    past = _get(portal_server, per_page=1, page=len(everything) + 5)
    assert past.status_code == 200 and _ids(past) == [] and 'past the end' in past.text
    # The sort links of the table keep the search and switch the order.
    resp = _get(portal_server, arm='IRDIS', sort='target', order='asc')
    link = re.search(r'href="([^"]*sort=target[^"]*)" class="sorted asc"', resp.text).group(1)
    assert 'order=desc' in link and 'arm=IRDIS' in html.unescape(link)


@pytest.mark.parametrize('params, field', [
    ({'ra': 'abc', 'dec': '-40'}, 'ra'),
    ({'ra': '176', 'dec': '-40', 'radius': '1e30'}, 'radius'),
    ({'night_from': '2025-05-01', 'night_to': '2025-04-01'}, 'night_to'),
    ({'per_page': '101'}, 'per_page'),
    ({'sort': 'pg_sleep(10)'}, 'sort'),
    ({'ra': "1; DROP TABLE sphere.sequences", 'dec': '0'}, 'ra'),
])
def test_bad_input_gives_400_with_message_next_to_field(portal_server, params, field):
    resp = _get(portal_server, **params)
    assert resp.status_code == 400
    assert f'id="err-{field}"' in resp.text and 'nothing was searched' in resp.text
    assert 'id="results"' not in resp.text
    if field in ('ra', 'radius', 'night_to'):  # given back in the form, as text
        assert f'value="{html.escape(params[field])}"' in resp.text


def test_script_in_name_is_escaped(portal_server):
    script = '<script>alert("x")</script>'
    for params in ({'name': script}, {'name': script, 'ra': 'bad', 'dec': '0'},
                   {'filter': script}):
        resp = _get(portal_server, **params)
        assert resp.status_code in (200, 400)
        assert '<script>' not in resp.text
        assert '&lt;script&gt;' in resp.text


def test_sql_looking_text_changes_nothing(portal_server, portal_archive):
    before = portal_archive.query('SELECT count(*) FROM sphere.sequences')[0][0]
    for params in ({'name': "x'; DROP TABLE sphere.sequences; --"},
                   {'name': "' OR '1'='1"}, {'filter': "' OR 1=1 --"},
                   {'coronagraph': "\\'; SELECT pg_sleep(5); --"},
                   {'arm': "IRDIS' UNION SELECT * FROM accounts.users --"}):
        resp = _get(portal_server, **params)
        assert resp.status_code == 200, params
        assert _ids(resp) == []
    assert portal_archive.query('SELECT count(*) FROM sphere.sequences')[0][0] == before


def _tap_ids(base, adql):
    resp = requests.get(base + '/tap/sync', params={'REQUEST': 'doQuery', 'LANG': 'ADQL',
                                                    'QUERY': adql, 'RESPONSEFORMAT': 'csv'},
                        timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    return [row['sequence_id'] for row in csv.DictReader(io.StringIO(resp.text))]


def test_the_adql_shown_returns_the_same_sequences(portal_server, portal_archive,
                                                    public_target):
    name, ra, dec = public_target
    night = portal_archive.query('SELECT min(night) FROM sphere.sequences')[0][0]
    for params in ({}, {'name': name.lower()}, {'ra': ra, 'dec': dec, 'radius': 30},
                   {'has_candidates': '1', 'sort': 'rotation', 'order': 'asc'},
                   {'night_from': night, 'night_to': night, 'arm': 'irdis'},
                   {'ra': (ra + 2) % 360, 'dec': dec}):
        resp = _get(portal_server, per_page=100, **params)
        assert resp.status_code == 200
        adql = html.unescape(re.search(r'<pre id="adql">(.*?)</pre>', resp.text, re.S).group(1))
        assert 'FROM sphere.sequences' in adql
        assert _tap_ids(portal_server, adql) == _ids(resp), params
        sync = re.search(r'href="([^"]+)" id="tap-sync-link"', resp.text).group(1)
        assert html.unescape(sync).startswith(portal_server + '/tap/sync?')
    assert 'CONTAINS(POINT' in adql


def test_search_by_survey(portal_server, portal_archive):
    from archive.access import set_programme

    prog, = {p.split('(')[0] for (p,) in portal_archive.query(
        'SELECT prog_id FROM sphere.sequences WHERE sequence_id = ANY(%s)',
        (portal_archive.public_sequence_ids,))}
    truth = {s for (s,) in portal_archive.query(
        'SELECT sequence_id FROM sphere.sequences WHERE split_part(prog_id, %s, 1) = %s',
        ('(', prog))}
    with portal_archive.database.connect() as conn:
        set_programme(conn, prog, survey='SIM-SHINE')
    resp = requests.get(portal_server + '/search', params={'survey': 'sim-shine'}, timeout=30)
    assert resp.status_code == 200
    found = set(re.findall(r'<tr data-sequence-id="([^"]+)"', resp.text))
    assert found == truth
    # The ADQL shown lists the survey's programmes and selects the same sequences.
    adql = html.unescape(re.search(r'<pre id="adql">(.*?)</pre>', resp.text, re.S).group(1))
    assert prog in adql
    tap = requests.get(portal_server + '/tap/sync', params={
        'REQUEST': 'doQuery', 'LANG': 'ADQL', 'FORMAT': 'csv', 'QUERY': adql}, timeout=30)
    assert set(r['sequence_id'] for r in csv.DictReader(io.StringIO(tap.text))) == truth
    unknown = requests.get(portal_server + '/search', params={'survey': 'NOPE'}, timeout=30)
    assert unknown.status_code == 400 and 'no survey called' in unknown.text
    bad = requests.get(portal_server + '/search', params={'survey': "x'; drop"}, timeout=30)
    assert bad.status_code == 400
