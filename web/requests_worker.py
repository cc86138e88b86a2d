"""The reduction-request worker: runs accepted requests on the Dask engine, sends the mail.

Each server process runs `RequestWorker` threads. One claims the queued
request of highest priority (`archive.requests.claim_next`, ``FOR UPDATE SKIP
LOCKED``: each request runs once whatever the number of processes), checks
that its sequences are still the programme's and reducible (raw IRDIS
frames, or IFS cubes of ESO's ``sph_ifs_science_dr``), and has the engine
reduce them, one Dask task per sequence (`reduction.engine.map_sequences` of
`reduction.engine.reduce_for_request`: a local cluster, or
``SPHEREDC_DASK_SCHEDULER``) with the request's parameters for each arm
(`reduction.targets.request_params`; for IFS, level 2 is PCA-ASDI and writes
the candidates' spectra). It then marks the request done or failed with a
reason in plain words. Another thread sends the outbox by SMTP when
``SPHEREDC_SMTP`` is set; a failure is recorded in ``send_error`` and tried
again later, and never holds up a reduction.

A request's products are private to its programme and never replace the
archive's own (homogeneous) reduction; the engine makes them so through the
request's `reduction.targets.ProductTarget` (`ProductTarget.for_request`):

- they are registered with ``is_current = false`` and without superseding
  anything (`reduction.products.register_products` with ``supersede=False``),
  so the archive's current version of every product of the sequence stays
  current, and the engine's level 2 (which reads the *current* master cube)
  never picks a request's master cube;
- their identifiers are the engine's prefixed with ``req<N>.`` (spectra
  included) and their files are under ``products/requests/<N>/`` (same
  layout as the archive's below it), so two reductions of one sequence never
  share a name or a file; their version numbers come from the same
  per-sequence count as the archive's (`reduction.products.next_version`),
  the archive's next version simply skipping theirs;
- their runs' inputs digests include ``request:<N>``, so ``spheredc reduce
  --pending`` never takes a request's run for the archive's;
- their ``prog_id`` is the sequence's and their ``release_date`` the later of
  the data's release date and the request's start plus
  `archive.access.PROPRIETARY_DAYS`;
- candidates and detection limits are not written to ``sphere.candidates``
  and ``sphere.detection_limits`` (those tables hold the archive's reduction,
  one set per sequence); the request's final images, S/N maps, contrast
  curves, HCI-FITS files and spectra carry them.

When a request keeps the archive's level-1 parameters and the sequence's
current master cube was made from the sequence's current inputs with them,
that master cube and PSF are reused and only level 2 runs. Parameters that do
not apply to a sequence's arm (an IFS sequence is post-processed by PCA-ASDI
only; 'pca' means that for IFS) leave it unreduced, with a note in the outcome.

A request left ``running`` by a process that died is queued again when a
worker starts (`RequestWorker.recover`); the database being down is logged
and retried, never fatal to the threads.
"""
import dataclasses
import datetime
import logging
import os
import socket
import threading
import time

from vo.uws_runner import pid_alive

__all__ = ['RequestWorker', 'Outcome', 'execute_request', 'send_outbox']

log = logging.getLogger(__name__)

#: Messages sent per SMTP connection.
_MAIL_BATCH = 20


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- one request -----------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """How a request ended: ``status`` 'done' or 'failed', and what it made."""

    status: str
    run_ids: list = dataclasses.field(default_factory=list)
    product_ids: list = dataclasses.field(default_factory=list)
    note: str | None = None


