"""Reduction requests of PIs and CoIs: validation, states, history and messages.

A request names a programme (ESO OBS PROG ID), nights, modes and reduction
parameters. It moves through these states::

    submitted --accept--> accepted --(at once)--> queued --claim--> running --> done
        |                                           ^                  |
        +--reject--> rejected                       +----requeue-------+--> failed

Staff accept (the request is then queued for the workers at once), reject
(with a reason) or re-prioritise; a worker claims the queued request of
highest priority, oldest first, and marks it done or failed; staff may queue
a failed request again, and a worker that died leaves its ``running``
request to be queued again by `requeue_lost`.

`check_transition` and the ``validate_*`` functions (`archive.request_rules`)
are pure. The other functions take an open psycopg connection of the archive's owner and make
each change in one transaction (a savepoint when the caller already has one
open): the ``requests.reductions`` row, a ``requests.events`` row and, when
the requester must hear of it (accepted, rejected, done, failed), a
``requests.outbox`` message. The caller commits.

What a request *covers* (its sequences) is resolved through the caller's
``fetch`` (`matching_sequences`), so that the web layer can run it under the
database's row-level security for the requester.
"""
import dataclasses
import datetime

from .exceptions import IllegalTransition, RequestError, RequestForbidden, RequestNotFound
# The rules without a database live in request_rules; they are part of this
# module's interface too.
from .request_rules import (ALGORITHMS, MAX_TEXT, MODES, NOTIFIED, PCA_ALGORITHMS,
                            PRIORITY_MAX, PRIORITY_MIN, STATES, TRANSITIONS, MAX_COMPONENTS,
                            check_transition, validate_modes, validate_nights,
                            validate_parameters, validate_submission)
from .request_rules import _is_int, _short  # the same checks and quoting for messages

__all__ = ['STATES', 'TRANSITIONS', 'NOTIFIED', 'MODES', 'ALGORITHMS', 'PCA_ALGORITHMS',
           'MAX_COMPONENTS', 'PRIORITY_MIN', 'PRIORITY_MAX', 'RequestError',
           'RequestNotFound', 'RequestForbidden', 'IllegalTransition', 'Reduction', 'Event',
           'Message', 'check_transition', 'validate_nights', 'validate_modes',
           'validate_parameters', 'validate_submission', 'submit', 'get_request',
           'list_requests', 'request_events', 'messages_for', 'add_note', 'accept', 'reject',
           'set_priority', 'requeue', 'claim_next', 'mark_done', 'mark_failed',
           'requeue_lost', 'running_requests', 'matching_sequences', 'covered_sequences',
           'upload_sequences']

_COLUMNS = ('request_id', 'requester', 'prog_id', 'nights', 'modes', 'parameters', 'source',
            'upload_dir', 'state', 'priority', 'reason', 'sequence_ids', 'run_ids',
            'product_ids', 'created_at', 'updated_at')


@dataclasses.dataclass(frozen=True)
class Reduction:
    """One ``requests.reductions`` row."""

    request_id: int
    requester: str
    prog_id: str
    nights: list
    modes: list
    parameters: dict
    source: str
    upload_dir: str | None
    state: str
    priority: int
    reason: str | None
    sequence_ids: list
    run_ids: list
    product_ids: list
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_row(cls, row):
        values = dict(zip(_COLUMNS, row))
        for key in ('nights', 'modes', 'sequence_ids', 'run_ids', 'product_ids'):
            values[key] = list(values[key] or [])
        values['parameters'] = dict(values['parameters'] or {})
        return cls(**values)

    @property
    def final(self):
        """True once nothing more will happen to it."""
        return self.state in ('done', 'rejected')

    def as_json(self):
        """What a client sees (the server-side upload folder is left out)."""
        out = dataclasses.asdict(self)
        del out['upload_dir']
        for key in ('created_at', 'updated_at'):
            out[key] = _iso(out[key])
        return out


