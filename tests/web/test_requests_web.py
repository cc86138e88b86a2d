"""On-demand reductions through the real server (issue 6): API, forms, staff, worker, uploads.

The portal's server (gunicorn on loopback, one request worker thread per
process) runs the requests on the real Dask engine; the worker's own
behaviours (recovery of a dead worker's request, SMTP, a database outage)
are tested on real databases and a real SMTP conversation on loopback.
"""
import datetime
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.web.conftest import PRIVATE_PROG, csrf_token, login

ENGINE_TIMEOUT_S = 300


def _api(base, method, path, archive=None, who=None, **kw):
    headers = dict(kw.pop('headers', {}))
    if who is not None:
        headers['Authorization'] = 'Bearer ' + archive.tokens[who]
    return requests.request(method, base + path, headers=headers, timeout=120, **kw)


def _n_requests(archive):
    return archive.query('SELECT count(*) FROM requests.reductions')[0][0]


def _session(base, archive, who):
    return login(requests.Session(), base, who, archive)


@pytest.fixture(scope='module')
def private_sequence(portal_archive):
    """(night, sequence_id) of the proprietary programme's IRDIS sequence."""
    rows = portal_archive.query(
        "SELECT night, sequence_id FROM sphere.sequences WHERE split_part(prog_id, '(', 1) = %s "
        "AND arm = 'IRDIS' ORDER BY mjd_start", (PRIVATE_PROG,))
    assert rows, 'the simulated night has no IRDIS sequence of the private programme'
    return rows[0]


