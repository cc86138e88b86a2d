"""Access matrix: no interface ever leaks a proprietary row or file (issue 6).

Anonymous visitors and bob (PI of another programme, by API token and by a
logged-in session) send many requests through every interface: TAP sync (raw
HTTP and pyvo, with ADQL tricks: subqueries, set operations, joins, uploads,
aggregates, paging, error oracles, functions and tables outside ADQL), TAP
async, Cone Search, SIA2, SSA, DataLink, direct file URLs and the portal's
pages. Every response body is searched for the identifiers of the proprietary
programme (sequence ids, arcfiles, product ids and paths, candidate ids, target
name, programme id) taken from the unfiltered truth; none may appear. alice (PI
of that programme) and carol (staff) are the positive controls: the same
requests must show them the private rows, so the tests cannot pass vacuously.
Once the release date is past, anonymous visitors see the rows too.
"""
import csv
import dataclasses
import io
import re
import time

import pytest
import requests

from tests.web.conftest import login

#: Viewer name -> (who in portal_archive.users/tokens, how authenticated).
VIEWERS = {'anonymous': (None, None), 'bob-token': ('other', 'token'),
           'bob-session': ('other', 'session'), 'alice-token': ('pi', 'token'),
           'alice-session': ('pi', 'session'), 'carol-token': ('staff', 'token')}
HIDDEN = ('anonymous', 'bob-token', 'bob-session')
TAP_TABLES = ('sphere.raw_files', 'sphere.sequences', 'sphere.candidates',
              'sphere.detection_limits', 'sphere.calib_associations', 'ivoa.obscore')
#: An identifier shaped like a private sequence id that never existed, to compare
#: "not found" replies with.
NEVER = 'IRDIS.2031-01-01T00:00:00.000'


def sees_private(viewer):
    return viewer not in HIDDEN


# --- what is private, from the unfiltered truth
@dataclasses.dataclass
class Secrets:
    """Identifiers of the proprietary programme and the truth to compare counts with."""

    markers: dict          # category -> list of strings that only private rows contain
    sequence_ids: list
    arcfiles: list         # private raw files
    products: list         # (product_id, size_bytes, product_type)
    ra_deg: float          # position of the private target
    dec_deg: float
    counts: dict           # table -> (public rows, all rows)
    public_sequence_id: str  # a public sequence of the same arm as a private one
    prog_id: str           # the proprietary programme
    obscore_dids: list     # obs_publisher_did of the private ObsCore rows

    def all_markers(self):
        return [m for values in self.markers.values() for m in values]


def _private_clause(prog_id, alias=''):
    """SQL condition true on the rows of programme ``prog_id`` (or its runs)."""
    return f"split_part({alias}prog_id, '(', 1) = '{prog_id}'"


def _public_clause(prog_id, alias=''):
    """SQL condition true on every other row (no programme counts as public)."""
    return f'({alias}prog_id IS NULL OR NOT {_private_clause(prog_id, alias)})'


def _visible_clause(viewer, prog_id):
    """WHERE clause of the rows ``viewer`` may see (everything for the PI and staff)."""
    return '' if sees_private(viewer) else 'WHERE ' + _public_clause(prog_id)


@pytest.fixture(scope='module')
def secrets(portal_archive):
    a = portal_archive
    priv = _private_clause(a.private_prog_id)
    q = a.query
    markers = {
        'sequence_id': list(a.private_sequence_ids),
        'arcfile': [r[0] for r in q(f'SELECT arcfile FROM sphere.raw_files WHERE {priv}')],
        'product_id': [r[0] for r in q(f'SELECT product_id FROM sphere.products WHERE {priv}')],
        'product_file': [r[0] for r in q(f'SELECT path FROM sphere.products WHERE {priv}')]
        + [r[0] for r in q(f'SELECT file_name FROM sphere.products WHERE {priv}')],
        'candidate_id': [r[0] for r in q(f'SELECT candidate_id FROM sphere.candidates '
                                         f'WHERE {priv}')],
        'target_name': [r[0] for r in q(f'SELECT DISTINCT target_name FROM sphere.sequences '
                                        f'WHERE {priv}')],
        'prog_id': [a.private_prog_id] + [r[0] for r in q(
            f'SELECT DISTINCT prog_id FROM sphere.sequences WHERE {priv}')],
    }
    # Everything public, as text: a marker found there would be no proof of a leak.
    public = []
    for table in ('raw_files', 'sequences', 'products', 'candidates', 'detection_limits'):
        public += [r[0] for r in q(f'SELECT t::text FROM sphere.{table} t WHERE '
                                   + _public_clause(a.private_prog_id))]
    public += [r[0] for r in q('SELECT c::text FROM sphere.calib_associations c JOIN '
                               'sphere.sequences s USING (sequence_id) WHERE '
                               + _public_clause(a.private_prog_id, 's.'))]
    public_text = '\n'.join(public)
    markers = {k: sorted({m for m in v if m and m not in public_text})
               for k, v in markers.items()}
    for key in ('sequence_id', 'arcfile', 'product_id', 'candidate_id', 'target_name'):
        assert markers[key], f'no private {key} to look for: the fixture changed'
    counts = {}
    for table in TAP_TABLES:
        name = table.split('.')[1]
        if name == 'calib_associations':
            hidden = ('JOIN sphere.sequences s USING (sequence_id) WHERE '
                      + _private_clause(a.private_prog_id, 's.'))
        elif name == 'obscore':
            hidden = ("JOIN sphere.products p ON t.obs_publisher_did = "
                      "'ivo://spheredc/products?' || p.product_id WHERE "
                      + _private_clause(a.private_prog_id, 'p.'))
        else:
            hidden = 'WHERE ' + _private_clause(a.private_prog_id, 't.')
        total = q(f'SELECT count(*) FROM {table} t')[0][0]
        private = q(f'SELECT count(*) FROM {table} t {hidden}')[0][0]
        counts[table] = (total - private, total)
    assert all(pub < total for pub, total in counts.values()), counts
    dids = [r[0] for r in q("SELECT o.obs_publisher_did FROM ivoa.obscore o JOIN sphere.products "
                            "p ON o.obs_publisher_did = 'ivo://spheredc/products?' || "
                            "p.product_id WHERE " + _private_clause(a.private_prog_id, 'p.'))]
    assert dids
    ra, dec, arm = q(f'SELECT ra, dec, arm FROM sphere.sequences WHERE {priv} LIMIT 1')[0]
    public_seq = q(f'SELECT sequence_id FROM sphere.sequences WHERE NOT {priv} AND arm = %s '
                   'ORDER BY sequence_id LIMIT 1', (arm,))[0][0]
    return Secrets(markers, list(a.private_sequence_ids), markers['arcfile'],
                   q(f'SELECT product_id, size_bytes, product_type FROM sphere.products '
                     f'WHERE {priv} ORDER BY product_id'), ra, dec, counts, public_seq,
                   a.private_prog_id, dids)


