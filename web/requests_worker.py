"""The reduction-request worker: runs accepted requests on the Dask engine, sends the mail.

Each server process runs `RequestWorker` threads. One claims the queued
request of highest priority (`archive.requests.claim_next`, ``FOR UPDATE SKIP
LOCKED``: each request runs once whatever the number of processes), reduces
its sequences, one Dask task per sequence, on the engine's cluster
(`reduction.engine`: a local cluster, or ``SPHEREDC_DASK_SCHEDULER``) and
marks it done or failed with a reason in plain words. Another thread sends
the outbox by SMTP when ``SPHEREDC_SMTP`` is set; a failure is recorded in
``send_error`` and tried again later, and never holds up a reduction.

A request's products are private to its programme and never replace the
archive's own (homogeneous) reduction:

- they are registered with ``is_current = false`` and without superseding
  anything (`reduction.products.register_products` with ``supersede=False``),
  so the archive's current version of every product of the sequence stays
  current, and the engine's level 2 (which reads the *current* master cube)
  never picks a request's master cube;
- their identifiers are the engine's prefixed with ``req<N>.`` and their files
  are under ``products/requests/<N>/`` (same layout as the archive's below
  it), so two reductions of one sequence never share a name or a file; their
  version numbers come from the same per-sequence count as the archive's
  (`reduction.products.next_version`), the archive's next version simply
  skipping theirs;
- their runs' inputs digests include ``request:<N>``, so ``spheredc reduce
  --pending`` never takes a request's run for the archive's;
- their ``prog_id`` is the sequence's and their ``release_date`` the later of
  the data's release date and the time of their registration plus
  `archive.access.PROPRIETARY_DAYS`;
- candidates and detection limits are not written to ``sphere.candidates``
  and ``sphere.detection_limits`` (those tables hold the archive's reduction,
  one set per sequence); the request's final images, S/N maps, contrast
  curves and HCI-FITS files carry them.

When a request keeps the archive's level-1 parameters and the sequence's
current master cube was made from the sequence's current inputs with them,
that master cube and PSF are reused and only level 2 runs.

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
from pathlib import Path

from vo.uws_runner import pid_alive

__all__ = ['RequestWorker', 'Outcome', 'execute_request', 'reduce_for_request',
           'level1_params', 'level2_params', 'send_outbox', 'REQUESTS_DIR']

log = logging.getLogger(__name__)

#: Folder of the requests' products under the products folder.
REQUESTS_DIR = 'requests'
#: Messages sent per SMTP connection.
_MAIL_BATCH = 20


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- parameters ---------------------------------------------------------------------------

def level1_params(parameters):
    """`~reduction.level1.params.MasterCubeParams` of a request's parameters.

    The archive's own (``MASTER_CUBE.params``) unless the request sets frame
    selection options.
    """
    from reduction.recipes import MASTER_CUBE

    selection = parameters.get('frame_selection')
    if not selection:
        return MASTER_CUBE.params
    base = MASTER_CUBE.params
    return dataclasses.replace(base, selection=dataclasses.replace(base.selection, **selection))


def level2_params(parameters):
    """`~reduction.level2.params.Level2Params` of a request: one per component count."""
    from reduction.recipes import LEVEL2

    components = parameters.get('components')
    counts = components if isinstance(components, list) else [components]
    return [dataclasses.replace(LEVEL2.params, algorithm=parameters.get('algorithm', 'pca'),
                                ncomp=n) for n in counts]


# --- one sequence (a Dask task) ----------------------------------------------------------

def _digest(recipe, checksums, request_id):
    from reduction.recipes import inputs_digest

    # The request's number is part of the inputs: its run never settles the archive's work.
    return inputs_digest(recipe, [*checksums, f'request:{request_id}'])


def _release_date(sequence):
    from archive.access import PROPRIETARY_DAYS

    floor = _utcnow() + datetime.timedelta(days=PROPRIETARY_DAYS)
    data = sequence.get('release_date')
    return max(data, floor) if data is not None else floor


def _make_private(products, request_id, release_date):
    """Request products: own ids and folder, not current, private to the programme."""
    for p in products:
        p.row.update(product_id=f"req{request_id}.{p.row['product_id']}",
                     path=str(Path(REQUESTS_DIR) / str(request_id) / p.row['path']),
                     is_current=False, release_date=release_date)


def _product_rows(conn, product_ids):
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute('SELECT * FROM sphere.products WHERE product_id = ANY(%s)',
                           (list(product_ids),)).fetchall()
    return {r['product_type']: r for r in rows if r['product_type'] in ('master_cube',
                                                                         'psf_cube')}


def _reusable_level1(conn, sequence_id, params):
    """The archive's current master cube and PSF if made from the current inputs with
    ``params``; else None."""
    from reduction.level1_run import sequence_digest
    from reduction.level2_run import current_level1
    from reduction.recipes import MASTER_CUBE
    from reduction.sequence_io import load_sequence

    if params != MASTER_CUBE.params:
        return None
    level1 = current_level1(conn, sequence_id)
    if set(level1) != {'master_cube', 'psf_cube'}:
        return None
    row = conn.execute('SELECT inputs_digest FROM sphere.runs WHERE run_id = %s',
                       (level1['master_cube']['run_id'],)).fetchone()
    digest = sequence_digest(load_sequence(conn, sequence_id), MASTER_CUBE)
    return level1 if row and row[0] == digest else None


def _request_level1(conn, settings, request_id, sequence_id, params, out):
    """Level 1 for the request; the master-cube and PSF rows, or None (``out`` says why)."""
    import warnings

    from reduction.level1 import build_master_cube
    from reduction.level1.exceptions import Level1Warning
    from reduction.level1_run import _calibrations, _write_products
    from reduction.policy import plan_calibrations
    from reduction.products import register_products
    from reduction.provenance import fail_run, finish_run, start_run
    from reduction.recipes import MASTER_CUBE
    from reduction.sequence_io import load_sequence, raw_file

    recipe = MASTER_CUBE.with_params(params)
    inputs = load_sequence(conn, sequence_id)
    run = start_run(conn, recipe, _digest(recipe, inputs.checksums(), request_id),
                    sequence_id=sequence_id)
    out['run_ids'].append(run['run_id'])
    timings = {}
    try:
        plan = plan_calibrations(inputs.sequence, inputs.files, inputs.associations)
        if plan.refused:
            with conn.transaction():
                finish_run(conn, run, 'refused', error=plan.refused)
            out['error'] = f'level 1 refused: {plan.refused}'
            return None
        calibs, used = _calibrations(conn, settings.products_dir, inputs, plan, timings)
        files = [raw_file(f) for f in inputs.files if f['dpr_type'] != 'SKY']
        t = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Level1Warning)  # kept in cube.flags
            cube = build_master_cube(files, calibs, params=recipe.params)
        timings['master_cube'] = round(time.monotonic() - t, 3)
        flags = sorted(set(plan.flags)) + [f for f in cube.flags if f not in plan.flags]
        folder = Path(settings.products_dir) / REQUESTS_DIR / str(request_id)
        products = _write_products(conn, folder, inputs, cube, used, recipe, run, flags)
        _make_private(products, request_id, _release_date(inputs.sequence))
        with conn.transaction():
            ids = register_products(conn, products, supersede=False)
            finish_run(conn, run, 'done', quality_flags=flags, timings=timings)
        out['product_ids'] += ids
        return _product_rows(conn, ids)
    except Exception as exc:  # recorded on the run; the other sequences go on
        out['error'] = 'level 1 failed: ' + fail_run(conn, run, exc, timings)
        return None


def _request_level2(conn, settings, request_id, sequence_id, level1, params, out):
    """One level-2 run of the request on ``level1``; True when its products are written."""
    from psycopg.rows import dict_row

    from reduction.level2_run import _run_fields, _write, field_filters, read_level1
    from reduction.products import register_products
    from reduction.provenance import fail_run, finish_run, start_run
    from reduction.recipes import LEVEL2

    recipe = LEVEL2.with_params(params)
    run = start_run(conn, recipe, _digest(recipe, [r['checksum'] for r in level1.values()],
                                          request_id), sequence_id=sequence_id)
    out['run_ids'].append(run['run_id'])
    timings = {}
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            seq = cur.execute('SELECT * FROM sphere.sequences WHERE sequence_id = %s',
                              (sequence_id,)).fetchone()
        header, cube, derot_deg, wavelengths_um, psf = read_level1(settings.products_dir, level1)
        # As the engine's level 2: the star is where the OBJECT frames point.
        if header.get('RA') is not None and header.get('DEC') is not None:
            seq = dict(seq, ra=float(header['RA']), dec=float(header['DEC']))
        t = time.monotonic()
        results = _run_fields(cube, derot_deg, psf, float(header['PIXSCAL']), wavelengths_um,
                              field_filters(seq.get('filter'), cube.shape[0]), recipe.params)
        timings['postprocess'] = round(time.monotonic() - t, 3)
        folder = Path(settings.products_dir) / REQUESTS_DIR / str(request_id)
        # Candidates and limits stay in the request's files: the tables hold the archive's.
        products, _candidates, _limits = _write(conn, folder, seq, level1, results, header,
                                                recipe, run)
        _make_private(products, request_id, _release_date(seq))
        with conn.transaction():
            out['product_ids'] += register_products(conn, products, supersede=False)
            finish_run(conn, run, 'done', timings=timings)
        return True
    except Exception as exc:
        error = fail_run(conn, run, exc, timings)
        out['error'] = f'level 2 ({params.algorithm}, ncomp {params.ncomp}) failed: {error}'
        return False


def reduce_for_request(sequence_id, settings, request_id, level1, level2):
    """Dask task: reduce one sequence for a request; never raises.

    Parameters
    ----------
    sequence_id : str
    settings : archive.config.Settings
    request_id : int
    level1 : reduction.level1.params.MasterCubeParams
    level2 : list of reduction.level2.params.Level2Params
        One level-2 run each.

    Returns
    -------
    dict
        ``sequence_id``, ``status`` ('done' when every level-2 run wrote its
        products, 'partial', 'failed'), ``run_ids``, ``product_ids``,
        ``reused_level1`` (product id of the archive's master cube, or None)
        and ``error`` (plain words, or None).
    """
    from archive.db import Database

    out = {'sequence_id': sequence_id, 'status': 'failed', 'run_ids': [], 'product_ids': [],
           'reused_level1': None, 'error': None}
    try:
        with Database(settings).connect(autocommit=True) as conn:
            rows = _reusable_level1(conn, sequence_id, level1)
            if rows is not None:
                out['reused_level1'] = rows['master_cube']['product_id']
            else:
                rows = _request_level1(conn, settings, request_id, sequence_id, level1, out)
            if rows is None:
                return out
            ok = [_request_level2(conn, settings, request_id, sequence_id, rows, p, out)
                  for p in level2]
            out['status'] = 'done' if all(ok) else 'partial' if any(ok) else 'failed'
    except Exception as exc:  # the database vanished: nothing more can be recorded
        out['error'] = f'{type(exc).__name__}: {exc}'
    return out


# --- one request -----------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """How a request ended: ``status`` 'done' or 'failed', and what it made."""

    status: str
    run_ids: list = dataclasses.field(default_factory=list)
    product_ids: list = dataclasses.field(default_factory=list)
    note: str | None = None


def _reducible(conn, request):
    """(sequence ids the engine can reduce, notes on the others)."""
    rows = {r[0]: r[1:] for r in conn.execute(
        'SELECT sequence_id, arm, level, prog_id FROM sphere.sequences '
        'WHERE sequence_id = ANY(%s)', (list(request.sequence_ids),)).fetchall()}
    ok, notes = [], []
    for sid in request.sequence_ids:
        prog = rows[sid][2] or '' if sid in rows else ''
        if sid not in rows:
            notes.append(f'{sid}: no longer in the archive')
        elif prog != request.prog_id and prog.split('(')[0] != request.prog_id:
            notes.append(f'{sid}: not data of programme {request.prog_id}')
        elif rows[sid][0] != 'IRDIS':
            notes.append(f'{sid}: reductions on request handle IRDIS sequences only for now '
                         f'(this one is {rows[sid][0]}); the archive reduces it itself')
        elif rows[sid][1] == 'reduced':
            notes.append(f'{sid}: its files were already reduced upstream')
        else:
            ok.append(sid)
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
    level1 = level1_params(request.parameters)
    level2 = level2_params(request.parameters)
    results = _run_tasks(todo, settings, request.request_id, level1, level2, n_workers,
                         use_dask)
    outcome = Outcome('failed')
    for r in results:
        outcome.run_ids += r['run_ids']
        outcome.product_ids += r['product_ids']
        if r['error']:
            notes.append(f"{r['sequence_id']}: {r['error'].splitlines()[0]}")
    done = [r for r in results if r['status'] in ('done', 'partial')]
    if done:
        outcome.status = 'done'
        reused = [r['sequence_id'] for r in results if r['reused_level1']]
        summary = f'{len(done)} of {len(results)} sequences reduced'
        if reused:
            summary += f" (level 1 of the archive reused for {', '.join(reused)})"
        outcome.note = '; '.join([summary, *notes])
    else:
        outcome.note = '; '.join(notes) or 'no product was written'
    return outcome


def _run_tasks(sequence_ids, settings, request_id, level1, level2, n_workers, use_dask):
    if not use_dask:
        return [reduce_for_request(s, settings, request_id, level1, level2)
                for s in sequence_ids]
    import uuid

    from reduction.engine import _client, local_cluster_size

    n = n_workers or min(len(sequence_ids), local_cluster_size()[0])
    client, cluster = _client(settings, n)
    batch = uuid.uuid4().hex[:8]  # unique keys on a shared scheduler
    try:
        futures = client.map(reduce_for_request, sequence_ids, settings=settings,
                             request_id=request_id, level1=level1, level2=level2, pure=False,
                             key=[f'request-{request_id}-{s}-{batch}' for s in sequence_ids])
        results = []
        for sid, fut in zip(sequence_ids, futures):
            try:
                results.append(fut.result())
            except Exception as exc:  # the worker died: say so for this sequence
                results.append({'sequence_id': sid, 'status': 'failed', 'run_ids': [],
                                'product_ids': [], 'reused_level1': None,
                                'error': f'the Dask worker was lost ({type(exc).__name__}: '
                                         f'{exc})'})
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