def _wait_final(base, archive, request_id, timeout_s=ENGINE_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        got = _api(base, 'GET', f'/api/requests/{request_id}', archive, 'pi').json()
        if got['request']['state'] in ('done', 'failed'):
            return got
        assert time.monotonic() < deadline, f'request still {got["request"]["state"]}'
        time.sleep(1.0)


def _archive_state(archive, sequence_id):
    """What the archive's own reduction of a sequence is: it must not change."""
    from reduction.engine import select_sequences
    from reduction.recipes import LEVEL2

    current = archive.query('SELECT product_id, version, checksum FROM sphere.products '
                            'WHERE sequence_id = %s AND is_current ORDER BY 1', (sequence_id,))
    cands = archive.query('SELECT candidate_id, product_id FROM sphere.candidates '
                          'WHERE sequence_id = %s ORDER BY 1', (sequence_id,))
    limits = archive.query('SELECT product_id, count(*) FROM sphere.detection_limits '
                           'WHERE sequence_id = %s GROUP BY 1 ORDER BY 1', (sequence_id,))
    with archive.database.connect(autocommit=True) as conn:
        pending = select_sequences(conn, pending=True, level2_recipe=LEVEL2)
    return current, cands, limits, pending


def test_pi_request_runs_on_the_engine_and_stays_private(portal_server, portal_archive,
                                                         private_sequence):
    base, archive = portal_server, portal_archive
    night, sid = private_sequence
    before = _archive_state(archive, sid)
    assert before[0], 'the archive has its own reduction of the sequence'

    resp = _api(base, 'POST', '/api/requests', archive, 'pi',
                json={'prog_id': PRIVATE_PROG, 'nights': [night], 'modes': ['IRDIS-CI'],
                      'parameters': {'algorithm': 'pca', 'components': 2}})
    assert resp.status_code == 201, resp.text
    req = resp.json()['request']
    rid = req['request_id']
    assert req['state'] == 'submitted' and req['requester'] == archive.users['pi'][0]
    assert resp.headers['Location'].endswith(f'/api/requests/{rid}')

    # Nobody else sees it or decides on it.
    assert _api(base, 'GET', f'/api/requests/{rid}', archive, 'other').status_code == 404
    assert _api(base, 'GET', f'/api/requests/{rid}').status_code == 401
    assert rid not in [r['request_id'] for r in
                       _api(base, 'GET', '/api/requests', archive, 'other').json()['requests']]
    for who in ('pi', 'other'):
        got = _api(base, 'POST', f'/api/requests/{rid}/accept', archive, who)
        assert got.status_code == 403 and 'staff' in got.json()['error']
    assert rid in [r['request_id'] for r in
                   _api(base, 'GET', '/api/requests', archive, 'staff').json()['requests']]

    resp = _api(base, 'POST', f'/api/requests/{rid}/accept', archive, 'staff',
                json={'note': 'small and cheap'})
    assert resp.status_code == 200, resp.text
    assert resp.json()['request']['state'] == 'queued'
    assert resp.json()['request']['sequence_ids'] == [sid]
    again = _api(base, 'POST', f'/api/requests/{rid}/accept', archive, 'staff')
    assert again.status_code == 409 and 'cannot become accepted' in again.json()['error']

    got = _wait_final(base, archive, rid)
    req = got['request']
    assert req['state'] == 'done', got['events']
    assert [e['state'] for e in got['events']] == ['submitted', 'accepted', 'queued',
                                                   'running', 'done']
    assert got['events'][3]['actor'].startswith('worker ')
    assert req['run_ids'] and req['product_ids']
    assert all(p.startswith(f'req{rid}.') for p in req['product_ids'])
    assert {p['product_id'] for p in got['products']} == set(req['product_ids'])

    # The products are the request's own, private to the programme, not current.
    rows = archive.query('SELECT product_id, is_current, prog_id, release_date, path, '
                         'sequence_id, product_type FROM sphere.products WHERE product_id = '
                         'ANY(%s)', (req['product_ids'],))
    assert len(rows) == len(req['product_ids'])
    year = datetime.datetime.utcnow() + datetime.timedelta(days=364)
    for pid, current, prog, release, path, seq, _ in rows:
        assert not current and seq == sid and prog.split('(')[0] == PRIVATE_PROG
        assert release > year and path.startswith(f'requests/{rid}/')
        assert (archive.database.settings.products_dir / path).is_file()
    assert {r[6] for r in rows} >= {'final_image', 'snr_map', 'contrast_curve'}
    runs = archive.query('SELECT status, sequence_id, parameters FROM sphere.runs '
                         'WHERE run_id = ANY(%s)', (req['run_ids'],))
    assert runs and all(r[0] == 'done' and r[1] == sid for r in runs)
    assert any(r[2].get('ncomp') == 2 for r in runs)
    # ... and the archive's own reduction is untouched, and not "settled" by them.
    assert _archive_state(archive, sid) == before

    image = next(r[0] for r in rows if r[6] == 'final_image')
    # The requester was told, on the page and in the outbox.
    subjects = [m['subject'] for m in got['messages']]
    assert any('done' in s for s in subjects) and any('accepted' in s for s in subjects)
    outbox = archive.query('SELECT email, sent_at FROM requests.outbox WHERE request_id = %s',
                           (rid,))
    assert {r[0] for r in outbox} == {'alice@example.org'}
    assert all(r[1] is None for r in outbox)  # no SMTP configured: kept for the portal
    alice = _session(base, archive, 'pi')
    page = alice.get(f'{base}/requests')
    assert page.status_code == 200
    assert f'/files/product/{image}' in page.text.replace('%3A', ':')
    assert f'/observation/{sid}' in page.text.replace('%3A', ':')
    assert f'request #{rid} done' in page.text
    bob = _session(base, archive, 'other')
    assert bob.get(f'{base}/requests/{rid}').status_code == 404
    assert image not in bob.get(f'{base}/requests').text

    # The files: the programme's PI gets them, nobody else.
    assert _api(base, 'GET', f'/files/product/{image}', archive, 'other').status_code == 404
    assert _api(base, 'GET', f'/files/product/{image}').status_code == 404
    resp = _api(base, 'GET', f'/files/product/{image}', archive, 'pi')
    assert resp.status_code == 200 and resp.content.startswith(b'SIMPLE')


def test_ifs_request_runs_pca_asdi_with_spectra(portal_server, portal_archive):
    """An IFS sequence's PI asks for its reduction; the archive's master cube is reused."""
    from archive import accounts
    from archive.request_rules import MODES

    base, archive = portal_server, portal_archive
    rows = archive.query("SELECT sequence_id, split_part(prog_id, '(', 1), night, ins_mode "
                         "FROM sphere.sequences WHERE arm = 'IFS' ORDER BY sequence_id")
    assert rows, 'the simulated night has an IFS sequence'
    sid, prog, night, ins_mode = rows[0]
    mode = next(name for name, (arm, m) in MODES.items() if (arm, m) == ('IFS', ins_mode))
    with archive.database.connect() as conn:
        if not accounts.get_user(conn, 'ifs_pi'):
            accounts.create_user(conn, 'ifs_pi', 'ifs-password-4444', email='ifs@example.org')
            accounts.add_membership(conn, 'ifs_pi', prog, 'PI')
        token = accounts.create_token(conn, 'ifs_pi', 'tests')
        conn.commit()
    before = _archive_state(archive, sid)
    auth = {'Authorization': 'Bearer ' + token}
    resp = requests.post(base + '/api/requests', headers=auth, timeout=60,
                         json={'prog_id': prog, 'nights': [night], 'modes': [mode]})
    assert resp.status_code == 201, resp.text
    rid = resp.json()['request']['request_id']
    resp = _api(base, 'POST', f'/api/requests/{rid}/accept', archive, 'staff')
    assert resp.status_code == 200 and resp.json()['request']['sequence_ids'] == [sid]
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while True:
        got = requests.get(f'{base}/api/requests/{rid}', headers=auth, timeout=60).json()
        if got['request']['state'] in ('done', 'failed'):
            break
        assert time.monotonic() < deadline
        time.sleep(1.0)
    req = got['request']
    assert req['state'] == 'done', got['events']
    assert 'level 1 of the archive reused' in got['events'][-1]['note']
    products = archive.query('SELECT product_id, product_type, is_current, path FROM '
                             'sphere.products WHERE product_id = ANY(%s)', (req['product_ids'],))
    kinds = {r[1] for r in products}
    assert {'final_image', 'snr_map', 'contrast_curve'} <= kinds
    assert all(r[0].startswith(f'req{rid}.') and not r[2]
               and r[3].startswith(f'requests/{rid}/') for r in products)
    # the archive's reduction finds the companion: the request's does too, with its spectrum
    if archive.query('SELECT 1 FROM sphere.candidates WHERE sequence_id = %s', (sid,)):
        assert 'spectrum' in kinds
    assert _archive_state(archive, sid) == before


def test_form_submission_staff_rejection_and_csrf(portal_server, portal_archive,
                                                  private_sequence):
    base, archive = portal_server, portal_archive
    night, _ = private_sequence
    alice = _session(base, archive, 'pi')
    page = alice.get(f'{base}/requests/new')
    assert page.status_code == 200
    assert f'value="{PRIVATE_PROG}"' in page.text and f'value="{night}"' in page.text
    form = {'prog_id': PRIVATE_PROG, 'nights': [night], 'modes': ['IRDIS-CI'],
            'algorithm': 'median', 'components': '', 'z_max': '4'}
    n = _n_requests(archive)
    assert alice.post(f'{base}/requests/new', data=form).status_code == 400  # no CSRF token
    assert _n_requests(archive) == n
    token = csrf_token(alice, base, '/requests/new')
    resp = alice.post(f'{base}/requests/new', data=dict(form, csrf_token=token),
                      allow_redirects=False)
    assert resp.status_code == 303, resp.text[:1000]
    rid = int(re.search(r'/requests/(\d+)$', resp.headers['Location']).group(1))
    detail = alice.get(f'{base}/requests/{rid}')
    assert detail.status_code == 200 and 'submitted' in detail.text
    row = archive.query('SELECT requester, nights, modes, parameters, state FROM '
                        'requests.reductions WHERE request_id = %s', (rid,))[0]
    assert row == ('alice', [night], ['IRDIS-CI'],
                   {'algorithm': 'median', 'frame_selection': {'z_max': 4.0}}, 'submitted')

    bob = _session(base, archive, 'other')
    assert bob.get(f'{base}/requests/{rid}').status_code == 404
    assert bob.get(f'{base}/staff/requests').status_code == 403
    assert alice.get(f'{base}/staff/requests').status_code == 403

    carol = _session(base, archive, 'staff')
    queue = carol.get(f'{base}/staff/requests')
    assert queue.status_code == 200 and f'id="request-{rid}"' in queue.text
    token = csrf_token(carol, base, '/staff/requests')
    resp = carol.post(f'{base}/staff/requests', data={'csrf_token': token, 'action': 'reject',
                                                      'request_id': rid, 'reason': ''})
    assert resp.status_code == 400 and 'reason' in resp.text
    reason = 'the archive reduction already uses these settings'
    resp = carol.post(f'{base}/staff/requests', allow_redirects=False,
                      data={'csrf_token': token, 'action': 'reject', 'request_id': rid,
                            'reason': reason})
    assert resp.status_code == 303
    assert archive.query('SELECT state, reason FROM requests.reductions WHERE request_id = %s',
                         (rid,))[0] == ('rejected', reason)
    mine = alice.get(f'{base}/requests')
    assert f'request #{rid} rejected' in mine.text and reason in mine.text

    # A JSON POST with the session cookie needs the CSRF header.
    body = {'prog_id': PRIVATE_PROG}
    n = _n_requests(archive)
    assert alice.post(f'{base}/api/requests', json=body).status_code == 400
    assert _n_requests(archive) == n
    resp = alice.post(f'{base}/api/requests', json=body,
                      headers={'X-CSRFToken': csrf_token(alice, base, '/requests/new')})
    assert resp.status_code == 201, resp.text
    rid = resp.json()['request']['request_id']
    resp = _api(base, 'POST', f'/api/requests/{rid}/reject', archive, 'staff',
                json={'reason': 'test of the CSRF header'})
    assert resp.status_code == 200 and resp.json()['request']['state'] == 'rejected'


BAD_BODIES = [
    ({}, 'prog_id is missing'),
    ({'prog_id': ''}, 'prog_id is missing'),
    ({'prog_id': PRIVATE_PROG, 'extra': 1}, 'unknown field'),
    ({'prog_id': 123456}, 'not a programme identifier'),
    ({'prog_id': 'x' * 100_000}, 'not a programme identifier'),
    ({'prog_id': '<script>alert(1)</script>'}, 'not a programme identifier'),
    ({'prog_id': "0115.C-0456'; DROP TABLE requests.reductions; --"},
     'not a programme identifier'),
    ({'prog_id': PRIVATE_PROG, 'nights': '2025-13-45'}, 'not a date'),
    ({'prog_id': PRIVATE_PROG, 'nights': ['2025-04-12'] * 1000}, 'at most 366 nights'),
    ({'prog_id': PRIVATE_PROG, 'nights': ["1' OR '1'='1"]}, 'not a night'),
    ({'prog_id': PRIVATE_PROG, 'nights': 20250412}, 'must be a list'),
    ({'prog_id': PRIVATE_PROG, 'modes': ['<img src=x onerror=alert(1)>']}, 'not a mode'),
    ({'prog_id': PRIVATE_PROG, 'parameters': 'pca'}, 'must be an object'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'algorithm': 'x; DROP TABLE y'}},
     'not one the engine knows'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'components': 10 ** 40}}, 'from 1 to 50'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'components': '5'}}, 'from 1 to 50'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'components': -1}}, 'from 1 to 50'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'frame_selection': {'z_max': 1e300}}},
     'z_max must be a number'),
    ({'prog_id': PRIVATE_PROG, 'parameters': {'shell': 'rm -rf /'}}, 'unknown parameter'),
]