@dataclasses.dataclass(frozen=True)
class Event:
    """One ``requests.events`` row: a state entered (or a note), by whom, why."""

    at: datetime.datetime
    state: str
    actor: str | None
    note: str | None

    def as_json(self):
        return {'at': _iso(self.at), 'state': self.state, 'actor': self.actor,
                'note': self.note}


@dataclasses.dataclass(frozen=True)
class Message:
    """One ``requests.outbox`` row."""

    message_id: int
    request_id: int | None
    recipient: str
    email: str | None
    subject: str
    body: str
    created_at: datetime.datetime
    sent_at: datetime.datetime | None
    send_error: str | None

    def as_json(self):
        out = dataclasses.asdict(self)
        out['created_at'], out['sent_at'] = _iso(self.created_at), _iso(self.sent_at)
        return out


def _iso(value):
    return value.isoformat(timespec='seconds') + 'Z' if value is not None else None


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- pure rules -------------------------------------------------------------------------

# --- database -----------------------------------------------------------------------------

def _select(where='true', tail=''):
    return f'SELECT {", ".join(_COLUMNS)} FROM requests.reductions WHERE {where} {tail}'


def _check_id(request_id):
    if not _is_int(request_id) or not 1 <= request_id < 2 ** 63:
        raise RequestNotFound(f'no request {_short(request_id)}')
    return request_id


def submit(conn, user, prog_id, nights=None, modes=None, parameters=None, *,
           source='archive', upload_dir=None, sequence_ids=None, note=None):
    """Record a new request of ``user`` (state ``submitted``).

    Parameters
    ----------
    conn : psycopg.Connection
        As the archive's owner.
    user : archive.accounts.User
    prog_id, nights, modes, parameters
        See `validate_submission`.
    source : {'archive', 'upload'}
    upload_dir : str, optional
        Where the uploaded files are (source ``upload``).
    sequence_ids : list of str, optional
        Sequences known to be covered already (those of uploaded files).
    note : str, optional
        Added to the history.

    Returns
    -------
    Reduction

    Raises
    ------
    RequestError, RequestForbidden
    """
    from psycopg.types.json import Json

    prog_id, nights, modes, parameters = validate_submission(user, prog_id, nights, modes,
                                                             parameters)
    if source not in ('archive', 'upload'):
        raise RequestError(f'unknown source {_short(source)}')
    with conn.transaction():
        row = conn.execute(
            'INSERT INTO requests.reductions (requester, prog_id, nights, modes, parameters, '
            'source, upload_dir, state, sequence_ids, run_ids, product_ids, created_at, '
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'submitted', %s, '{}', '{}', "
            f'%s, %s) RETURNING {", ".join(_COLUMNS)}',
            (user.username, prog_id, nights, modes, Json(parameters), source, upload_dir,
             list(sequence_ids or []), _now(), _now())).fetchone()
        request = Reduction.from_row(row)
        _event(conn, request.request_id, 'submitted', user.username, note)
    return request


def get_request(conn, request_id, user=None, *, for_update=False):
    """The request ``request_id``; with ``user``, only if it is theirs (or they are staff).

    Raises
    ------
    RequestNotFound
        Also for another user's request, which must look the same as none.
    """
    _check_id(request_id)
    row = conn.execute(_select('request_id = %s', 'FOR UPDATE' if for_update else ''),
                       (request_id,)).fetchone()
    if row is None or (user is not None and not user.is_staff and row[1] != user.username):
        raise RequestNotFound(f'no request {request_id}')
    return Reduction.from_row(row)


def list_requests(conn, user=None, *, states=None, requester=None, limit=500):
    """Requests, newest first: ``user``'s own (staff: everyone's, or ``requester``'s)."""
    where, args = ['true'], []
    if user is not None and not user.is_staff:
        requester = user.username
    if requester is not None:
        where.append('requester = %s')
        args.append(requester)
    if states:
        where.append('state = ANY(%s)')
        args.append(list(states))
    rows = conn.execute(_select(' AND '.join(where), 'ORDER BY request_id DESC LIMIT %s'),
                        [*args, int(limit)]).fetchall()
    return [Reduction.from_row(r) for r in rows]


