"""Async TAP (UWS 1.1): job life cycle, filters, WAIT, duration limit, deletion, restarts."""
import datetime
import io
import re
import socket
import time

import requests
from astropy.io.votable import parse_single_table

SLOW = ('SELECT COUNT(*) AS n FROM tap_schema.columns AS a, tap_schema.columns AS b, '
        'tap_schema.columns AS c, tap_schema.columns AS d')


def _create(url, headers=None, **params):
    params.setdefault('LANG', 'ADQL')
    resp = requests.post(url + '/tap/async', data=params, allow_redirects=False, timeout=30,
                         headers=headers)
    assert resp.status_code == 303
    return resp.headers['Location']


def _phase(job):
    return requests.get(job + '/phase', timeout=10).text


def _wait_final(job, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while _phase(job) in ('PENDING', 'QUEUED', 'EXECUTING'):
        assert time.monotonic() < deadline, 'job did not finish'
        requests.get(job, params={'WAIT': 5}, timeout=30)
    return _phase(job)


def test_job_lifecycle(vo_server):
    job = _create(vo_server, QUERY='SELECT TOP 2 table_name FROM tap_schema.tables',
                  RUNID='run-7')
    doc = requests.get(job, timeout=10).text
    assert '<uws:phase>PENDING</uws:phase>' in doc and '<uws:runId>run-7</uws:runId>' in doc
    assert '<uws:parameter id="query">' in doc
    # parameters may change while PENDING
    requests.post(job + '/parameters', data={'MAXREC': '1'}, timeout=10)
    assert '<uws:parameter id="maxrec">1</uws:parameter>' in requests.get(job, timeout=10).text
    resp = requests.post(job + '/phase', data={'PHASE': 'RUN'}, allow_redirects=False,
                         timeout=10)
    assert resp.status_code == 303
    assert _wait_final(job) == 'COMPLETED'
    results = requests.get(job + '/results', timeout=10).text
    assert 'xlink:href="' + job + '/results/result"' in results
    table = parse_single_table(io.BytesIO(
        requests.get(job + '/results/result', timeout=10).content)).to_table()
    assert len(table) == 1  # MAXREC=1 was applied
    assert int(requests.get(job + '/executionduration', timeout=10).text) > 0
    assert requests.get(job + '/quote', timeout=10).status_code == 200
    assert requests.get(job + '/owner', timeout=10).status_code == 200
    # finished jobs refuse parameter changes
    assert requests.post(job + '/parameters', data={'MAXREC': '3'},
                         timeout=10).status_code == 400


def test_error_job_and_error_document(vo_server):
    job = _create(vo_server, QUERY='SELECT nope FROM sphere.candidates', PHASE='RUN')
    assert _wait_final(job) == 'ERROR'
    doc = requests.get(job, timeout=10).text
    assert '<uws:errorSummary type="fatal" hasDetail="true">' in doc
    err = requests.get(job + '/error', timeout=10)
    assert 'value="ERROR"' in err.text and 'nope' in err.text


def test_blocking_wait_returns_on_phase_change(vo_server):
    job = _create(vo_server, QUERY='SELECT TOP 1 * FROM tap_schema.schemas')
    start = time.monotonic()
    requests.get(job, params={'WAIT': 1}, timeout=10)  # PENDING: waits the full second
    assert time.monotonic() - start >= 0.9
    requests.post(job + '/phase', data={'PHASE': 'RUN'}, timeout=10)
    start = time.monotonic()
    requests.get(job, params={'WAIT': 30, 'PHASE': 'QUEUED'}, timeout=40)
    assert time.monotonic() - start < 20


def test_execution_duration_kills_the_query(vo_server):
    job = _create(vo_server, QUERY=SLOW, EXECUTIONDURATION='1', PHASE='RUN')
    start = time.monotonic()
    assert _wait_final(job) == 'ERROR'
    assert time.monotonic() - start < 15
    # the statement timeout or, on a loaded machine, the maintenance thread ends it first
    assert re.search('cancel|execution duration', requests.get(job + '/error', timeout=10).text)


def test_abort_and_delete(vo_server):
    job = _create(vo_server, QUERY=SLOW, PHASE='RUN')
    time.sleep(0.5)
    requests.post(job + '/phase', data={'PHASE': 'ABORT'}, timeout=10)
    assert _phase(job) == 'ABORTED'
    resp = requests.post(job, data={'ACTION': 'DELETE'}, allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and resp.headers['Location'].endswith('/tap/async')
    assert requests.get(job, timeout=10).status_code == 404
    other = _create(vo_server, QUERY='SELECT 1 AS one FROM tap_schema.schemas')
    assert requests.delete(other, allow_redirects=False, timeout=10).status_code == 303
    assert requests.get(other + '/phase', timeout=10).status_code == 404


def test_job_list_filters(vo_server, database):
    from archive import accounts

    with database.connect() as conn:
        accounts.create_user(conn, 'uws-lister', 'a-long-password')
        auth = {'Authorization': 'Bearer ' + accounts.create_token(conn, 'uws-lister')}
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    a = _create(vo_server, auth, QUERY='SELECT 1 AS one FROM tap_schema.schemas')
    b = _create(vo_server, auth, QUERY='SELECT 2 AS two FROM tap_schema.schemas')
    anonymous = _create(vo_server, QUERY='SELECT 3 AS three FROM tap_schema.schemas')
    ids = [u.rsplit('/', 1)[1] for u in (a, b)]

    def listing(**params):
        return requests.get(vo_server + '/tap/async', params=params, headers=auth,
                            timeout=10).text

    pending = listing(PHASE='PENDING')
    assert all(f'id="{i}"' in pending for i in ids) and 'COMPLETED' not in pending
    # Only the caller's own jobs: not the anonymous one, and anonymous callers list none.
    assert anonymous.rsplit('/', 1)[1] not in pending
    assert '<uws:jobref' not in requests.get(vo_server + '/tap/async', timeout=10).text
    last = listing(LAST=1)
    assert last.count('<uws:jobref') == 1 and f'id="{ids[1]}"' in last
    after = listing(AFTER=before.strftime('%Y-%m-%dT%H:%M:%S.%fZ'))
    assert all(f'id="{i}"' in after for i in ids)
    assert requests.get(vo_server + '/tap/async', params={'LAST': 'x'},
                        timeout=10).status_code == 400
    # Another user's job does not exist for an anonymous caller.
    assert requests.get(a + '/phase', timeout=10).status_code == 404
    assert requests.get(a + '/phase', headers=auth, timeout=10).text == 'PENDING'


def test_destruction_and_unknown_job(vo_server):
    job = _create(vo_server, QUERY='SELECT 1 AS one FROM tap_schema.schemas')
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2))
    requests.post(job + '/destruction', data={'DESTRUCTION': soon.isoformat()}, timeout=10)
    assert requests.get(job + '/destruction', timeout=10).text.startswith(
        soon.strftime('%Y-%m-%dT%H:%M:%S'))
    deadline = time.monotonic() + 15
    while requests.get(job, timeout=10).status_code != 404:
        assert time.monotonic() < deadline, 'job was not destroyed'
        time.sleep(0.5)
    assert requests.get(vo_server + '/tap/async/nosuchjob', timeout=10).status_code == 404
    assert requests.post(job.rsplit('/', 1)[0] + '/x/phase', data={'PHASE': 'RUN'},
                         timeout=10).status_code == 404


def test_jobs_of_a_dead_worker_are_queued_again(database, vo_archive):
    from vo.query import Limits, QueryPool
    from vo.params import Params
    from vo.uws_runner import JobManager

    pool = QueryPool(database, size=1)
    manager = JobManager(database, pool, Limits(), workers=0)
    try:
        job = manager.store.create(Params([('LANG', 'ADQL'), ('QUERY', 'SELECT 1 AS x FROM '
                                                                       'tap_schema.schemas')]), {})
        # a worker process that died while executing it (pid 2**22 + 1 cannot exist)
        manager.store.update(job.job_id, phase='EXECUTING',
                             worker=f'{socket.gethostname()}:{2 ** 22 + 1}')
        manager.recover()
        # queued again: a running server may claim it at once, else this manager does
        assert manager.store.get(job.job_id).phase in ('QUEUED', 'EXECUTING', 'COMPLETED')
        claimed = manager.claim()
        if claimed is not None:
            manager.run(claimed)
        deadline = time.monotonic() + 20
        while manager.store.get(job.job_id).phase != 'COMPLETED':
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert manager.store.get(job.job_id).result_path
    finally:
        manager.store.delete(job.job_id)
        pool.close()