@pytest.mark.parametrize('body, message', BAD_BODIES,
                         ids=[f'bad{i}' for i in range(len(BAD_BODIES))])
def test_bad_api_input_is_refused_and_changes_nothing(portal_server, portal_archive, body,
                                                      message):
    n = _n_requests(portal_archive)
    resp = _api(portal_server, 'POST', '/api/requests', portal_archive, 'pi', json=body)
    assert resp.status_code == 400, resp.text[:300]
    assert resp.headers['Content-Type'].startswith('application/json')
    assert message in resp.json()['error']
    assert _n_requests(portal_archive) == n


def test_other_api_refusals(portal_server, portal_archive):
    base, archive = portal_server, portal_archive
    n = _n_requests(archive)
    cases = [
        ('POST', '/api/requests', 'other', {'json': {'prog_id': PRIVATE_PROG}}, 403,
         'only the PI or a CoI'),
        ('POST', '/api/requests', 'pi', {'data': 'prog_id=x'}, 400, 'JSON object'),
        ('POST', '/api/requests', 'pi', {'json': ['prog_id']}, 400, 'JSON object'),
        ('GET', '/api/requests', None, {}, 401, 'token'),
        ('GET', '/api/requests/1', None, {}, 401, 'token'),
        ('GET', '/api/requests?state=<b>', 'pi', {}, 400, 'unknown state'),
        ('GET', f'/api/requests/{2 ** 70}', 'pi', {}, 404, 'no request'),
        ('POST', '/api/requests/999999/accept', 'staff', {}, 404, 'no request'),
        ('POST', '/api/requests/1/explode', 'staff', {}, 404, 'unknown action'),
        ('POST', '/api/requests/1/priority', 'staff', {'json': {'priority': 'high'}}, 400,
         'whole number'),
        ('POST', '/api/requests/1/priority', 'staff', {'json': {'priority': 10 ** 12}}, 400,
         'whole number'),
        ('POST', '/api/requests/1/reject', 'staff', {'json': {}}, 400, 'reason'),
    ]
    for method, path, who, kw, status, message in cases:
        resp = _api(base, method, path, archive, who, **kw)
        assert resp.status_code == status, (path, resp.text[:300])
        assert message in resp.json()['error'], (path, resp.text[:300])
    assert _n_requests(archive) == n