def _reducible(conn, request):
    """({sequence id: arm} of those the engine can reduce, notes on the others)."""
    rows = {r[0]: r[1:] for r in conn.execute(
        'SELECT sequence_id, arm, level, prog_id FROM sphere.sequences '
        'WHERE sequence_id = ANY(%s)', (list(request.sequence_ids),)).fetchall()}
    ok, notes = {}, []
    for sid in request.sequence_ids:
        arm, level, prog = rows.get(sid, (None, None, None))
        prog = prog or ''
        if sid not in rows:
            notes.append(f'{sid}: no longer in the archive')
        elif prog != request.prog_id and prog.split('(')[0] != request.prog_id:
            notes.append(f'{sid}: not data of programme {request.prog_id}')
        elif arm not in ('IRDIS', 'IFS'):
            notes.append(f'{sid}: the engine reduces IRDIS and IFS sequences, not {arm}')
        elif arm == 'IRDIS' and level == 'reduced':
            notes.append(f'{sid}: its files were already reduced upstream')
        elif arm == 'IFS' and level != 'reduced':
            # as the engine's IFS recipe: it starts from ESO's calibrated cubes
            notes.append(f'{sid}: raw IFS frames; the engine reduces the cubes of ESO\'s '
                         'sph_ifs_science_dr only')
        else:
            ok[sid] = arm
    return ok, notes


def execute_request(request, database, *, n_workers=None, use_dask=True):
    """Reduce the sequences of a claimed request; return its `Outcome` (never raises
    for the reduction's own problems).

    Parameters
    ----------
    request : archive.requests.Reduction
    database : archive.db.Database
    n_workers : int, optional
        Workers of the local Dask cluster (default: one per sequence, at most
        `reduction.engine.local_cluster_size`).
    use_dask : bool, optional
        False reduces the sequences one after the other in this thread.

    Raises
    ------
    reduction.exceptions.EngineError
        When the configured Dask scheduler cannot be reached (try again later).
    """
    from archive.accounts import get_user
    from reduction.engine import local_cluster_size, map_sequences, reduce_for_request
    from reduction.targets import ProductTarget, request_params

    settings = database.settings
    with database.connect(autocommit=True, connect_timeout=10) as conn:
        user = get_user(conn, request.requester)
        if user is None or user.role_in(request.prog_id) not in ('PI', 'CoI'):
            return Outcome('failed', note=f'{request.requester} is no longer PI or CoI of '
                                          f'programme {request.prog_id}')
        todo, notes = _reducible(conn, request)
    if not todo:
        return Outcome('failed', note='nothing the engine can reduce: ' + '; '.join(notes)
                       if notes else 'the request covers no sequence')
    ids = list(todo)
    params = [request_params(todo[s], request.parameters) for s in ids]
    n = n_workers or min(len(ids), local_cluster_size()[0])
    results = map_sequences(reduce_for_request, ids, settings, [p[0] for p in params],
                            [p[1] for p in params], n_workers=n, use_dask=use_dask,
                            name=f'request-{request.request_id}',
                            target=ProductTarget.for_request(request.request_id))
    outcome = Outcome('failed')
    for r in results:
        outcome.run_ids += r.get('run_ids', [])
        outcome.product_ids += r.get('product_ids', [])
        if r['error']:
            notes.append(f"{r['sequence_id']}: {r['error'].splitlines()[0]}")
    done = [r for r in results if r['status'] in ('done', 'partial')]
    if done:
        outcome.status = 'done'
        reused = [r['sequence_id'] for r in results if r.get('reused_level1')]
        summary = f'{len(done)} of {len(results)} sequences reduced'
        if reused:
            summary += f" (level 1 of the archive reused for {', '.join(reused)})"
        outcome.note = '; '.join([summary, *notes])
    else:
        outcome.note = '; '.join(notes) or 'no product was written'
    return outcome


# --- mail ----------------------------------------------------------------------------------

