"""TAP sync, VOSI, TAP_SCHEMA, ObsCore and the safety rules, over real HTTP."""
import io

import pytest
import requests
from astropy.io.votable import parse_single_table

from vo.tapschema import PUBLISHED


def _sync(url, method='GET', **params):
    if not any(k.upper() == 'LANG' for k in params):
        params['LANG'] = 'ADQL'
    if method == 'GET':
        return requests.get(url + '/tap/sync', params=params, timeout=60)
    return requests.post(url + '/tap/sync', data=params, timeout=60)


def _table(resp):
    return parse_single_table(io.BytesIO(resp.content)).to_table()


def _status(resp):
    vot = resp.text
    start = vot.index('name="QUERY_STATUS"')
    return vot[start:].split('value="', 1)[1].split('"', 1)[0]


def test_health_and_availability(vo_server):
    assert requests.get(vo_server + '/health', timeout=10).json()['database'] is True
    avail = requests.get(vo_server + '/tap/availability', timeout=10)
    assert '<avl:available>true</avl:available>' in avail.text


def test_capabilities_declare_tap_features(vo_server):
    text = requests.get(vo_server + '/tap/capabilities', timeout=10).text
    for needle in ('standardID="ivo://ivoa.net/std/TAP"', 'ivo://ivoa.net/std/ObsCore#core-1.1',
                   'ivo_healpix_index', 'output-votable-binary2', 'upload-inline',
                   '<hard unit="row">', 'ivo://ivoa.net/std/DALI#examples'):
        assert needle in text


def test_query_votable_csv_tsv_binary2(vo_server, vo_archive):
    q = 'SELECT candidate_id, sep_arcsec, ra, dec FROM sphere.candidates ORDER BY candidate_id'
    resp = _sync(vo_server, QUERY=q)
    assert resp.status_code == 200
    assert resp.headers['Content-Type'].startswith('application/x-votable+xml')
    table = _table(resp)
    assert list(table['candidate_id']) == sorted(vo_archive['candidates'])
    assert table['sep_arcsec'].unit == 'arcsec'
    b2 = _sync(vo_server, QUERY=q, RESPONSEFORMAT='application/x-votable+xml;serialization=binary2')
    assert b2.headers['Content-Type'] == 'application/x-votable+xml;serialization=binary2'
    assert b'BINARY2' in b2.content and list(_table(b2)['ra']) == list(table['ra'])
    csv = _sync(vo_server, QUERY=q, RESPONSEFORMAT='csv')
    assert csv.headers['Content-Type'].startswith('text/csv')
    assert csv.text.splitlines()[0] == 'candidate_id,sep_arcsec,ra,dec'
    assert len(csv.text.splitlines()) == len(table) + 1
    tsv = _sync(vo_server, QUERY=q, FORMAT='tsv')
    assert tsv.text.splitlines()[1].split('\t')[0] == table['candidate_id'][0]


def test_parameters_case_insensitive_post_and_request(vo_server):
    resp = _sync(vo_server, 'POST', lang='adql', query='SELECT TOP 1 table_name FROM '
                 'tap_schema.tables', request='doQuery', maxrec='5', RUNID='r1')
    assert resp.status_code == 200 and len(_table(resp)) == 1
    assert '<INFO name="RUNID" value="r1"/>' in resp.text


def test_maxrec_overflow(vo_server):
    q = 'SELECT table_name FROM tap_schema.columns'
    resp = _sync(vo_server, QUERY=q, MAXREC=3)
    assert len(_table(resp)) == 3
    assert resp.text.rstrip().endswith('<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n'
                                       '</RESOURCE>\n</VOTABLE>'.rstrip())
    zero = _sync(vo_server, QUERY=q, MAXREC=0)
    assert len(_table(zero)) == 0 and 'OVERFLOW' in zero.text
    top = _sync(vo_server, QUERY='SELECT TOP 3 table_name FROM tap_schema.columns', MAXREC=3)
    assert len(_table(top)) == 3 and 'OVERFLOW' not in top.text