def test_form_errors_are_escaped_pages(portal_server, portal_archive):
    base, archive = portal_server, portal_archive
    alice = _session(base, archive, 'pi')
    token = csrf_token(alice, base, '/requests/new')
    n = _n_requests(archive)
    for form, status, message in [
            ({'prog_id': '<script>alert(1)</script>'}, 400, 'not a programme identifier'),
            ({'prog_id': PRIVATE_PROG, 'components': '1; DROP'}, 400, 'whole numbers'),
            ({'prog_id': PRIVATE_PROG, 'components': '99'}, 400, 'from 1 to 50'),
            ({'prog_id': '0999.Z-0001'}, 403, 'only the PI or a CoI')]:
        resp = alice.post(f'{base}/requests/new', data=dict(form, csrf_token=token))
        assert resp.status_code == status and message in resp.text, resp.text[:500]
        assert '<script>alert(1)</script>' not in resp.text
    assert '&lt;script&gt;' in alice.post(
        f'{base}/requests/new', data={'prog_id': '<script>', 'csrf_token': token}).text
    assert _n_requests(archive) == n


def _night_files(small_night, prog_prefix=None, catg=None):
    from astropy.io import fits

    out = []
    for path in sorted(Path(small_night[0]).glob('SPHER.*.fits')):
        header = fits.getheader(path)
        if prog_prefix and not str(header.get('HIERARCH ESO OBS PROG ID', '')).startswith(
                prog_prefix):
            continue
        if catg and header.get('HIERARCH ESO DPR CATG') != catg:
            continue
        out.append(path)
    return out


