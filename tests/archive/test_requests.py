"""Reduction requests: validation rules and the state machine on the real database."""
import datetime

import pytest

from archive import request_rules
from archive import requests as rq
from archive.accounts import User

PROG = '0104.C-0777'
PI = User('req-pi', 'Req Pi', 'req-pi@example.org', False, {PROG: 'PI'})
COI = User('req-coi', None, None, False, {PROG + '(A)': 'CoI'})
STRANGER = User('req-stranger', None, None, False, {'0999.Z-0002': 'PI'})
STAFF = User('req-staff', 'Req Staff', None, True, {})


@pytest.fixture(scope='module')
def conn(database):
    """An owner connection with the users of these tests (autocommit: each change is
    its own transaction, as in the server)."""
    from archive.accounts import create_user

    with database.connect(autocommit=True) as c:
        for user in (PI, COI, STRANGER, STAFF):
            if c.execute('SELECT 1 FROM accounts.users WHERE username = %s',
                         (user.username,)).fetchone() is None:
                create_user(c, user.username, 'a-long-password', full_name=user.full_name,
                            email=user.email, is_staff=user.is_staff)
        yield c


def _count(conn, table, request_id):
    return conn.execute(f'SELECT count(*) FROM requests.{table} WHERE request_id = %s',
                        (request_id,)).fetchone()[0]


def _rows(conn):
    return conn.execute('SELECT count(*) FROM requests.reductions').fetchone()[0]


# --- pure rules ---------------------------------------------------------------------------

def test_transitions_follow_the_documented_graph():
    path = ['submitted', 'accepted', 'queued', 'running', 'done']
    for a, b in zip(path, path[1:]):
        rq.check_transition(a, b)
    rq.check_transition('submitted', 'rejected')
    rq.check_transition('running', 'failed')
    rq.check_transition('failed', 'queued')
    for a, b in [('submitted', 'running'), ('done', 'queued'), ('rejected', 'accepted'),
                 ('queued', 'done'), ('accepted', 'rejected'), ('done', 'failed')]:
        with pytest.raises(rq.IllegalTransition, match=f'{a} cannot become {b}'):
            rq.check_transition(a, b)


def test_algorithms_are_those_of_the_engine():
    from reduction.level2.params import ALGORITHMS

    assert set(rq.ALGORITHMS) <= set(ALGORITHMS)
    assert set(rq.PCA_ALGORITHMS) <= set(rq.ALGORITHMS)


def test_frame_selection_options_exist_in_the_engine():
    import dataclasses

    from reduction.level1.params import SelectionParams

    assert set(request_rules.FRAME_SELECTION) <= {f.name for f in dataclasses.fields(SelectionParams)}


def test_parameters_are_normalised():
    assert rq.validate_parameters(None) == {'algorithm': 'pca'}
    assert rq.validate_parameters({'components': [5, 3, 5]}) == {'algorithm': 'pca',
                                                                 'components': [3, 5]}
    assert rq.validate_parameters({'algorithm': 'median'}) == {'algorithm': 'median'}
    got = rq.validate_parameters({'frame_selection': {'z_max': 4, 'r_in_px': 5,
                                                      'r_out_px': 30.5}})
    assert got['frame_selection'] == {'z_max': 4.0, 'r_in_px': 5.0, 'r_out_px': 30.5}
    assert rq.validate_nights(['2025-04-13', '2025-04-12', '2025-04-13']) == ['2025-04-12',
                                                                              '2025-04-13']
    assert rq.validate_modes(['IRDIS-DBI']) == ['IRDIS-DBI']