def found(text, secrets):
    """The private identifiers that occur in ``text``."""
    return [m for m in secrets.all_markers() if m in text]


_QUERY_ECHO = re.compile(r'<INFO name="QUERY" value="[^"]*"\s*/>|'
                         r'<INFO name="QUERY" value="[^"]*">.*?</INFO>', re.S)


def without_echo(text):
    # A TAP result repeats the query text: what the client sent is no leak.
    return _QUERY_ECHO.sub('', text)


# --- the viewers
@pytest.fixture(scope='module')
def viewers(portal_archive, portal_server):
    out = {}
    for name, (who, how) in VIEWERS.items():
        session = requests.Session()
        if how == 'token':
            session.headers['Authorization'] = f'Bearer {portal_archive.tokens[who]}'
        elif how == 'session':
            login(session, portal_server, who, portal_archive)
        out[name] = session
    yield out
    for session in out.values():
        session.close()


viewer_names = pytest.mark.parametrize('viewer', list(VIEWERS))


def tap_sync(session, base, query, fmt='votable', method='post', **extra):
    params = {'LANG': 'ADQL', 'REQUEST': 'doQuery', 'QUERY': query, 'RESPONSEFORMAT': fmt,
              **extra}
    if method == 'get':
        return session.get(base + '/tap/sync', params=params, timeout=60)
    return session.post(base + '/tap/sync', data=params, timeout=60)


def csv_rows(resp):
    assert resp.status_code == 200, resp.text[:500]
    return list(csv.reader(io.StringIO(resp.text)))[1:]


def is_error(resp):
    return 'name="QUERY_STATUS" value="ERROR"' in resp.text


def table_rows(text):
    return text.count('<TR>')


# --- TAP synchronous: every published table, and ADQL tricks
#: (label, ADQL): each returns rows that include private identifiers for the PI.
ROW_QUERIES = [(f'select * from {t}', f'SELECT * FROM {t}') for t in TAP_TABLES] + [
    ('subquery IN', 'SELECT * FROM sphere.raw_files WHERE sequence_id IN '
                    '(SELECT sequence_id FROM sphere.sequences)'),
    ('subquery chain', 'SELECT candidate_id, sequence_id FROM sphere.candidates WHERE '
                       'sequence_id IN (SELECT sequence_id FROM sphere.detection_limits '
                       'WHERE sequence_id IN (SELECT sequence_id FROM sphere.raw_files))'),
    ('EXISTS', 'SELECT s.sequence_id, s.target_name FROM sphere.sequences AS s WHERE EXISTS '
               '(SELECT 1 FROM sphere.candidates AS c WHERE c.sequence_id = s.sequence_id)'),
    ('subquery in FROM', 'SELECT x.sequence_id FROM (SELECT sequence_id, prog_id FROM '
                         'sphere.sequences) AS x'),
    ('UNION', 'SELECT sequence_id FROM sphere.sequences UNION SELECT sequence_id FROM '
              'sphere.raw_files UNION SELECT sequence_id FROM sphere.calib_associations'),
    ('UNION ALL', 'SELECT arcfile AS ident FROM sphere.raw_files UNION ALL SELECT '
                  'candidate_id FROM sphere.candidates UNION ALL SELECT target_name FROM '
                  'sphere.detection_limits'),
    ('EXCEPT', 'SELECT sequence_id FROM sphere.raw_files EXCEPT SELECT sequence_id FROM '
               'sphere.calib_associations WHERE role = \'nothing\''),
    ('INTERSECT', 'SELECT sequence_id FROM sphere.sequences INTERSECT SELECT sequence_id '
                  'FROM sphere.detection_limits'),
    ('JOIN', 'SELECT s.sequence_id, s.target_name, r.arcfile, c.candidate_id FROM '
             'sphere.sequences AS s JOIN sphere.raw_files AS r ON r.sequence_id = '
             's.sequence_id LEFT OUTER JOIN sphere.candidates AS c ON c.sequence_id = '
             's.sequence_id'),
    ('FULL JOIN', 'SELECT a.sequence_id, s.sequence_id AS s_id, s.target_name FROM '
                  'sphere.calib_associations AS a FULL OUTER JOIN sphere.sequences AS s '
                  'ON a.sequence_id = s.sequence_id'),
    ('RIGHT JOIN', 'SELECT d.filter, c.candidate_id FROM sphere.detection_limits AS d '
                   'RIGHT OUTER JOIN sphere.candidates AS c ON c.sequence_id = d.sequence_id'),
    ('JOIN USING', 'SELECT sequence_id, candidate_id FROM sphere.sequences JOIN '
                   'sphere.candidates USING (sequence_id)'),
    ('CROSS JOIN', 'SELECT s.sequence_id, c.candidate_id FROM sphere.sequences AS s '
                   'CROSS JOIN sphere.candidates AS c'),
    ('obscore JOIN', 'SELECT o.obs_publisher_did, o.access_url, s.target_name FROM '
                     'ivoa.obscore AS o JOIN sphere.sequences AS s ON o.obs_id = '
                     's.sequence_id'),
    ('GROUP BY prog_id', 'SELECT prog_id, target_name, COUNT(*) AS n FROM sphere.raw_files '
                         'GROUP BY prog_id, target_name'),
    ('DISTINCT', 'SELECT DISTINCT target_name, prog_id FROM sphere.candidates'),
    ('cone in ADQL', "SELECT * FROM sphere.sequences WHERE 1 = CONTAINS(POINT('ICRS', ra, "
                     "dec), CIRCLE('ICRS', {ra}, {dec}, 0.1))"),
    ('obscore INTERSECTS', "SELECT * FROM ivoa.obscore WHERE 1 = INTERSECTS(s_region, "
                           "CIRCLE('ICRS', {ra}, {dec}, 0.1))"),
    ('LIKE', "SELECT arcfile, target_name FROM sphere.raw_files WHERE target_name LIKE "
             "'SIMSTAR%'"),
]