def test_upload_quarantines_broken_files_and_refuses_other_programmes(
        portal_server, portal_archive, small_night, private_sequence, tmp_path):
    base, archive = portal_server, portal_archive
    uploads = Path(archive.database.settings.uploads_dir)
    science = _night_files(small_night, PRIVATE_PROG, 'SCIENCE')[0]
    calib = _night_files(small_night, catg='CALIB')[0]
    public = _night_files(small_night, '0115.C-0123', 'SCIENCE')[0]
    broken = tmp_path / 'SPHER.broken.fits'
    broken.write_bytes(science.read_bytes()[:20000])  # a header, then the data cut short

    alice = _session(base, archive, 'pi')
    token = csrf_token(alice, base, '/requests/new')
    form = {'csrf_token': token, 'prog_id': PRIVATE_PROG, 'algorithm': 'pca'}

    # A file of another programme: the whole upload is refused, nothing kept.
    n = _n_requests(archive)
    kept = sorted(p.name for p in uploads.rglob('*')) if uploads.exists() else []
    with open(science, 'rb') as a, open(public, 'rb') as b:
        resp = alice.post(f'{base}/requests/new', data=form,
                          files=[('files', (science.name, a)), ('files', (public.name, b))])
    assert resp.status_code == 400 and 'not of programme' in resp.text, resp.text[-1500:]
    assert public.name in resp.text and '0115.C-0123' in resp.text
    assert _n_requests(archive) == n
    now = sorted(p.name for p in uploads.rglob('*')) if uploads.exists() else []
    assert [p for p in now if p.startswith('SPHER')] == [p for p in kept
                                                          if p.startswith('SPHER')]

    # Science of the programme, a calibration and a broken file: the broken one is
    # quarantined and reported, the request made.
    with open(science, 'rb') as a, open(calib, 'rb') as b, open(broken, 'rb') as c:
        resp = alice.post(f'{base}/requests/new', data=form, allow_redirects=False,
                          files=[('files', (science.name, a)), ('files', (calib.name, b)),
                                 ('files', (broken.name, c))])
    assert resp.status_code == 303, resp.text[:1000]
    rid = int(re.search(r'/requests/(\d+)$', resp.headers['Location']).group(1))
    row = archive.query('SELECT source, upload_dir, sequence_ids, state FROM '
                        'requests.reductions WHERE request_id = %s', (rid,))[0]
    assert row[0] == 'upload' and row[3] == 'submitted'
    assert Path(row[1]) == uploads / str(rid)
    assert private_sequence[1] in row[2]
    assert (uploads / str(rid) / broken.name).read_bytes() == broken.read_bytes()
    q = archive.query('SELECT reason_code, archive_path FROM sphere.quarantine WHERE '
                      'source_path = %s', (str(uploads / str(rid) / broken.name),))
    assert q, 'the broken file is not in the quarantine'
    assert (Path(archive.database.settings.home) / q[0][1]).is_file() or Path(q[0][1]).is_file()
    page = alice.get(f'{base}/requests/{rid}').text
    assert '1 quarantined' in page and broken.name in page
    # Staff accept an upload request on the sequences of its files.
    resp = _api(base, 'POST', f'/api/requests/{rid}/reject', archive, 'staff',
                json={'reason': 'test upload, not to be reduced'})
    assert resp.status_code == 200