@pytest.mark.parametrize('parameters, message', [
    ('pca', 'must be an object'),
    ({'algo': 'pca'}, 'unknown parameter'),
    ({'algorithm': 'loci'}, 'not one the engine knows'),
    ({'algorithm': 'median', 'components': 3}, 'PCA algorithms only'),
    ({'components': 0}, 'from 1 to 50'),
    ({'components': 51}, 'from 1 to 50'),
    ({'components': 10 ** 30}, 'from 1 to 50'),
    ({'components': True}, 'from 1 to 50'),
    ({'components': 2.5}, 'from 1 to 50'),
    ({'components': '5'}, 'from 1 to 50'),
    ({'components': []}, 'give 1 to 10'),
    ({'components': list(range(1, 12))}, 'give 1 to 10'),
    ({'frame_selection': {'z_max': 'high'}}, 'z_max must be a number'),
    ({'frame_selection': {'z_max': float('nan')}}, 'z_max must be a number'),
    ({'frame_selection': {'z_max': 1e9}}, 'z_max must be a number'),
    ({'frame_selection': {'drop': 1}}, 'unknown option'),
    ({'frame_selection': {'r_in_px': 5}}, 'give both'),
    ({'frame_selection': {'r_in_px': 50, 'r_out_px': 40}}, 'smaller than'),
    ({'frame_selection': [1]}, 'must be an object'),
])
def test_bad_parameters_are_refused_with_a_reason(parameters, message):
    with pytest.raises(rq.RequestError, match=message):
        rq.validate_parameters(parameters)


@pytest.mark.parametrize('nights', [['2025-4-12'], ['2025-02-30'], [20250412], 'yesterday',
                                    {'night': 1}, ['2025-04-12'] * 400,
                                    ["2025-04-12'; DROP TABLE requests.reductions; --"]])
def test_bad_nights_are_refused(nights):
    with pytest.raises(rq.RequestError):
        rq.validate_nights(nights)


@pytest.mark.parametrize('modes', [['IRDIS'], ['<script>'], 'DBI', [1]])
def test_bad_modes_are_refused(modes):
    with pytest.raises(rq.RequestError, match='mode'):
        rq.validate_modes(modes)


def test_only_members_may_submit():
    assert rq.validate_submission(PI, PROG)[0] == PROG
    assert rq.validate_submission(COI, PROG + '(A)')[0] == PROG + '(A)'
    with pytest.raises(rq.RequestForbidden, match='only the PI or a CoI'):
        rq.validate_submission(COI, PROG)  # a CoI of one run is not one of the programme
    with pytest.raises(rq.RequestForbidden):
        rq.validate_submission(STRANGER, PROG)
    with pytest.raises(rq.RequestForbidden):
        rq.validate_submission(STAFF, PROG)
    with pytest.raises(rq.RequestError, match='not a programme identifier'):
        rq.validate_submission(PI, '<script>alert(1)</script>')


# --- on the database ----------------------------------------------------------------------

def test_refused_submissions_write_nothing(conn):
    before = _rows(conn)
    for user, prog, params in [(STRANGER, PROG, None), (PI, PROG, {'components': 99}),
                               (PI, "x'; DELETE FROM requests.reductions; --", None)]:
        with pytest.raises(rq.RequestError):
            rq.submit(conn, user, prog, ['2025-04-12'], [], params)
    assert _rows(conn) == before