def request_events(conn, request_id):
    """The history of a request, oldest first."""
    rows = conn.execute('SELECT at, state, actor, note FROM requests.events '
                        'WHERE request_id = %s ORDER BY event_id', (request_id,)).fetchall()
    return [Event(*r) for r in rows]


def messages_for(conn, username, request_id=None, limit=200):
    """Messages to ``username`` (about one request, or all), newest first."""
    where, args = 'recipient = %s', [username]
    if request_id is not None:
        where += ' AND request_id = %s'
        args.append(request_id)
    rows = conn.execute(
        'SELECT message_id, request_id, recipient, email, subject, body, created_at, sent_at, '
        f'send_error FROM requests.outbox WHERE {where} ORDER BY message_id DESC LIMIT %s',
        [*args, int(limit)]).fetchall()
    return [Message(*r) for r in rows]


def _event(conn, request_id, state, actor, note):
    conn.execute('INSERT INTO requests.events (request_id, at, state, actor, note) '
                 'VALUES (%s, %s, %s, %s, %s)',
                 (request_id, _now(), state, actor, (note or None) and str(note)[:MAX_TEXT]))


_SUBJECTS = {'accepted': 'accepted and queued', 'rejected': 'rejected', 'done': 'done',
             'failed': 'failed'}


def _message_body(request, state, note):
    what = (f'Your request #{request.request_id} for the reduction of programme '
            f'{request.prog_id}')
    lines = {'accepted': f'{what} was accepted. It is queued and will run soon.',
             'rejected': f'{what} was rejected.',
             'done': f'{what} is done: {len(request.product_ids)} products were written. '
                     'They are private to the programme.',
             'failed': f'{what} failed.'}[state]
    out = [lines]
    if note:
        out.append('')
        out.append(('Reason: ' if state in ('rejected', 'failed') else 'Note: ') + note)
    out += ['', f'Details, history and products: /requests/{request.request_id} on the '
                'spheredc portal.']
    return '\n'.join(out)


def _notify(conn, request, state, note):
    email = conn.execute('SELECT email FROM accounts.users WHERE username = %s',
                         (request.requester,)).fetchone()
    conn.execute(
        'INSERT INTO requests.outbox (request_id, recipient, email, subject, body, created_at) '
        'VALUES (%s, %s, %s, %s, %s, %s)',
        (request.request_id, request.requester, email[0] if email else None,
         f'spheredc: request #{request.request_id} {_SUBJECTS[state]}',
         _message_body(request, state, note), _now()))


def _transition(conn, request_id, states, actor, note=None, *, extend=None, **columns):
    """Move a request through ``states`` (one or more) in one transaction.

    ``columns`` are set on the row with the last state; the lists of ``extend``
    are appended to those of the row (the runs of every attempt are kept).
    Returns the new `Reduction`.
    """
    _check_id(request_id)
    with conn.transaction():
        request = get_request(conn, request_id, for_update=True)
        state = request.state
        for new_state in states:
            check_transition(state, new_state)
            state = new_state
        for column, values in (extend or {}).items():
            old = getattr(request, column)
            columns[column] = old + [v for v in dict.fromkeys(values) if v not in old]
        sets = ', '.join(f'{c} = %s' for c in columns)
        row = conn.execute(
            f"UPDATE requests.reductions SET state = %s, updated_at = %s{', ' if sets else ''}"
            f'{sets} WHERE request_id = %s RETURNING {", ".join(_COLUMNS)}',
            (state, _now(), *columns.values(), request_id)).fetchone()
        request = Reduction.from_row(row)
        for new_state in states:
            _event(conn, request_id, new_state, actor, note)
            if new_state in NOTIFIED:
                _notify(conn, request, new_state, note)
    return request