def test_upload_of_raw_files_beyond_the_tap_upload_limit(portal_server, portal_archive,
                                                         small_night):
    """Raw SPHERE files weigh megabytes: an upload is bounded by upload_max_bytes
    (2 GiB by default), not by the site's limit on TAP table uploads."""
    from vo.query import Limits

    base, archive = portal_server, portal_archive
    files = _night_files(small_night, PRIVATE_PROG, 'SCIENCE')
    files += _night_files(small_night, catg='CALIB')
    total, chosen = 0, []
    for path in files:
        chosen.append(path)
        total += path.stat().st_size
        if total > Limits().upload_bytes + 2_000_000:
            break
    assert total > Limits().upload_bytes + 2_000_000, 'not enough files for the test'
    assert total < archive.database.settings.upload_max_bytes
    alice = _session(base, archive, 'pi')
    token = csrf_token(alice, base, '/requests/new')
    handles = [open(p, 'rb') for p in chosen]
    try:
        resp = alice.post(f'{base}/requests/new', allow_redirects=False,
                          data={'csrf_token': token, 'prog_id': PRIVATE_PROG},
                          files=[('files', (p.name, h)) for p, h in zip(chosen, handles)])
    finally:
        for h in handles:
            h.close()
    assert resp.status_code == 303, resp.text[:500]
    rid = int(re.search(r'/requests/(\d+)$', resp.headers['Location']).group(1))
    page = alice.get(f'{base}/requests/{rid}').text
    assert f'upload of {len(chosen)} files' in page
    assert f'{len(chosen)} already in the archive' in page
    _api(base, 'POST', f'/api/requests/{rid}/reject', archive, 'staff',
         json={'reason': 'test upload, not to be reduced'})


def test_save_uploads_refuses_more_than_the_limit(tmp_path):
    import hashlib
    import io

    from werkzeug.datastructures import FileStorage

    from web.requests_views import InputRefused, save_uploads

    files = [FileStorage(io.BytesIO(b'x' * 600), filename='../../a.fits'),
             FileStorage(io.BytesIO(b'y' * 600), filename='a.fits')]
    with pytest.raises(InputRefused, match='larger than the limit') as err:
        save_uploads(files, tmp_path / 'up', max_bytes=1000)
    assert err.value.http_status == 413 and not (tmp_path / 'up').exists()
    files = [FileStorage(io.BytesIO(b'x' * 600), filename='../../a.fits'),
             FileStorage(io.BytesIO(b'y' * 300), filename='a.fits'),
             FileStorage(io.BytesIO(b'z'), filename='SPHER.2025-04-13T05:38:41.000.fits'),
             FileStorage(io.BytesIO(b'w'), filename='..'),
             FileStorage(io.BytesIO(b'v'), filename='C:\\x\\<b>.fits')]
    saved = save_uploads(files, tmp_path / 'up2', max_bytes=1000)
    assert [p.name for p, _ in saved] == ['a.fits', '2-a.fits',
                                          'SPHER.2025-04-13T05:38:41.000.fits',
                                          'upload-4.fits', 'b.fits']
    assert saved[0][1] == hashlib.sha256(b'x' * 600).hexdigest()
    assert all(p.parent == tmp_path / 'up2' for p, _ in saved)