#: Outside the published ADQL: refused for every viewer, staff included.
REFUSED_QUERIES = [
    "SELECT set_config('spheredc.viewer', 'carol', false) FROM sphere.sequences",
    "SELECT * FROM sphere.sequences WHERE set_config('spheredc.viewer', 'carol', true) = ''",
    "SELECT current_setting('spheredc.viewer') FROM sphere.sequences",
    "SELECT pg_read_file('/etc/passwd') FROM sphere.sequences",
    "SELECT sphere.viewer_is_staff() FROM sphere.sequences",
    'SELECT * FROM sphere.products',
    'SELECT * FROM "sphere"."products"',
    'SELECT * FROM sphere."products"',
    'SELECT * FROM "sphere.products"',
    'SELECT * FROM sphere.product_inputs',
    'SELECT * FROM sphere.runs',
    'SELECT * FROM accounts.users',
    'SELECT * FROM "accounts"."users"',
    'SELECT * FROM accounts.api_tokens',
    'SELECT * FROM accounts.memberships',
    'SELECT * FROM requests.reductions',
    'SELECT * FROM uws.jobs',
    'SELECT * FROM pg_catalog.pg_class',
    'SELECT * FROM "pg_catalog"."pg_policy"',
    'SELECT * FROM pg_policies',
    'SELECT * FROM information_schema.tables',
    'SELECT s.sequence_id, u.username FROM sphere.sequences AS s, accounts.users AS u',
    'SELECT * FROM sphere.sequences WHERE sequence_id IN (SELECT sequence_id FROM '
    'sphere.products)',
    'SELECT * FROM sphere.sequences; SET ROLE spheredc',
    'SELECT * FROM sphere.sequences WHERE 1=1; RESET ROLE; SELECT * FROM sphere.sequences',
]


@viewer_names
def test_tap_sync_rows(viewer, viewers, portal_server, secrets):
    """Each published table and each trick: no private row for anonymous/bob, all for alice."""
    session = viewers[viewer]
    problems = []
    for label, query in ROW_QUERIES:
        query = query.replace('{ra}', str(secrets.ra_deg)).replace('{dec}', str(secrets.dec_deg))
        resp = tap_sync(session, portal_server, query)
        text = without_echo(resp.text)
        if resp.status_code != 200 or is_error(resp):
            problems.append(f'{label}: failed ({resp.status_code}) {resp.text[-300:]}')
        elif sees_private(viewer) and not found(text, secrets):
            problems.append(f'{label}: the PI/staff does not see the private rows')
        elif not sees_private(viewer) and found(text, secrets):
            problems.append(f'{label}: LEAK of {found(text, secrets)[:5]}')
    assert not problems, '\n'.join(problems)


@viewer_names
def test_tap_sync_counts(viewer, viewers, portal_server, secrets):
    """COUNT(*) of every table equals what the viewer may see (public, or everything)."""
    session = viewers[viewer]
    index = 1 if sees_private(viewer) else 0
    for table in TAP_TABLES:
        rows = csv_rows(tap_sync(session, portal_server, f'SELECT COUNT(*) AS n FROM {table}',
                                 fmt='csv'))
        assert int(rows[0][0]) == secrets.counts[table][index], (table, viewer)
        # and the rows themselves, through GET and CSV
        rows = csv_rows(tap_sync(session, portal_server, f'SELECT * FROM {table}', fmt='csv',
                                 method='get'))
        assert len(rows) == secrets.counts[table][index], (table, viewer)
    per_prog = dict(csv_rows(tap_sync(
        session, portal_server, 'SELECT prog_id, COUNT(*) AS n FROM sphere.sequences '
        'GROUP BY prog_id', fmt='csv')))
    assert (any(p.startswith(secrets.prog_id) for p in per_prog)
            == sees_private(viewer)), per_prog
    # MAX over a column gives away nothing either: it is the max of what is visible.
    top = csv_rows(tap_sync(session, portal_server, 'SELECT MAX(ra) AS m FROM sphere.sequences',
                            fmt='csv'))[0][0]
    assert (float(top) >= secrets.ra_deg - 1e-6) == sees_private(viewer)