def test_life_of_a_request(conn):
    req = rq.submit(conn, PI, PROG, ['2025-04-12'], ['IRDIS-DBI'], {'components': 3})
    assert req.state == 'submitted' and req.requester == PI.username
    assert req.parameters == {'algorithm': 'pca', 'components': 3}
    assert [e.state for e in rq.request_events(conn, req.request_id)] == ['submitted']

    with pytest.raises(rq.RequestForbidden):
        rq.accept(conn, req.request_id, PI, ['S1'])
    with pytest.raises(rq.RequestError, match='covers no sequence'):
        rq.accept(conn, req.request_id, STAFF, [])
    assert rq.get_request(conn, req.request_id).state == 'submitted'

    req = rq.accept(conn, req.request_id, STAFF, ['S2', 'S1'], note='fine')
    assert req.state == 'queued' and req.sequence_ids == ['S1', 'S2']
    events = rq.request_events(conn, req.request_id)
    assert [e.state for e in events] == ['submitted', 'accepted', 'queued']
    assert events[1].actor == STAFF.username and events[1].note == 'fine'
    (msg,) = rq.messages_for(conn, PI.username, req.request_id)
    assert 'accepted' in msg.subject and msg.email == PI.email and msg.sent_at is None
    assert f'#{req.request_id}' in msg.body

    with pytest.raises(rq.IllegalTransition, match='queued cannot become accepted'):
        rq.accept(conn, req.request_id, STAFF, ['S1'])
    with pytest.raises(rq.IllegalTransition):
        rq.mark_done(conn, req.request_id, 'w', [], [])   # not running yet

    # Other queued requests may exist (other tests): claim until ours comes.
    claimed = []
    while (got := rq.claim_next(conn, 'worker here:1')) is not None:
        claimed.append(got)
        if got.request_id == req.request_id:
            break
    assert claimed[-1].request_id == req.request_id and claimed[-1].state == 'running'
    assert (req.request_id, 'worker here:1') in rq.running_requests(conn)

    req = rq.mark_done(conn, req.request_id, 'worker here:1', ['run-1'], ['p1', 'p2'],
                       note='1 of 1 sequences reduced')
    assert (req.state, req.run_ids, req.product_ids) == ('done', ['run-1'], ['p1', 'p2'])
    msgs = rq.messages_for(conn, PI.username, req.request_id)
    assert [('done' in m.subject) for m in msgs] == [True, False]
    assert '2 products' in msgs[0].body and '1 of 1 sequences reduced' in msgs[0].body
    for bad in (lambda: rq.mark_failed(conn, req.request_id, 'w', 'x'),
                lambda: rq.reject(conn, req.request_id, STAFF, 'late'),
                lambda: rq.requeue(conn, req.request_id, STAFF),
                lambda: rq.set_priority(conn, req.request_id, STAFF, 3)):
        with pytest.raises(rq.IllegalTransition):
            bad()
    assert rq.get_request(conn, req.request_id).state == 'done'
    for c in claimed[:-1]:  # give back what this test took from others
        rq.mark_failed(conn, c.request_id, 'worker here:1', 'claimed by a test')


def test_reject_needs_a_reason_and_tells_the_requester(conn):
    req = rq.submit(conn, PI, PROG)
    with pytest.raises(rq.RequestError, match='reason'):
        rq.reject(conn, req.request_id, STAFF, '  ')
    with pytest.raises(rq.RequestForbidden):
        rq.reject(conn, req.request_id, PI, 'no')
    req = rq.reject(conn, req.request_id, STAFF, 'the nights hold no data of yours')
    assert req.state == 'rejected' and req.reason == 'the nights hold no data of yours'
    (msg,) = rq.messages_for(conn, PI.username, req.request_id)
    assert 'rejected' in msg.subject and 'Reason: the nights hold no data' in msg.body


def test_requests_are_private_to_their_requester(conn):
    req = rq.submit(conn, PI, PROG)
    assert rq.get_request(conn, req.request_id, PI).request_id == req.request_id
    assert rq.get_request(conn, req.request_id, STAFF).request_id == req.request_id
    with pytest.raises(rq.RequestNotFound):
        rq.get_request(conn, req.request_id, STRANGER)
    with pytest.raises(rq.RequestNotFound):
        rq.get_request(conn, 2 ** 70, PI)
    assert req.request_id not in [r.request_id for r in rq.list_requests(conn, STRANGER)]
    assert req.request_id in [r.request_id for r in rq.list_requests(conn, PI)]
    assert req.request_id in [r.request_id for r in rq.list_requests(conn, STAFF)]


def test_claim_order_priority_then_age_and_skip_locked(database, conn):
    from archive.requests import claim_next

    a = rq.accept(conn, rq.submit(conn, PI, PROG).request_id, STAFF, ['S1'])
    b = rq.accept(conn, rq.submit(conn, PI, PROG).request_id, STAFF, ['S1'])
    c = rq.accept(conn, rq.submit(conn, PI, PROG).request_id, STAFF, ['S1'])
    with pytest.raises(rq.RequestError, match='priority'):
        rq.set_priority(conn, c.request_id, STAFF, 10 ** 9)
    with pytest.raises(rq.RequestError, match='priority'):
        rq.set_priority(conn, c.request_id, STAFF, '5')
    rq.set_priority(conn, c.request_id, STAFF, 50)
    for r in (a, b):  # ahead of anything else that may be queued in the shared database
        rq.set_priority(conn, r.request_id, STAFF, 20)
    assert rq.get_request(conn, c.request_id).priority == 50
    assert 'priority 0 -> 50' in rq.request_events(conn, c.request_id)[-1].note

    mine = {a.request_id, b.request_id, c.request_id}
    # Two workers at once: the first holds its claim uncommitted, the second skips it.
    with database.connect() as first, database.connect() as second:
        got1 = claim_next(first, 'worker one:1')
        got2 = claim_next(second, 'worker two:2')
        second.commit()
        first.commit()
    assert got1.request_id == c.request_id  # highest priority first
    assert got2.request_id == a.request_id  # then the oldest
    got3 = claim_next(conn, 'worker three:3')
    assert got3.request_id == b.request_id
    assert {got1.request_id, got2.request_id, got3.request_id} == mine