# --- the worker on its own -----------------------------------------------------------------

WPI = 'rw-pi'
WSTAFF = 'rw-staff'
WPROG = '0104.C-0888'


def _users(conn):
    from archive.accounts import add_membership, create_user, get_user

    for name, staff in ((WPI, False), (WSTAFF, True)):
        if get_user(conn, name) is None:
            create_user(conn, name, 'a-long-password', email=f'{name}@example.org',
                        is_staff=staff)
    add_membership(conn, WPI, WPROG, 'PI')
    return get_user(conn, WPI), get_user(conn, WSTAFF)


def _queued(conn, pi, staff, priority=90):
    from archive import requests as rq

    req = rq.submit(conn, pi, WPROG)
    rq.accept(conn, req.request_id, staff, ['RW.NO-SUCH-SEQUENCE'])
    rq.set_priority(conn, req.request_id, staff, priority)
    return req.request_id


def test_recover_requeues_only_requests_of_dead_workers(database):
    from archive import requests as rq
    from web.requests_worker import RequestWorker

    proc = subprocess.Popen(['true'])
    proc.wait()  # its pid is now free: a dead worker of this host
    host = socket.gethostname()
    with database.connect(autocommit=True) as conn:
        pi, staff = _users(conn)
        ids = [_queued(conn, pi, staff, 100) for _ in range(3)]
        actors = [f'worker {host}:{proc.pid}', 'worker elsewhere:1',
                  f'worker {host}:{os.getpid()}']
        for rid, actor in zip(ids, actors):
            assert rq.claim_next(conn, actor).request_id == rid
        assert RequestWorker(database, workers=0).recover() == [ids[0]]
        states = [rq.get_request(conn, r).state for r in ids]
        assert states == ['queued', 'running', 'running']
        note = rq.request_events(conn, ids[0])[-1].note
        assert str(proc.pid) in note and 'queued again' in note
        rq.claim_next(conn, 'worker test:0')
        for rid in ids:
            rq.mark_failed(conn, rid, 'worker test:0', 'test over')