@viewer_names
def test_tap_sync_paging(viewer, viewers, portal_server, secrets, portal_archive):
    """ORDER BY + TOP + OFFSET pages together give exactly the visible rows, no more."""
    session = viewers[viewer]
    visible = _visible_clause(viewer, portal_archive.private_prog_id)
    truth = [r[0] for r in portal_archive.query(
        f'SELECT arcfile FROM sphere.raw_files {visible} ORDER BY arcfile')]
    seen = []
    for offset in range(0, len(truth) + 6, 3):
        seen += [r[0] for r in csv_rows(tap_sync(
            session, portal_server, 'SELECT TOP 3 arcfile FROM sphere.raw_files '
            f'ORDER BY arcfile OFFSET {offset}', fmt='csv'))]
    assert seen == truth
    # MAXREC truncation of the newest files: what is cut off is never a hidden row
    rows = csv_rows(tap_sync(session, portal_server, 'SELECT arcfile FROM sphere.raw_files '
                             'ORDER BY mjd_obs DESC', fmt='csv', MAXREC='3'))
    newest = [r[0] for r in portal_archive.query(
        f'SELECT arcfile FROM sphere.raw_files {visible} ORDER BY mjd_obs DESC LIMIT 3')]
    assert [r[0] for r in rows] == newest


@viewer_names
def test_tap_error_oracle(viewer, viewers, portal_server, secrets, portal_archive):
    """A condition that fails only on the private rows errs for the PI, never for others.

    Row-level security must filter before any condition of the query is
    evaluated; else a LOG of a negative number or a division by zero would
    reveal that the rows exist (the query text sent is the same for everyone).
    """
    session = viewers[viewer]
    prog = portal_archive.private_prog_id
    public_max, = portal_archive.query('SELECT max(ra) FROM sphere.raw_files WHERE '
                                       + _public_clause(prog))[0]
    private_min, = portal_archive.query('SELECT min(ra) FROM sphere.raw_files WHERE '
                                        + _private_clause(prog))[0]
    assert public_max < private_min, 'the private target is no longer east of the others'
    cut = (public_max + private_min) / 2
    # LOG(cut - ra) fails on the private rows only
    resp = tap_sync(session, portal_server,
                    f'SELECT COUNT(*) AS n FROM sphere.sequences WHERE LOG({cut} - ra) > -100',
                    fmt='csv')
    if sees_private(viewer):
        assert is_error(resp) or resp.status_code != 200, resp.text[:300]
    else:
        assert resp.status_code == 200 and not is_error(resp), resp.text[:500]
        assert int(csv_rows(resp)[0][0]) == secrets.counts['sphere.sequences'][0]
    # 1 / FLOOR(x) with x in [0, 1) on the private rows only (negative on the public ones)
    scale = 2 * (secrets.ra_deg - cut) + 1
    resp = tap_sync(session, portal_server, 'SELECT arcfile FROM sphere.raw_files '
                    f'WHERE 1 / FLOOR((ra - {cut}) / {scale}) < 1', fmt='csv')
    if sees_private(viewer):
        assert is_error(resp) or resp.status_code != 200, resp.text[:300]
    else:
        assert resp.status_code == 200 and not is_error(resp), resp.text[:500]
        assert csv_rows(resp) and not found(resp.text, secrets)


@viewer_names
def test_tap_refused(viewer, viewers, portal_server, secrets):
    """Functions outside ADQL and unpublished tables are refused, whoever asks."""
    session = viewers[viewer]
    for query in REFUSED_QUERIES:
        resp = tap_sync(session, portal_server, query)
        assert resp.status_code in (200, 400) and is_error(resp), (query, resp.text[:400])
        assert not found(without_echo(resp.text), secrets), query
        for word in ('password_hash', 'token_sha256', 'root:x:0'):
            assert word not in resp.text, query


@viewer_names
def test_tap_schema_metadata_only(viewer, viewers, portal_server, secrets):
    session = viewers[viewer]
    for table in ('tap_schema.tables', 'tap_schema.columns', 'tap_schema.schemas',
                  'tap_schema.keys', 'tap_schema.key_columns'):
        resp = tap_sync(session, portal_server, f'SELECT * FROM {table}')
        assert resp.status_code == 200 and not is_error(resp)
        assert not found(without_echo(resp.text), secrets), table
    names = [r[0] for r in csv_rows(tap_sync(session, portal_server,
                                             'SELECT table_name FROM tap_schema.tables',
                                             fmt='csv'))]
    assert sorted(names) == sorted(set(names)) and 'sphere.products' not in names
    assert not any(n.startswith(('accounts.', 'requests.', 'uws.')) for n in names)


def _upload_votable(secrets):
    from astropy.io.votable import from_table
    from astropy.table import Table

    n = max(len(secrets.sequence_ids), len(secrets.arcfiles), len(secrets.markers['candidate_id']))

    def pad(values):
        return (list(values) * n)[:n]

    table = Table({'sid': pad(secrets.sequence_ids), 'arc': pad(secrets.arcfiles),
                   'cid': pad(secrets.markers['candidate_id']),
                   'pid': pad([p[0] for p in secrets.products])})
    buf = io.BytesIO()
    from_table(table).to_xml(buf)
    return table, buf.getvalue()


UPLOAD_QUERIES = [
    'SELECT s.* FROM sphere.sequences AS s JOIN TAP_UPLOAD.probe AS u ON s.sequence_id = u.sid',
    'SELECT r.* FROM sphere.raw_files AS r JOIN TAP_UPLOAD.probe AS u ON r.arcfile = u.arc',
    'SELECT c.* FROM sphere.candidates AS c, TAP_UPLOAD.probe AS u WHERE c.candidate_id = u.cid',
    'SELECT o.* FROM ivoa.obscore AS o JOIN TAP_UPLOAD.probe AS u ON o.obs_publisher_did = '
    "'ivo://spheredc/products?' || u.pid",
    'SELECT d.* FROM sphere.detection_limits AS d WHERE d.sequence_id IN '
    '(SELECT sid FROM TAP_UPLOAD.probe)',
    'SELECT a.* FROM sphere.calib_associations AS a JOIN TAP_UPLOAD.probe AS u '
    'ON a.sequence_id = u.sid',
]
#: Counts of upload rows that match a table (0 for anonymous/bob).
UPLOAD_COUNTS = [
    'SELECT COUNT(*) AS n FROM TAP_UPLOAD.probe AS u WHERE u.sid IN '
    '(SELECT sequence_id FROM sphere.sequences)',
    'SELECT COUNT(*) AS n FROM TAP_UPLOAD.probe AS u JOIN sphere.raw_files AS r '
    'ON r.arcfile = u.arc',
    'SELECT COUNT(*) AS n FROM TAP_UPLOAD.probe AS u WHERE EXISTS (SELECT 1 FROM '
    'sphere.candidates AS c WHERE c.candidate_id = u.cid)',
]