def test_failed_requests_can_be_queued_again_and_lost_ones_recovered(conn):
    req = rq.accept(conn, rq.submit(conn, PI, PROG).request_id, STAFF, ['S1'])
    rq.set_priority(conn, req.request_id, STAFF, 100)  # ahead of anything else queued
    assert rq.claim_next(conn, 'worker w:1').request_id == req.request_id
    req = rq.mark_failed(conn, req.request_id, 'worker w:1', 'the flat is missing')
    assert req.state == 'failed' and req.reason == 'the flat is missing'
    (msg,) = [m for m in rq.messages_for(conn, PI.username, req.request_id)
              if 'failed' in m.subject]
    assert 'Reason: the flat is missing' in msg.body
    with pytest.raises(rq.RequestForbidden):
        rq.requeue(conn, req.request_id, PI)
    req = rq.requeue(conn, req.request_id, STAFF)
    assert req.state == 'queued' and req.reason is None
    assert rq.claim_next(conn, 'worker w:2').request_id == req.request_id
    req = rq.requeue_lost(conn, req.request_id, 'worker w:3', 'w:2 died')
    assert req.state == 'queued'
    states = [e.state for e in rq.request_events(conn, req.request_id)]
    assert states == ['submitted', 'accepted', 'queued', 'queued', 'running', 'failed',
                      'queued', 'running', 'queued']
    rq.claim_next(conn, 'worker w:4')
    rq.mark_failed(conn, req.request_id, 'worker w:4', 'cleanup')


def test_matching_sequences_by_programme_night_and_mode(database):
    rows = [('RQ.IRDIS.1', 'IRDIS', 'DBI', '2031-01-01', PROG + '(A)', 1.0),
            ('RQ.IRDIS.2', 'IRDIS', 'CI', '2031-01-01', PROG + '(B)', 2.0),
            ('RQ.IFS.1', 'IFS', 'OBS_YJ', '2031-01-02', PROG + '(A)', 3.0),
            ('RQ.OTHER.1', 'IRDIS', 'DBI', '2031-01-01', '0999.Z-0002(A)', 4.0)]
    with database.connect() as c:  # rolled back: the shared database is left as it was
        with c.cursor() as cur:
            cur.executemany('INSERT INTO sphere.sequences (sequence_id, arm, ins_mode, night, '
                            'prog_id, mjd_start) VALUES (%s, %s, %s, %s, %s, %s)', rows)

        def fetch(sql, params):
            return c.execute(sql, params).fetchall()

        def found(*args):
            return [s for s in rq.matching_sequences(fetch, *args) if s.startswith('RQ.')]

        assert found(PROG) == ['RQ.IRDIS.1', 'RQ.IRDIS.2', 'RQ.IFS.1']
        assert found(PROG + '(A)') == ['RQ.IRDIS.1', 'RQ.IFS.1']
        assert found(PROG, ['2031-01-01']) == ['RQ.IRDIS.1', 'RQ.IRDIS.2']
        assert found(PROG, [], ['IRDIS-CI', 'IFS-YJ']) == ['RQ.IRDIS.2', 'RQ.IFS.1']
        assert found(PROG, ['2031-01-02'], ['IRDIS-DBI']) == []
        c.rollback()


def test_as_json_hides_the_upload_folder(conn):
    req = rq.submit(conn, PI, PROG, source='upload', upload_dir='/srv/uploads/x')
    out = req.as_json()
    assert 'upload_dir' not in out and out['source'] == 'upload'
    assert out['created_at'].endswith('Z')
    datetime.datetime.fromisoformat(out['created_at'][:-1])