def send_outbox(conn, smtp, mail_from, *, retry_failed=True, limit=20, timeout_s=10):
    """Send the outbox's unsent messages (those with an address) through ``smtp``.

    Parameters
    ----------
    conn : psycopg.Connection
        As the owner, autocommit or not (the caller commits).
    smtp : str
        ``host[:port]`` of the relay.
    mail_from : str
    retry_failed : bool, optional
        Also try the messages whose last attempt failed.

    Returns
    -------
    sent, failed : int
    """
    import smtplib
    from email.message import EmailMessage

    host, _, port = smtp.rpartition(':') if ':' in smtp else (smtp, '', '25')
    sent = failed = 0
    with conn.transaction():
        rows = conn.execute(
            'SELECT message_id, email, subject, body FROM requests.outbox WHERE sent_at IS NULL '
            f"AND email IS NOT NULL {'' if retry_failed else 'AND send_error IS NULL'} "
            # Never tried first: messages that keep failing must not hold up new ones.
            'ORDER BY send_error IS NOT NULL, message_id LIMIT %s FOR UPDATE SKIP LOCKED',
            (limit,)).fetchall()
        if not rows:
            return 0, 0
        try:
            server = smtplib.SMTP(host, int(port), timeout=timeout_s)
        except (OSError, ValueError) as exc:
            conn.execute('UPDATE requests.outbox SET send_error = %s WHERE message_id = ANY(%s)',
                         (f'cannot reach {smtp}: {exc}'[:500], [r[0] for r in rows]))
            return 0, len(rows)
        with server:
            for message_id, email, subject, body in rows:
                msg = EmailMessage()
                msg['From'], msg['To'], msg['Subject'] = mail_from, email, subject
                msg.set_content(body)
                try:
                    server.send_message(msg)
                except (OSError, smtplib.SMTPException) as exc:
                    conn.execute('UPDATE requests.outbox SET send_error = %s '
                                 'WHERE message_id = %s', (str(exc)[:500], message_id))
                    failed += 1
                else:
                    conn.execute('UPDATE requests.outbox SET sent_at = %s, send_error = NULL '
                                 'WHERE message_id = %s', (_utcnow(), message_id))
                    sent += 1
    return sent, failed


# --- the threads ---------------------------------------------------------------------------