@viewer_names
def test_tap_upload_join(viewer, viewers, portal_server, secrets):
    """Uploading the private identifiers and joining finds nothing unless one may see them."""
    session = viewers[viewer]
    _, votable = _upload_votable(secrets)
    for query in UPLOAD_QUERIES:
        resp = session.post(portal_server + '/tap/sync',
                            data={'LANG': 'ADQL', 'REQUEST': 'doQuery', 'QUERY': query,
                                  'UPLOAD': 'probe,param:probe'},
                            files={'probe': ('probe.xml', votable, 'application/xml')},
                            timeout=60)
        assert resp.status_code == 200 and not is_error(resp), (query, resp.text[-400:])
        text = without_echo(resp.text)
        assert (table_rows(text) > 0) == sees_private(viewer), (query, viewer)
        assert bool(found(text, secrets)) == sees_private(viewer), (query, viewer)
    for query in UPLOAD_COUNTS:
        resp = session.post(portal_server + '/tap/sync',
                            data={'LANG': 'ADQL', 'REQUEST': 'doQuery', 'QUERY': query,
                                  'UPLOAD': 'probe,param:probe', 'RESPONSEFORMAT': 'csv'},
                            files={'probe': ('probe.xml', votable, 'application/xml')},
                            timeout=60)
        assert (int(csv_rows(resp)[0][0]) > 0) == sees_private(viewer), (query, viewer)


@viewer_names
def test_pyvo(viewer, viewers, portal_server, secrets, portal_archive):
    """pyvo with a requests.Session carrying the token (or cookie): sync, upload, async."""
    import pyvo

    tap = pyvo.dal.TAPService(portal_server + '/tap', session=viewers[viewer])
    index = 1 if sees_private(viewer) else 0
    for table in TAP_TABLES:
        result = tap.run_sync(f'SELECT * FROM {table}').to_table()
        assert len(result) == secrets.counts[table][index], (table, viewer)
        text = '\n'.join(' '.join(str(v) for v in row) for row in result)
        assert bool(found(text, secrets)) == sees_private(viewer), table
    table, _ = _upload_votable(secrets)
    result = tap.run_sync('SELECT s.sequence_id, s.target_name FROM sphere.sequences AS s '
                          'JOIN TAP_UPLOAD.probe AS u ON s.sequence_id = u.sid',
                          uploads={'probe': table}).to_table()
    assert (len(result) > 0) == sees_private(viewer)
    result = tap.run_async('SELECT candidate_id, sequence_id FROM sphere.candidates',
                           timeout=60).to_table()
    ids = set(map(str, result['candidate_id']))
    assert bool(ids & set(secrets.markers['candidate_id'])) == sees_private(viewer)


# --- TAP asynchronous
def _submit(session, base, query):
    resp = session.post(base + '/tap/async', data={'LANG': 'ADQL', 'REQUEST': 'doQuery',
                                                    'QUERY': query, 'PHASE': 'RUN'},
                        allow_redirects=False, timeout=30)
    assert resp.status_code == 303, resp.text[:300]
    return resp.headers['Location']