@pytest.mark.parametrize('params, fragment', [
    ({'QUERY': 'SELEC * FROM sphere.candidates'}, 'ADQLSyntaxError'),
    ({'QUERY': 'SELECT nope FROM sphere.candidates'}, 'nope'),
    ({'QUERY': 'SELECT * FROM sphere.products'}, 'products'),  # not published
    ({'QUERY': 'SELECT * FROM sphere.candidates', 'MAXREC': '-1'}, 'MAXREC'),
    ({'QUERY': 'SELECT * FROM sphere.candidates', 'MAXREC': 'many'}, 'MAXREC'),
    ({'QUERY': 'SELECT * FROM sphere.candidates', 'RESPONSEFORMAT': 'image/png'}, 'RESPONSEFORMAT'),
    ({'QUERY': 'SELECT * FROM sphere.candidates', 'LANG': 'SQL'}, 'LANG'),
    ({'QUERY': 'SELECT * FROM sphere.candidates', 'REQUEST': 'getCapabilities'}, 'REQUEST'),
    ({'QUERY': ''}, 'QUERY'),
    ({'QUERY': 'DELETE FROM sphere.candidates'}, 'ADQLSyntaxError'),
    ({'QUERY': 'SELECT 1/0 AS x FROM sphere.candidates'}, 'division by zero'),
])
def test_bad_requests_get_error_votables(vo_server, params, fragment):
    resp = _sync(vo_server, **params)
    assert resp.status_code == 400
    assert _status(resp) == 'ERROR' and fragment in resp.text
    assert 'Traceback' not in resp.text


def test_tables_endpoints(vo_server):
    full = requests.get(vo_server + '/tap/tables', timeout=10).text
    for name in PUBLISHED:
        assert f'<name>{name}</name>' in full
    assert '<name>"level"</name>' in full  # ADQL reserved words are delimited
    minimal = requests.get(vo_server + '/tap/tables?detail=min', timeout=10).text
    assert '<column' not in minimal and '<name>ivoa.obscore</name>' in minimal
    one = requests.get(vo_server + '/tap/tables/sphere.candidates', timeout=10)
    assert one.status_code == 200 and '<name>sep_arcsec</name>' in one.text
    assert requests.get(vo_server + '/tap/tables/sphere.nope', timeout=10).status_code == 404


def test_tap_schema_matches_schemas(vo_server):
    table = _table(_sync(vo_server, QUERY='SELECT table_name, table_type FROM tap_schema.tables '
                                           'ORDER BY table_index'))
    assert list(table['table_name']) == list(PUBLISHED)
    assert table['table_type'][0] == 'view'
    cols = _table(_sync(vo_server, QUERY="SELECT column_name, unit, ucd, xtype, \"size\" FROM "
                                          "tap_schema.columns WHERE table_name = 'ivoa.obscore'"))
    row = {r['column_name']: r for r in cols}
    assert row['t_min']['unit'] == 'd' and row['s_region']['xtype'] == 'adql:REGION'
    assert len(cols) == 34


def test_obscore_rows_and_geometry(vo_server, vo_archive):
    table = _table(_sync(vo_server, QUERY='SELECT * FROM ivoa.obscore'))
    # 3 sequences x (master cube + final image) + 6 spectra
    assert len(table) == 3 * 2 + len(vo_archive['spectra'])
    assert all(u.startswith(vo_server + '/datalink/links?ID=ivo://spheredc/products%3F')
               for u in table['access_url'])
    assert set(table['calib_level']) == {2, 3}
    assert all(r.startswith('Polygon ICRS ') for r in table['s_region'] if r)
    ra, dec = float(table['s_ra'][0]), float(table['s_dec'][0])
    hit = _table(_sync(vo_server, QUERY=(
        f"SELECT obs_publisher_did FROM ivoa.obscore WHERE "
        f"1 = CONTAINS(POINT('ICRS', {ra}, {dec}), s_region)")))
    assert len(hit) >= 2


