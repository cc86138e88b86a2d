"""BINARY2 serialised by PostgreSQL (vo.query fast path) against the general path.

The same query is run twice through a real `QueryPool` (role spheredc_reader,
row-level security): once with ``binary2=True`` (rows packed by the database)
and once without (rows converted by psycopg, packed with numpy); the two VOTable
documents must be byte for byte the same: every packable type, NULLs, NaN and
infinities, non-ASCII text, several null-mask bytes, batches and base64 lines
crossed, MAXREC overflow.
"""
import base64
import io
import re

import pytest
import requests
from astropy.io.votable import parse_single_table

from tests.vo.conftest import private_candidate
from vo.exceptions import QueryError
from vo.query import QueryPool, as_viewer
from vo.votable import B64_LINE_BYTES, stream_votable

# Every type PostgreSQL can pack, each NULL on some rows; 10 columns: 2 mask bytes.
VARIETY = """
SELECT CASE WHEN i % 11 = 1 THEN NULL ELSE (i - 3500)::int2 END AS s,
       CASE WHEN i % 11 = 2 THEN NULL ELSE i * 65537 END AS n,
       CASE WHEN i % 11 = 3 THEN NULL ELSE i::int8 * 3000000017 END AS l,
       CASE WHEN i % 11 = 4 THEN NULL WHEN i % 13 = 0 THEN 'NaN'::float4
            ELSE (i / 7.0)::float4 END AS f,
       CASE WHEN i % 11 = 5 THEN NULL WHEN i % 17 = 0 THEN '-Infinity'::float8
            WHEN i % 19 = 0 THEN 'NaN'::float8 ELSE i / 3.0::float8 * 1e10 END AS d,
       CASE WHEN i % 11 = 6 THEN NULL ELSE round(i / 7.0, 4) END AS num,
       CASE WHEN i % 11 = 7 THEN NULL ELSE i % 3 = 0 END AS b,
       CASE WHEN i % 11 = 8 THEN NULL ELSE 'c' || repeat('x', i % 9) || i END AS t,
       CASE WHEN i % 11 = 9 THEN NULL ELSE ('ü<€&' || i)::varchar END AS v,
       CASE WHEN i % 2 = 0 THEN '' ELSE E'a\\tb' END AS e
FROM generate_series(1, 7000) AS i ORDER BY i LIMIT {limit}
"""
NUMBERS = ('SELECT i, i * 0.5::float8 AS x FROM generate_series(1, 9000) AS i '
           'ORDER BY i LIMIT {limit}')


@pytest.fixture(scope='module')
def pool(database):
    pool = QueryPool(database, size=2)
    yield pool
    pool.close()


def _document(pool, sql, packed, maxrec=None, **kwargs):
    result = pool.execute(sql, maxrec=maxrec, binary2=packed, **kwargs)
    assert (result.binary2 is not None) == packed, 'the packed path was not taken'
    data = b''.join(stream_votable(result.fields, result, 'votable/b2', trailer=result.trailer,
                                   binary2=result.binary2))
    return data, result


def _both(pool, sql, maxrec=None, **kwargs):
    general, g = _document(pool, sql, False, maxrec, **kwargs)
    packed, p = _document(pool, sql, True, maxrec, **kwargs)
    assert (p.rows_sent, p.overflow) == (g.rows_sent, g.overflow)
    return general, packed, g


def _table(data):
    return parse_single_table(io.BytesIO(data)).to_table()


@pytest.mark.parametrize('sql, maxrec, rows, overflow', [
    (VARIETY.format(limit=7001), 7000, 7000, False),
    (VARIETY.format(limit=6001), 6000, 6000, True),   # strings: the last row is cut off
    (NUMBERS.format(limit=8001), 8000, 8000, True),   # fixed-size rows
    (NUMBERS.format(limit=1), 0, 0, True),
    (NUMBERS.format(limit=0), 10, 0, False),
])
def test_packed_document_is_the_general_one(pool, sql, maxrec, rows, overflow):
    general, packed, result = _both(pool, sql, maxrec)
    assert packed == general
    assert (result.rows_sent, result.overflow) == (rows, overflow)
    assert packed.count(b'value="OVERFLOW"') == int(overflow)
    table = _table(packed)
    assert len(table) == rows
    if rows and 'num' in table.colnames:
        body = re.search(rb'base64">\n(.*)</STREAM>', packed, re.S).group(1)
        assert len(body.split(b'\n')[0]) == B64_LINE_BYTES * 4 // 3  # lines crossed
        assert table['t'][9] == 'cx10' and not table['t'][7]  # NULL: empty string
        assert table['v'][0] == '?<?&1'  # VOTable char is ASCII
        assert bool(table['b'][2]) and table['b'].mask[6]
        assert table['s'][1] == 2 - 3500 and table['s'].mask[0]