def _finish(session, job_url, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        phase = session.get(job_url + '/phase', timeout=30).text.strip()
        if phase in ('COMPLETED', 'ERROR', 'ABORTED'):
            return phase
        session.get(job_url, params={'WAIT': '5', 'PHASE': phase}, timeout=30)
    raise AssertionError(f'job {job_url} did not finish')


def test_tap_async_each_viewer_sees_its_own(viewers, portal_server, secrets):
    """Jobs submitted interleaved by all viewers: each result is filtered for its owner,
    although the worker threads run them later, in any order."""
    query = 'SELECT sequence_id, target_name, prog_id FROM sphere.raw_files'
    jobs = [(viewer, _submit(viewers[viewer], portal_server, query))
            for _ in range(2) for viewer in VIEWERS]
    for viewer, job_url in jobs:
        session = viewers[viewer]
        assert _finish(session, job_url) == 'COMPLETED', viewer
        text = session.get(job_url + '/results/result', timeout=30).text
        rows = table_rows(without_echo(text))
        index = 1 if sees_private(viewer) else 0
        assert rows == secrets.counts['sphere.raw_files'][index], viewer
        assert bool(found(without_echo(text), secrets)) == sees_private(viewer), viewer
        session.delete(job_url, timeout=30)


def test_tap_async_jobs_are_private(viewers, portal_server, secrets):
    """bob and anonymous can neither read, list, change nor delete alice's job."""
    alice = viewers['alice-token']
    job_url = _submit(alice, portal_server,
                      'SELECT sequence_id, target_name FROM sphere.sequences')
    job_id = job_url.rsplit('/', 1)[1]
    assert _finish(alice, job_url) == 'COMPLETED'
    assert found(without_echo(alice.get(job_url + '/results/result').text), secrets)
    assert job_id in alice.get(portal_server + '/tap/async').text
    # the same user by session cookie owns it too
    assert alice.get(job_url).status_code == 200
    assert viewers['alice-session'].get(job_url).status_code == 200
    never = job_url.rsplit('/', 1)[0] + '/' + 'x' * len(job_id)
    for viewer in ('anonymous', 'bob-token', 'bob-session'):
        session = viewers[viewer]
        assert job_id not in session.get(portal_server + '/tap/async').text, viewer
        for suffix in ('', '/phase', '/parameters', '/results', '/results/result', '/owner',
                       '/quote', '/executionduration', '/destruction', '/error'):
            resp = session.get(job_url + suffix, timeout=30)
            assert resp.status_code == 404, (viewer, suffix, resp.status_code)
            assert not found(resp.text, secrets) and 'SIMSTAR' not in resp.text
            # no different from a job that never existed
            assert resp.text.replace(job_id, 'X') == session.get(
                never + suffix).text.replace('x' * len(job_id), 'X'), suffix
        for method, suffix, data in (('post', '/phase', {'PHASE': 'ABORT'}),
                                     ('post', '', {'ACTION': 'DELETE'}),
                                     ('post', '/parameters', {'QUERY': 'SELECT 1'}),
                                     ('delete', '', None)):
            resp = getattr(session, method)(job_url + suffix, data=data,
                                            allow_redirects=False, timeout=30)
            assert resp.status_code == 404, (viewer, method, suffix)
    resp = alice.get(job_url + '/parameters')
    assert 'SELECT sequence_id, target_name' in resp.text  # unchanged
    assert alice.get(job_url + '/phase').text.strip() == 'COMPLETED'
    assert found(without_echo(alice.get(job_url + '/results/result').text), secrets)
    alice.delete(job_url)


# --- Cone Search, SIA2, SSA
@viewer_names
def test_scs(viewer, viewers, portal_server, secrets):
    session = viewers[viewer]
    for table in ('sequences', 'candidates'):
        for sr in (0.05, 1.0, 180.0):
            for verb in (1, 3):
                resp = session.get(f'{portal_server}/scs/{table}',
                                   params={'RA': secrets.ra_deg, 'DEC': secrets.dec_deg,
                                           'SR': sr, 'VERB': verb}, timeout=30)
                assert resp.status_code == 200 and 'name="Error"' not in resp.text
                leaked = found(resp.text, secrets)
                assert bool(leaked) == sees_private(viewer), (table, sr, verb, leaked)
                if sr < 1:
                    assert (table_rows(resp.text) > 0) == sees_private(viewer), (table, sr)


@viewer_names
def test_sia2(viewer, viewers, portal_server, secrets):
    session = viewers[viewer]
    for params in ({'POS': f'CIRCLE {secrets.ra_deg} {secrets.dec_deg} 0.05'},
                   {'POS': f'RANGE {secrets.ra_deg - 1} {secrets.ra_deg + 1} '
                           f'{secrets.dec_deg - 1} {secrets.dec_deg + 1}'},
                   {'TARGET': secrets.markers['target_name'][0]},
                   {'ID': secrets.obscore_dids[0]},
                   {'CALIB': '3'}, {}):
        resp = session.get(portal_server + '/sia/query', params=params, timeout=30)
        assert resp.status_code == 200 and not is_error(resp), resp.text[:300]
        assert bool(found(resp.text, secrets)) == sees_private(viewer), params
        if params and 'CALIB' not in params:
            assert (table_rows(resp.text) > 0) == sees_private(viewer), params


@viewer_names
def test_ssa(viewer, viewers, portal_server, secrets, portal_archive):
    """SSA around the private target returns the spectra the viewer may see, no others."""
    session = viewers[viewer]
    visible = '' if sees_private(viewer) else 'AND ' + _public_clause(
        portal_archive.private_prog_id)
    truth = portal_archive.query(
        "SELECT count(*) FROM sphere.products WHERE product_type = 'spectrum' AND is_current "
        "AND pos <@ scircle(spoint(radians(%s), radians(%s)), radians(1.0)) " + visible,
        (secrets.ra_deg, secrets.dec_deg))[0][0]
    resp = session.get(portal_server + '/ssa', params={
        'REQUEST': 'queryData', 'POS': f'{secrets.ra_deg},{secrets.dec_deg}', 'SIZE': '2'},
        timeout=30)
    assert resp.status_code == 200 and not is_error(resp), resp.text[:300]
    assert table_rows(resp.text) == truth
    if not sees_private(viewer):
        assert not found(resp.text, secrets)
    resp = session.get(portal_server + '/ssa', params={'REQUEST': 'queryData'}, timeout=30)
    assert bool(found(resp.text, secrets)) <= sees_private(viewer)


# --- DataLink and files
@viewer_names
def test_datalink(viewer, viewers, portal_server, secrets):
    session = viewers[viewer]
    pids = [p[0] for p in secrets.products]
    dids = [f'ivo://spheredc/products?{pid}' for pid in pids]
    resp = session.get(portal_server + '/datalink/links', params={'ID': dids}, timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    if sees_private(viewer):
        assert 'NotFoundFault' not in resp.text, resp.text[:2000]
        for pid in pids:
            assert f'/files/product/{pid}<' in resp.text, pid
        assert any(f'/files/raw/{arc}' in resp.text for arc in secrets.arcfiles)
        return
    # one NotFoundFault per identifier, exactly as for identifiers that never existed
    fakes = [f'{NEVER}.fake{i}.v1' for i in range(len(pids))]
    never = session.get(portal_server + '/datalink/links',
                        params={'ID': [f'ivo://spheredc/products?{f}' for f in fakes]},
                        timeout=30)
    mine, other = resp.text, never.text
    for i, (pid, fake) in enumerate(zip(pids, fakes)):
        mine, other = mine.replace(pid, f'<{i}>'), other.replace(fake, f'<{i}>')
    assert mine == other
    assert not found(mine, secrets)
    assert mine.count('NotFoundFault') == len(pids)


@viewer_names
def test_datalink_public_products(viewer, viewers, portal_server, secrets, portal_archive):
    """The links of public products (their inputs, calibrations) never point at private ones."""
    public = [r[0] for r in portal_archive.query(
        'SELECT product_id FROM sphere.products WHERE '
        + _public_clause(portal_archive.private_prog_id))]
    resp = viewers[viewer].get(portal_server + '/datalink/links',
                               params={'ID': public}, timeout=60)
    assert resp.status_code == 200 and 'NotFoundFault' not in resp.text
    assert not found(resp.text, secrets)


@viewer_names
def test_files(viewer, viewers, portal_server, secrets, portal_archive):
    """Direct product and raw-file URLs: the bytes for the PI, a plain 404 for the others."""
    session = viewers[viewer]
    sizes = dict(portal_archive.query('SELECT arcfile, size_bytes FROM sphere.raw_files'))
    targets = [(f'/files/product/{pid}', size, f'/files/product/{NEVER}.x.v1', pid)
               for pid, size, _ in secrets.products]
    targets += [(f'/files/raw/{arc}', sizes[arc], '/files/raw/SPHER.2031-01-01T00:00:00.000.fits',
                 arc) for arc in secrets.arcfiles]
    for url, size, never_url, ident in targets:
        resp = session.get(portal_server + url, timeout=60)
        if sees_private(viewer):
            assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
            if size:
                assert len(resp.content) == size, url
            continue
        assert resp.status_code == 404, (url, resp.status_code)
        never = session.get(portal_server + never_url, timeout=30)
        assert never.status_code == 404
        assert resp.text.replace(ident, 'X') == never.text.replace(
            never_url.rsplit('/', 1)[1], 'X'), url
        assert not found(resp.text.replace(ident, ''), secrets)
    # paths are identifiers looked up in the database, never file names
    for url in ('/files/product/..%2F..%2Fsecret_key', '/files/product/../../secret_key',
                f'/files/product/{secrets.markers["product_file"][0]}',
                '/files/raw/..%2Fsecret_key', '/files/raw/%2Fetc%2Fpasswd'):
        resp = session.get(portal_server + url, timeout=30)
        assert resp.status_code == 404, (url, resp.status_code)
        assert 'root:x:0' not in resp.text


# --- portal pages
def _search_params(base):
    """Names of the search form's fields: target, (ra, dec, radius), programme (or None)."""
    resp = requests.get(base + '/search', timeout=30)
    names = set(re.findall(r'<(?:input|select)[^>]*\bname="([^"]+)"', resp.text))
    target = next((n for n in ('target', 'target_name', 'name', 'object', 'q') if n in names),
                  None)
    pos = next(((ra, dec, r) for ra, dec, r in (('ra', 'dec', 'radius'),
                                                ('ra', 'dec', 'radius_arcsec'),
                                                ('ra', 'dec', 'sr'))
                if {ra, dec, r} <= names), None)
    prog = next((n for n in ('prog_id', 'programme', 'program') if n in names), None)
    return target, pos, prog


def _strip_volatile(text):
    # CSRF tokens are signed with the time: they differ between two pages.
    return re.sub(r'name="csrf_token" value="[^"]*"', '', text)


@viewer_names
def test_portal_search(viewer, viewers, portal_server, secrets):
    session = viewers[viewer]
    target_param, pos_params, prog_param = _search_params(portal_server)
    if target_param is None:
        pytest.skip('portal page not there yet (no target field in the search form)')
    name = secrets.markers['target_name'][0]
    pages = {'home': session.get(portal_server + '/', timeout=30)}
    assert pages['home'].status_code == 200
    pages['by name'] = session.get(portal_server + '/search', params={target_param: name},
                                   timeout=30)
    pages['by lower-case name'] = session.get(portal_server + '/search',
                                              params={target_param: name.lower()}, timeout=30)
    # a name close to the private one: suggestions must come from visible targets only
    pages['near name'] = session.get(portal_server + '/search',
                                     params={target_param: name.replace('-', '_') + 'x'},
                                     timeout=30)
    pages['everything'] = session.get(portal_server + '/search', timeout=30)
    if prog_param:
        pages['by programme'] = session.get(portal_server + '/search',
                                            params={prog_param: secrets.prog_id}, timeout=30)
    if pos_params:
        ra, dec, radius = pos_params
        pages['by position'] = session.get(
            portal_server + '/search', params={ra: secrets.ra_deg, dec: secrets.dec_deg,
                                               radius: 60},
            timeout=30)
    for label, resp in pages.items():
        assert resp.status_code in (200, 400), (label, resp.status_code)
        text = resp.text
        if label in ('by name', 'by lower-case name'):
            text = text.replace(name, '').replace(name.lower(), '')  # the echoed query
        if label == 'by programme':
            text = text.replace(secrets.prog_id, '')
        leaked = found(text, secrets)
        if label in ('by name', 'by programme') and sees_private(viewer):
            assert any(s in resp.text for s in secrets.sequence_ids), label
        elif not sees_private(viewer):
            assert not leaked, (label, leaked)
    if pos_params and sees_private(viewer):
        assert any(s in pages['by position'].text for s in secrets.sequence_ids)


def _observation_routes(seq):
    return [f'/observation/{seq}'] + [f'/observation/{seq}/{leaf}' for leaf in (
        'image.png', 'snr.png', 'contrast.png', 'contrast.csv', 'contrast.vot', 'download.zip')]


def _status(session, url):
    # Only the status and the first bytes: a zip of everything may be large.
    with session.get(url, timeout=60, stream=True) as resp:
        return resp.status_code, next(resp.iter_content(8), b'')


@viewer_names
def test_portal_observation(viewer, viewers, portal_server, secrets):
    """A private observation and its pictures and downloads: 404 exactly like a sequence that
    never existed for anonymous/bob, 200 for the PI and staff."""
    session = viewers[viewer]
    anonymous = viewers['anonymous']
    missing = []
    for route, public_route, never_route in zip(
            _observation_routes(secrets.sequence_ids[0]),
            _observation_routes(secrets.public_sequence_id), _observation_routes(NEVER)):
        if _status(anonymous, portal_server + public_route)[0] == 404:
            missing.append(route)  # the route itself is missing (public data are 404)
            continue
        if sees_private(viewer):
            status, head = _status(session, portal_server + route)
            assert status == 200, (route, status)
            if route.endswith('.png'):
                assert head.startswith(b'\x89PNG'), route
            elif route.endswith('.zip'):
                assert head.startswith(b'PK'), route
            continue
        resp = session.get(portal_server + route, timeout=60)
        assert resp.status_code == 404, (route, resp.status_code)
        never = session.get(portal_server + never_route, timeout=30)
        assert never.status_code == 404
        assert _strip_volatile(resp.text).replace(secrets.sequence_ids[0], 'X') == \
            _strip_volatile(never.text).replace(NEVER, 'X'), route
        assert not found(resp.text.replace(secrets.sequence_ids[0], ''), secrets), route
    if missing:
        pytest.skip(f'portal page not there yet: {missing} (404 for a public sequence too)')


@viewer_names
def test_portal_pictures_by_id(viewer, viewers, portal_server, secrets, portal_archive):
    """Thumbnails of private products and spectra of private candidates: a plain 404."""
    session = viewers[viewer]
    priv = _private_clause(portal_archive.private_prog_id)
    public_preview = portal_archive.query(
        f"SELECT product_id FROM sphere.products WHERE NOT {priv} AND product_type = 'preview' "
        'LIMIT 1')[0][0]
    if _status(viewers['anonymous'], portal_server + f'/thumb/{public_preview}.png')[0] == 404:
        pytest.skip('portal page not there yet (/thumb/<public preview>.png is 404)')
    thumbs = [r[0] for r in portal_archive.query(
        f"SELECT product_id FROM sphere.products WHERE {priv} AND product_type IN "
        "('preview', 'final_image') ORDER BY product_id")]
    assert thumbs
    routes = [(f'/thumb/{pid}.png', pid, True) for pid in thumbs]
    routes += [(f'/candidate/{cid}/spectrum.png', cid, False)
               for cid in secrets.markers['candidate_id']]
    for route, ident, must_exist in routes:
        never_route = route.replace(ident, NEVER)
        if sees_private(viewer):
            status, head = _status(session, portal_server + route)
            if must_exist:
                assert status == 200 and head.startswith(b'\x89PNG'), (route, status)
            continue
        resp = session.get(portal_server + route, timeout=60)
        assert resp.status_code == 404, (route, resp.status_code)
        never = session.get(portal_server + never_route, timeout=30)
        assert _strip_volatile(resp.text).replace(ident, 'X') == \
            _strip_volatile(never.text).replace(NEVER, 'X'), route
        assert not found(resp.text.replace(ident, ''), secrets), route


# --- after the release date
def test_after_release_everybody_sees(viewers, portal_server, secrets, portal_archive):
    """Once the release date is past, anonymous sees the rows and files everywhere."""
    import datetime

    a = portal_archive
    priv = _private_clause(a.private_prog_id)
    before = a.query(f'SELECT DISTINCT release_date FROM sphere.sequences WHERE {priv}')
    assert len(before) == 1
    anonymous = viewers['anonymous']
    bob = viewers['bob-token']
    a.set_release(a.private_prog_id, datetime.datetime(2021, 6, 1))
    try:
        for session in (anonymous, bob):
            for table in TAP_TABLES:
                rows = csv_rows(tap_sync(session, portal_server, f'SELECT * FROM {table}',
                                         fmt='csv'))
                assert len(rows) == secrets.counts[table][1], table
            resp = session.get(f'{portal_server}/scs/sequences',
                               params={'RA': secrets.ra_deg, 'DEC': secrets.dec_deg,
                                       'SR': 0.05}, timeout=30)
            assert secrets.sequence_ids[0] in resp.text
            resp = session.get(portal_server + '/sia/query', params={
                'POS': f'CIRCLE {secrets.ra_deg} {secrets.dec_deg} 0.05'}, timeout=30)
            assert found(resp.text, secrets)
            pid, size, _ = secrets.products[0]
            resp = session.get(f'{portal_server}/files/product/{pid}', timeout=60)
            assert resp.status_code == 200 and (not size or len(resp.content) == size)
            resp = session.get(f'{portal_server}/files/raw/{secrets.arcfiles[0]}', timeout=60)
            assert resp.status_code == 200
            resp = session.get(portal_server + '/datalink/links',
                               params={'ID': f'ivo://spheredc/products?{pid}'}, timeout=30)
            assert 'NotFoundFault' not in resp.text and f'/files/product/{pid}' in resp.text
        job_url = _submit(anonymous, portal_server, 'SELECT sequence_id FROM sphere.sequences')
        assert _finish(anonymous, job_url) == 'COMPLETED'
        assert secrets.sequence_ids[0] in anonymous.get(job_url + '/results/result').text
        public_page = anonymous.get(f'{portal_server}/observation/{secrets.public_sequence_id}')
        if public_page.status_code != 404:
            resp = anonymous.get(f'{portal_server}/observation/{secrets.sequence_ids[0]}')
            assert resp.status_code == 200
    finally:
        a.set_release(a.private_prog_id, before[0][0])
    # and private again
    rows = csv_rows(tap_sync(anonymous, portal_server, 'SELECT * FROM sphere.sequences',
                             fmt='csv'))
    assert len(rows) == secrets.counts['sphere.sequences'][0]