def test_udfs_and_points(vo_server):
    table = _table(_sync(vo_server, QUERY=(
        'SELECT candidate_id, healpix_nest, ivo_healpix_index(29, ra, dec) AS hpx, '
        "POINT('ICRS', ra, dec) AS p, ra, dec FROM sphere.candidates")))
    assert len(table) > 0
    for row in table:
        assert abs(int(row['hpx']) - int(row['healpix_nest'])) <= 1
        assert row['p'][0] == pytest.approx(row['ra']) and row['p'][1] == pytest.approx(row['dec'])


def test_upload_inline_join(vo_server, vo_archive):
    cid = vo_archive['candidates'][0]
    vot = ('<?xml version="1.0"?><VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/'
           'v1.3"><RESOURCE><TABLE><FIELD name="cid" datatype="char" arraysize="*"/>'
           '<FIELD name="weight" datatype="double"/><DATA><TABLEDATA>'
           f'<TR><TD>{cid}</TD><TD>2.5</TD></TR><TR><TD>none</TD><TD/></TR>'
           '</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>')
    resp = requests.post(vo_server + '/tap/sync', data={
        'LANG': 'ADQL', 'UPLOAD': 'mine,param:t1',
        'QUERY': 'SELECT c.candidate_id, u.weight FROM sphere.candidates AS c '
                 'JOIN TAP_UPLOAD.mine AS u ON c.candidate_id = u.cid'},
        files={'t1': ('t1.xml', vot)}, timeout=60)
    table = _table(resp)
    assert list(table['candidate_id']) == [cid] and table['weight'][0] == 2.5


@pytest.mark.parametrize('url', ['http://127.0.0.1:1/x.xml', 'file:///etc/passwd',
                                 'ftp://example.org/t.xml'])
def test_upload_urls_are_restricted(vo_server, url):
    resp = _sync(vo_server, QUERY='SELECT * FROM TAP_UPLOAD.t', UPLOAD=f't,{url}')
    assert resp.status_code == 400 and 'upload URL' in resp.text


def test_oversized_upload_is_refused(vo_server):
    big = b'x' * 22_000_000
    resp = requests.post(vo_server + '/tap/sync', data={
        'LANG': 'ADQL', 'QUERY': 'SELECT * FROM TAP_UPLOAD.t', 'UPLOAD': 't,param:t'},
        files={'t': ('t.xml', big)}, timeout=60)
    assert resp.status_code == 413 and _status(resp) == 'ERROR'


def test_examples_document(vo_server):
    from vo.adql import translate
    from vo.examples import EXAMPLES
    from vo.tapschema import adql_metadata

    text = requests.get(vo_server + '/tap/examples', timeout=10).text
    assert text.count('typeof="example"') == len(EXAMPLES)
    for ex_id, _, _, _, query in EXAMPLES:
        assert f'id="{ex_id}"' in text
        translate(query, adql_metadata())
        assert _sync(vo_server, QUERY=query).status_code == 200


def test_read_only_role_and_timeout(database, vo_archive):
    from vo.exceptions import QueryError
    from vo.query import QueryPool

    pool = QueryPool(database, size=2)
    try:
        for table in ('sphere.quarantine', 'accounts.users', 'requests.reductions', 'uws.jobs'):
            with pytest.raises(QueryError, match='permission denied'):
                list(pool.execute(f'SELECT count(*) FROM {table}'))
        with pytest.raises(QueryError, match='permission denied|read-only'):
            list(pool.execute('SELECT * FROM sphere.candidates FOR UPDATE'))
        with pytest.raises(QueryError, match='cancel'):
            list(pool.execute('SELECT pg_sleep(3)', timeout_s=0.3))
        ok = pool.execute('SELECT count(*) FROM sphere.candidates')
        assert list(ok)[0][0] == len(vo_archive['candidates'])
    finally:
        pool.close()