def _staff(user):
    if user is None or not getattr(user, 'is_staff', False):
        raise RequestForbidden('only staff may do this')
    return user.username


def _text(value, what, required=False):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RequestError(f'give {what}')
        return None
    if not isinstance(value, str):
        raise RequestError(f'{what} must be text')
    if len(value) > MAX_TEXT:
        raise RequestError(f'{what} is longer than {MAX_TEXT} characters')
    return value.strip()


def add_note(conn, request_id, actor, note, *, sequence_ids=None, upload_dir=None):
    """Add a note to the history (same state); optionally set the covered sequences and
    the folder of the uploaded files."""
    with conn.transaction():
        request = get_request(conn, request_id, for_update=True)
        if sequence_ids is not None:
            conn.execute('UPDATE requests.reductions SET sequence_ids = %s '
                         'WHERE request_id = %s', (list(sequence_ids), request_id))
        if upload_dir is not None:
            conn.execute('UPDATE requests.reductions SET upload_dir = %s '
                         'WHERE request_id = %s', (str(upload_dir), request_id))
        _event(conn, request_id, request.state, actor, note)


def accept(conn, request_id, staff, sequence_ids=None, note=None):
    """Accept a submitted request and queue it for the workers.

    Parameters
    ----------
    sequence_ids : list of str, optional
        The sequences it covers (`matching_sequences`); default: those recorded
        at submission (uploads).

    Raises
    ------
    RequestForbidden, RequestNotFound, IllegalTransition
    RequestError
        When it covers no sequence (nothing to reduce: reject it instead).
    """
    actor = _staff(staff)
    note = _text(note, 'a note')
    request = get_request(conn, request_id)
    check_transition(request.state, 'accepted')
    ids = list(sequence_ids) if sequence_ids else request.sequence_ids
    if not ids:
        raise RequestError(f'request {request_id} covers no sequence of programme '
                           f'{request.prog_id} for the nights and modes it names: nothing to '
                           'reduce (reject it, saying why)')
    return _transition(conn, request_id, ('accepted', 'queued'), actor, note,
                       sequence_ids=sorted(set(ids)))


def reject(conn, request_id, staff, reason):
    """Reject a submitted request; ``reason`` (required) goes to the requester."""
    actor = _staff(staff)
    reason = _text(reason, 'the reason for the rejection', required=True)
    return _transition(conn, request_id, ('rejected',), actor, reason, reason=reason)


def set_priority(conn, request_id, staff, priority):
    """Change the priority (higher runs first) of a request that has not run yet."""
    actor = _staff(staff)
    if not _is_int(priority) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise RequestError(f'a priority is a whole number from {PRIORITY_MIN} to '
                           f'{PRIORITY_MAX}, not {_short(priority)}')
    with conn.transaction():
        request = get_request(conn, request_id, for_update=True)
        if request.state not in ('submitted', 'accepted', 'queued', 'failed'):
            raise IllegalTransition(f'the priority of a request that is {request.state} '
                                    'cannot change any more')
        conn.execute('UPDATE requests.reductions SET priority = %s WHERE request_id = %s',
                     (priority, request_id))
        _event(conn, request_id, request.state, actor,
               f'priority {request.priority} -> {priority}')
    return get_request(conn, request_id)


def requeue(conn, request_id, staff, note=None):
    """Queue a failed request again (staff)."""
    actor = _staff(staff)
    note = _text(note, 'a note') or 'queued again by staff'
    return _transition(conn, request_id, ('queued',), actor, note, reason=None)