class _SMTPSink(socketserver.ThreadingTCPServer):
    """The smallest SMTP server that accepts mail (RFC 5321 happy path)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), _SMTPHandler)
        self.messages = []


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self):
        def say(text):
            self.wfile.write(text.encode() + b'\r\n')

        say('220 sink ESMTP')
        data, lines = False, []
        while line := self.rfile.readline():
            text = line.decode().rstrip('\r\n')
            if data:
                if text == '.':
                    self.server.messages.append('\n'.join(lines))
                    data, lines = False, []
                    say('250 queued')
                else:
                    lines.append(text[1:] if text.startswith('..') else text)
            elif text[:4].upper() == 'DATA':
                data = True
                say('354 end with .')
            elif text[:4].upper() == 'QUIT':
                say('221 bye')
                return
            else:  # EHLO, MAIL FROM, RCPT TO, RSET, NOOP
                say('250 ok')


def test_outbox_goes_out_by_smtp_and_failures_are_kept_for_later(database):
    from archive import requests as rq
    from web.requests_worker import send_outbox

    sink = _SMTPSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    relay = f'127.0.0.1:{sink.server_address[1]}'
    with socket.socket() as s:  # a port where nothing listens
        s.bind(('127.0.0.1', 0))
        closed = f'127.0.0.1:{s.getsockname()[1]}'
    try:
        with database.connect(autocommit=True) as conn:
            while send_outbox(conn, relay, 'dc@example.org')[0]:
                pass  # what other tests left in the shared outbox goes first
            pi, staff = _users(conn)
            req = rq.submit(conn, pi, WPROG)
            rq.reject(conn, req.request_id, staff, 'smtp test')
            assert send_outbox(conn, closed, 'dc@example.org') == (0, 1)
            (msg,) = rq.messages_for(conn, WPI, req.request_id)
            assert msg.sent_at is None and 'cannot reach' in msg.send_error
            assert send_outbox(conn, relay, 'dc@example.org',
                               retry_failed=False) == (0, 0)  # failures wait for a retry
            assert send_outbox(conn, relay, 'dc@example.org') == (1, 0)
    finally:
        sink.shutdown()
        sink.server_close()
    with database.connect(autocommit=True) as conn:
        (msg,) = rq.messages_for(conn, WPI, req.request_id)
        assert msg.sent_at is not None and msg.send_error is None
        mine = [m for m in sink.messages if f'request #{req.request_id} rejected' in m]
        assert len(mine) == 1
        assert 'To: rw-pi@example.org' in mine[0] and 'Reason: smtp test' in mine[0]


def test_worker_survives_a_database_outage(tmp_path, caplog):
    from archive import requests as rq
    from archive.config import Settings
    from archive.db import Database
    from web.requests_worker import RequestWorker

    db = Database(Settings(home=tmp_path / 'home'))
    db.ensure_ready()
    worker = RequestWorker(db, workers=1, poll_s=0.2, use_dask=False)
    try:
        worker.ensure_started()
        time.sleep(0.5)
        db.cluster.stop()
        time.sleep(2.0)
        assert all(t.is_alive() for t in worker._threads)
        assert any('cannot claim' in r.getMessage() for r in caplog.records)
        db.cluster.start()
        with db.connect(autocommit=True) as conn:
            pi, staff = _users(conn)
            rid = _queued(conn, pi, staff)
        worker.notify()
        deadline = time.monotonic() + 90
        with db.connect(autocommit=True) as conn:
            while (req := rq.get_request(conn, rid)).state not in ('done', 'failed'):
                assert time.monotonic() < deadline, req.state
                time.sleep(0.3)
            assert req.state == 'failed'
            assert 'RW.NO-SUCH-SEQUENCE: no longer in the archive' in req.reason
    finally:
        worker.stop()
        if db.cluster.is_running():
            db.cluster.stop()
        shutil.rmtree(tmp_path / 'home', ignore_errors=True)


def test_staff_command_line(database):
    import json
    import sys

    from archive import requests as rq
    from tests.conftest import REPO

    def cli(*args):
        return subprocess.run([sys.executable, '-m', 'spheredc.requests_cmd', *map(str, args)],
                              cwd=REPO, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, SPHEREDC_HOME=str(database.settings.home)))

    with database.connect(autocommit=True) as conn:
        pi, staff = _users(conn)
        to_reject = rq.submit(conn, pi, WPROG).request_id
        no_data = rq.submit(conn, pi, WPROG, ['2031-02-03']).request_id
        queued = _queued(conn, pi, staff, priority=100)
    proc = cli('list', '--state', 'submitted', '--json')
    assert proc.returncode == 0, proc.stderr
    ids = {r['request_id']: r for r in json.loads(proc.stdout)}
    assert {to_reject, no_data} <= set(ids) and queued not in ids
    proc = cli('reject', to_reject, '--as', WPI, '--reason', 'no')
    assert proc.returncode == 1 and 'not an enabled staff account' in proc.stderr
    proc = cli('reject', to_reject, '--as', WSTAFF, '--reason', 'done by hand already')
    assert proc.returncode == 0 and 'rejected' in proc.stdout
    proc = cli('accept', no_data, '--as', WSTAFF)
    assert proc.returncode == 1 and 'covers no sequence' in proc.stderr
    proc = cli('accept', to_reject, '--as', WSTAFF)
    assert proc.returncode == 1 and 'rejected cannot become accepted' in proc.stderr
    proc = cli('work', '--once', '--no-dask', '--json')
    assert proc.returncode == 1, proc.stderr  # the request failed: no such sequence
    (ran,) = json.loads(proc.stdout)
    assert ran['request_id'] == queued and ran['state'] == 'failed'
    assert 'no longer in the archive' in ran['reason']
    with database.connect(autocommit=True) as conn:
        assert rq.get_request(conn, to_reject).reason == 'done by hand already'
        rq.reject(conn, no_data, staff, 'test over')