class RequestWorker:
    """Threads of one process running reduction requests and sending the outbox.

    Parameters
    ----------
    database : archive.db.Database
    workers : int
        Threads running requests (0: this process only stores requests).
    poll_s : float
        How often idle threads look for queued requests (`notify` wakes them).
    mail_poll_s, mail_retry_s : float
        How often the outbox is looked at, and failed sends tried again.
    n_dask_workers : int, optional
        Workers of the local Dask cluster per request.
    use_dask : bool
        False reduces in the worker thread itself.
    """

    def __init__(self, database, workers=1, *, poll_s=2.0, mail_poll_s=10.0,
                 mail_retry_s=120.0, n_dask_workers=None, use_dask=True):
        self.database = database
        self.workers = workers
        self.poll_s = poll_s
        self.mail_poll_s = mail_poll_s
        self.mail_retry_s = mail_retry_s
        self.n_dask_workers = n_dask_workers
        self.use_dask = use_dask
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        self._started_pid = None
        self._recovered = False
        self._recover_lock = threading.Lock()

    @property
    def name(self):
        """``worker host:pid``: recorded on the claim, read back by `recover`."""
        return f'worker {socket.gethostname()}:{os.getpid()}'

    def ensure_started(self):
        """Start the threads (once per process: gunicorn forks after the app is built)."""
        if self.workers <= 0 or self._started_pid == os.getpid():
            return
        self._started_pid = os.getpid()
        self._stop.clear()
        self._recovered = False
        self._threads = [threading.Thread(target=self._work, name=f'requests-{i}', daemon=True)
                         for i in range(self.workers)]
        if self.database.settings.smtp:  # else the messages stay in the outbox (portal)
            self._threads.append(threading.Thread(target=self._mail, name='requests-mail',
                                                  daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout_s=5):
        """Ask the threads to stop and wait a little for them (a reduction is not cut)."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=timeout_s)
        self._threads = []
        self._started_pid = None

    def notify(self):
        """Wake the threads: a request was queued."""
        self._wake.set()

    def recover(self):
        """Queue again the running requests whose worker process on this host is gone.

        Returns
        -------
        list of int
            The requests queued again.
        """
        from archive.requests import RequestError, requeue_lost, running_requests

        host = socket.gethostname()
        queued = []
        with self._recover_lock, self.database.connect(connect_timeout=10) as conn:
            for request_id, actor in running_requests(conn):
                w_host, _, w_pid = (actor or '').removeprefix('worker ').rpartition(':')
                if actor and not (w_host == host and w_pid.isdigit()
                                  and not pid_alive(int(w_pid))):
                    continue  # alive, or on another host: not ours to judge
                try:
                    requeue_lost(conn, request_id, self.name,
                                 f'{actor or "its worker"} stopped while the request ran: '
                                 'queued again')
                except RequestError:  # finished meanwhile
                    continue
                log.warning('request %s lost its worker %s: queued again', request_id, actor)
                queued.append(request_id)
            conn.commit()
            self._recovered = True
        return queued

    def run_one(self):
        """Claim one queued request, run it and record how it ended.

        Returns
        -------
        archive.requests.Reduction or None
            The request as recorded at the end, or None when none was queued.
        """
        from archive.requests import claim_next

        with self.database.connect(connect_timeout=10) as conn:
            request = claim_next(conn, self.name)
            conn.commit()
        if request is None:
            return None
        log.info('request %s: running %d sequences', request.request_id,
                 len(request.sequence_ids))
        try:
            outcome = execute_request(request, self.database, n_workers=self.n_dask_workers,
                                      use_dask=self.use_dask)
        except Exception as exc:  # a request never dies silently: it ends failed
            log.exception('request %s failed', request.request_id)
            outcome = Outcome('failed', note=f'the reduction could not run: '
                                             f'{type(exc).__name__}: {exc}')
        return self._record(request, outcome)

    def _record(self, request, outcome):
        """Mark the request done or failed, trying again while the database is away."""
        from archive.requests import RequestError, get_request, mark_done, mark_failed

        delay = 1.0
        while True:
            try:
                with self.database.connect(connect_timeout=10) as conn:
                    if outcome.status == 'done':
                        mark_done(conn, request.request_id, self.name, outcome.run_ids,
                                  outcome.product_ids, outcome.note)
                    else:
                        mark_failed(conn, request.request_id, self.name, outcome.note,
                                    outcome.run_ids, outcome.product_ids)
                    conn.commit()
                    return get_request(conn, request.request_id)
            except RequestError:
                log.exception('request %s: outcome not recorded', request.request_id)
                return None
            except Exception:
                log.exception('request %s: cannot record its outcome yet', request.request_id)
                # The products exist; if this process stops first, recover() queues it again.
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, 60.0)

    def _work(self):
        delay = self.poll_s
        while not self._stop.is_set():
            ran = None
            try:
                if not self._recovered:
                    self.recover()
                ran = self.run_one()
                delay = self.poll_s
            except Exception:  # database down: keep the thread, try again later
                log.exception('reduction requests: cannot claim')
                delay = min(max(delay, 1.0) * 2, 60.0)
            if ran is None:
                self._wake.wait(delay)
                self._wake.clear()

    def _mail(self):
        smtp = self.database.settings.smtp
        last_retry = 0.0
        while not self._stop.wait(self.mail_poll_s):
            retry = time.monotonic() - last_retry >= self.mail_retry_s
            try:
                with self.database.connect(connect_timeout=10) as conn:
                    while True:  # batch after batch while there is more
                        sent, failed = send_outbox(conn, smtp,
                                                   self.database.settings.mail_from,
                                                   retry_failed=retry, limit=_MAIL_BATCH)
                        conn.commit()
                        if failed:
                            log.warning('outbox: %d messages not sent (kept for later)',
                                        failed)
                        if sent + failed < _MAIL_BATCH or failed or self._stop.is_set():
                            break
                if retry:
                    last_retry = time.monotonic()
            except Exception:
                log.exception('outbox: cannot send')