def claim_next(conn, worker):
    """Take the queued request of highest priority (oldest first) for ``worker``.

    Concurrent workers skip each other's rows (``FOR UPDATE SKIP LOCKED``), so
    each request is claimed once. Returns the running `Reduction`, or None.
    """
    with conn.transaction():
        row = conn.execute(
            "UPDATE requests.reductions SET state = 'running', updated_at = %s "
            'WHERE request_id = (SELECT request_id FROM requests.reductions '
            "WHERE state = 'queued' ORDER BY priority DESC, created_at, request_id "
            f'FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING {", ".join(_COLUMNS)}',
            (_now(),)).fetchone()
        if row is None:
            return None
        request = Reduction.from_row(row)
        _event(conn, request.request_id, 'running', worker, None)
    return request


def mark_done(conn, request_id, worker, run_ids, product_ids, note=None):
    """A running request finished: add its runs and products, tell the requester."""
    return _transition(conn, request_id, ('done',), worker, note, reason=None,
                       extend={'run_ids': run_ids, 'product_ids': product_ids})


def mark_failed(conn, request_id, worker, reason, run_ids=(), product_ids=()):
    """A running request failed; ``reason`` in plain words goes to the requester."""
    reason = (str(reason) or 'unknown error')[:MAX_TEXT]
    return _transition(conn, request_id, ('failed',), worker, reason, reason=reason,
                       extend={'run_ids': run_ids, 'product_ids': product_ids})


def requeue_lost(conn, request_id, worker, note):
    """Queue again a request left ``running`` by a worker that died."""
    return _transition(conn, request_id, ('queued',), worker, note)


def running_requests(conn):
    """``[(request_id, worker)]`` of the running requests (worker of the claim event)."""
    return conn.execute(
        "SELECT r.request_id, (SELECT e.actor FROM requests.events e WHERE e.request_id = "
        "r.request_id AND e.state = 'running' ORDER BY e.event_id DESC LIMIT 1) "
        "FROM requests.reductions r WHERE r.state = 'running' ORDER BY r.request_id"
    ).fetchall()


def matching_sequences(fetch, prog_id, nights=(), modes=()):
    """Sequences of ``prog_id`` (the programme or any of its runs) on ``nights`` in ``modes``.

    Parameters
    ----------
    fetch : callable
        ``fetch(sql, params) -> rows``; the web layer passes
        ``vo.query.QueryPool.fetch`` run as the requester, so only rows they may
        see are found.
    prog_id : str
    nights, modes : list of str
        Empty: all.

    Returns
    -------
    list of str
        sequence_id, in time order.
    """
    where = ['(prog_id = %s OR split_part(prog_id, %s, 1) = %s)']
    args = [prog_id, '(', prog_id]
    if nights:
        where.append('night = ANY(%s)')
        args.append(list(nights))
    if modes:
        pairs = [MODES[m] for m in modes]
        where.append('(' + ' OR '.join(['(arm = %s AND ins_mode = %s)'] * len(pairs)) + ')')
        args += [v for pair in pairs for v in pair]
    rows = fetch(f"SELECT sequence_id FROM sphere.sequences WHERE {' AND '.join(where)} "
                 'ORDER BY mjd_start, sequence_id', args)
    return [r[0] for r in rows]


def covered_sequences(request, fetch):
    """The sequences ``request`` covers: those of its uploaded files, else those of
    `matching_sequences` (run ``fetch`` as the requester)."""
    if request.source == 'upload' and request.sequence_ids:
        return list(request.sequence_ids)
    return matching_sequences(fetch, request.prog_id, request.nights, request.modes)


def upload_sequences(conn, checksums, prog_id):
    """Sequences of ``prog_id`` holding files of these checksums (files a PI uploaded)."""
    rows = conn.execute(
        'SELECT DISTINCT r.sequence_id FROM sphere.raw_files r JOIN sphere.sequences s ON '
        's.sequence_id = r.sequence_id WHERE r.checksum = ANY(%s) AND (s.prog_id = %s OR '
        "split_part(s.prog_id, '(', 1) = %s) ORDER BY 1",
        (list(checksums), prog_id, prog_id)).fetchall()
    return [r[0] for r in rows]
