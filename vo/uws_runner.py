"""The async TAP worker pool: claims QUEUED jobs, runs them, keeps the store tidy.

Each server process runs a few worker threads. A job is claimed with
``FOR UPDATE SKIP LOCKED`` so exactly one worker of all processes runs it; the
query's statement timeout is the job's execution duration, and a watchdog
cancels the backend of a job past it. Jobs left EXECUTING by a process that
died are queued again when a manager starts (restart safety); expired jobs
are destroyed.
"""
import logging
import os
import socket
import threading

from .exceptions import VOError
from .params import Params
from .uws import JobStore, _utcnow

__all__ = ['JobManager']

log = logging.getLogger(__name__)


def pid_alive(pid):
    """True when process ``pid`` runs on this host (a worker that claimed work)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobManager:
    """Job store plus the worker threads of this process.

    Parameters
    ----------
    database : archive.db.Database
    pool : vo.query.QueryPool
    limits : vo.query.Limits
    workers : int
        Worker threads (0: this process only stores jobs).
    poll_s : float
        How often idle workers look for queued jobs.
    """

    def __init__(self, database, pool, limits, workers=2, poll_s=0.2):
        self.store = JobStore(database, limits)
        self.pool = pool
        self.limits = limits
        self.workers = workers
        self.poll_s = poll_s
        self.base_url = ''
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        self._started_pid = None
        self.name = f'{socket.gethostname()}:{os.getpid()}'

    def ensure_started(self):
        """Start the threads (once per process: gunicorn forks after the app is built)."""
        if self.workers <= 0 or self._started_pid == os.getpid():
            return
        self._started_pid = os.getpid()
        self.name = f'{socket.gethostname()}:{os.getpid()}'
        self._stop.clear()
        self.recover()
        self._threads = [threading.Thread(target=self._work, name=f'uws-{i}', daemon=True)
                         for i in range(self.workers)]
        self._threads.append(threading.Thread(target=self._maintain, name='uws-maint',
                                              daemon=True))
        for t in self._threads:
            t.start()

    def stop(self):
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)

    def notify(self):
        """Wake the workers (a job was queued here)."""
        self._wake.set()

    def recover(self):
        """Queue again the jobs whose worker process on this host is gone."""
        host = socket.gethostname()
        for job in self.store.list(phases=['EXECUTING']):
            w_host, _, w_pid = (job.worker or '').rpartition(':')
            if w_host == host and w_pid.isdigit() and not pid_alive(int(w_pid)):
                log.warning('job %s lost its worker %s: queued again', job.job_id, job.worker)
                self.store.update(job.job_id, ('EXECUTING',), phase='QUEUED', worker=None,
                                  backend_pid=None, start_time=None)

    def claim(self):
        """Take the oldest QUEUED job for this worker; its id, or None."""
        with self.store._conn() as conn:
            row = conn.execute(
                "UPDATE uws.jobs SET phase = 'EXECUTING', start_time = %s, worker = %s "
                "WHERE job_id = (SELECT job_id FROM uws.jobs WHERE phase = 'QUEUED' "
                "ORDER BY creation_time FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING job_id",
                (_utcnow(), self.name)).fetchone()
        return row[0] if row else None

    def _work(self):
        while not self._stop.is_set():
            try:
                job_id = self.claim()
            except Exception:  # database down: retry later rather than kill the thread
                log.exception('cannot claim jobs')
                job_id = None
            if job_id is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.run(job_id)

    def run(self, job_id):
        """Execute one claimed job and record its outcome."""
        from .query import as_viewer
        from .tap import parse_tap_request, result_body, run_tap_query

        job = self.store.get(job_id)
        folder = self.store.job_dir(job_id)
        try:
            params = Params((k, v) for k, v in job.parameters.items() if not k.startswith('_'))
            files = {name: open(path, 'rb').read()
                     for name, path in job.parameters.get('_uploads', {}).items()}
            request = parse_tap_request(params, self.limits)
            # The job sees what its owner may see, whoever runs it and whenever.
            with as_viewer(job.owner):
                result = run_tap_query(
                    self.pool, request, files, self.limits, self.base_url,
                    timeout_s=job.execution_duration_s,
                    on_backend=lambda pid: self.store.update(job_id, backend_pid=pid))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / 'result'
            with open(path, 'wb') as fh:
                for chunk in result_body(result, request):
                    fh.write(chunk)
            self.store.update(job_id, ('EXECUTING',), phase='COMPLETED', end_time=_utcnow(),
                              result_path=str(path), result_type=request.mime,
                              result_rows=result.rows_sent, backend_pid=None)
        except VOError as exc:
            self.store.update(job_id, ('EXECUTING',), phase='ERROR', end_time=_utcnow(),
                              error_message=exc.message, backend_pid=None)
        except Exception as exc:  # a job never dies silently: it ends in ERROR
            log.exception('job %s failed', job_id)
            self.store.update(job_id, ('EXECUTING',), phase='ERROR', end_time=_utcnow(),
                              error_message=f'internal error: {type(exc).__name__}',
                              backend_pid=None)

    def _maintain(self):
        while not self._stop.wait(1.0):
            try:
                self.store.destroy_expired()
                now = _utcnow()
                for job in self.store.list(phases=['EXECUTING']):
                    limit = job.execution_duration_s
                    if limit and job.start_time and (now - job.start_time).total_seconds() \
                            > limit + 1:
                        self.store.update(job.job_id, ('EXECUTING',), phase='ERROR',
                                          end_time=now, error_message=(
                                              f'execution duration of {limit} s exceeded'))
                        self.store.cancel_backend(job)
            except Exception:  # keep maintaining even if one round fails
                log.exception('UWS maintenance failed')