def test_columns_that_cannot_be_packed_take_the_general_path(pool):
    for sql in ("SELECT now()::timestamp AS t, 1 AS i LIMIT 1",
                "SELECT spoint(0.1, 0.2) AS p LIMIT 1",
                "SELECT ARRAY['a', 'b'] AS a LIMIT 1"):
        _, result = _document(pool, sql, False)
        assert result.rows_sent == 1
        attempt = pool.execute(sql, binary2=True)
        assert attempt.binary2 is None and len(list(attempt)) == 1


def test_failures_of_the_packing_fall_back_and_errors_stay_the_same(pool):
    # 1e400 fits numeric but not float8: the packing fails, the general path writes +Inf.
    result = pool.execute('SELECT 1e400::numeric AS big LIMIT 1', binary2=True)
    assert result.binary2 is None
    assert b'\x7f\xf0' in base64.b64decode(
        re.search(rb'base64">\n(.*)</STREAM>', b''.join(stream_votable(
            result.fields, result, 'votable/b2')), re.S).group(1))
    messages = []
    for packed in (True, False):
        with pytest.raises(QueryError) as err:
            pool.execute('SELECT 1 / (i - 3) AS x FROM generate_series(1, 5) AS i LIMIT 6',
                         binary2=packed)
        messages.append(str(err.value))
        with pytest.raises(QueryError, match='does not exist'):
            pool.execute('SELECT nope FROM sphere.candidates LIMIT 2', binary2=packed)
        with pytest.raises(QueryError, match='cancel'):
            pool.execute('SELECT pg_sleep(2)::text AS s LIMIT 2', binary2=packed,
                         timeout_s=0.2)
        with pytest.raises(QueryError, match='permission denied'):
            pool.execute('SELECT username FROM accounts.users LIMIT 2', binary2=packed)
    assert messages[0] == messages[1] and 'division by zero' in messages[0]
    assert pool.execute('SELECT 1 AS one LIMIT 1', binary2=True).binary2 is not None


def test_row_level_security_applies_to_packed_rows(pool, database, vo_archive):
    hidden, setup = private_candidate(database, 'b2member')

    sql = ('SELECT candidate_id, ra, "dec", contrast_mag, prog_id FROM sphere.candidates '
           'ORDER BY candidate_id LIMIT 1000')
    general, packed, _ = _both(pool, sql, 999, setup=setup)
    assert packed == general
    assert hidden not in list(_table(packed)['candidate_id'])
    with as_viewer('b2member'):
        general, packed, _ = _both(pool, sql, 999, setup=setup)
    assert packed == general
    assert sorted(_table(packed)['candidate_id']) == sorted(vo_archive['candidates'])


def test_tap_binary2_over_http_matches_tabledata(vo_server, vo_archive):
    query = ('SELECT candidate_id, ra, dec, snr, epoch_mjd, sequence_id FROM sphere.candidates '
             'ORDER BY candidate_id')
    params = {'LANG': 'ADQL', 'QUERY': query, 'MAXREC': 3}
    b2 = requests.get(vo_server + '/tap/sync', timeout=60,
                      params=dict(params, RESPONSEFORMAT='votable/b2'))
    td = requests.get(vo_server + '/tap/sync', timeout=60, params=params)
    assert b2.headers['Content-Type'] == 'votable/b2'  # the MIME type asked for
    assert b'value="OVERFLOW"' in b2.content and b'value="OVERFLOW"' in td.content
    packed, text = _table(b2.content), _table(td.content)
    assert len(packed) == 3 and list(packed['candidate_id']) == sorted(
        vo_archive['candidates'])[:3]
    for name in packed.colnames:
        assert packed[name].tolist() == text[name].tolist()
