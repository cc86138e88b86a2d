"""UWS 1.1 jobs for async TAP: stored in PostgreSQL (``uws.jobs``), with XML documents.

The job store is shared by every server process, so a job created by one
gunicorn worker is run by whichever worker claims it (`vo.uws_runner`) and
survives a restart. Times are UTC.
"""
import dataclasses
import datetime
import json
import secrets
import shutil
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .exceptions import JobNotFound, JobStateError, UsageError
from .params import parse_int

__all__ = ['Job', 'JobStore', 'FINAL_PHASES', 'ACTIVE_PHASES', 'job_xml', 'jobs_xml',
           'parse_iso']

PHASES = ('PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED', 'UNKNOWN',
          'HELD', 'SUSPENDED', 'ARCHIVED')
ACTIVE_PHASES = ('PENDING', 'QUEUED', 'EXECUTING')
FINAL_PHASES = ('COMPLETED', 'ERROR', 'ABORTED', 'ARCHIVED')
_UWS_NS = ('xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
           'xmlns:xlink="http://www.w3.org/1999/xlink" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
_COLUMNS = ('job_id', 'run_id', 'owner', 'phase', 'parameters', 'creation_time', 'start_time',
            'end_time', 'execution_duration_s', 'destruction_time', 'quote_time',
            'error_message', 'result_path', 'result_type', 'result_rows', 'backend_pid',
            'worker')


@dataclasses.dataclass(frozen=True)
class Job:
    """One row of ``uws.jobs``."""

    job_id: str
    run_id: str | None
    owner: str | None
    phase: str
    parameters: dict
    creation_time: datetime.datetime
    start_time: datetime.datetime | None
    end_time: datetime.datetime | None
    execution_duration_s: int
    destruction_time: datetime.datetime
    quote_time: datetime.datetime | None
    error_message: str | None
    result_path: str | None
    result_type: str | None
    result_rows: int | None
    backend_pid: int | None
    worker: str | None


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(t):
    return t.strftime('%Y-%m-%dT%H:%M:%S.') + f'{t.microsecond // 1000:03d}Z'


def parse_iso(text, name='time'):
    """A naive UTC datetime from an ISO 8601 string (``Z`` or offset accepted).

    Raises
    ------
    UsageError
        When ``text`` is not ISO 8601.
    """
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace('Z', '+00:00'))
    except (AttributeError, ValueError):
        raise UsageError(f'{name} must be an ISO 8601 time, not {text!r}') from None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


class JobStore:
    """The jobs table and the job folders under ``$SPHEREDC_HOME/uws``.

    Parameters
    ----------
    database : archive.db.Database
    limits : vo.query.Limits
    """

    def __init__(self, database, limits):
        self.database = database
        self.limits = limits
        self.root = Path(database.settings.home) / 'uws'

    def _conn(self):
        return self.database.connect(autocommit=True)

    def job_dir(self, job_id):
        return self.root / job_id

    def create(self, params, files, owner=None):
        """Create a PENDING job from request parameters; returns its `Job`.

        Inline upload parts are kept in the job folder. ``PHASE=RUN`` queues it.
        """
        job_id = secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')
        stored = {k: v for k, v in params.as_dict().items() if k != 'phase'}
        duration = self._duration(stored.pop('executionduration', None))
        if files:
            folder = self.job_dir(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            uploads = {}
            for name, data in files.items():
                path = folder / f'upload_{len(uploads)}'
                path.write_bytes(data)
                uploads[name] = str(path)
            stored['_uploads'] = uploads
        now = _utcnow()
        destruction = now + datetime.timedelta(days=self.limits.destruction_days)
        phase = 'QUEUED' if (params.get('PHASE') or '').upper() == 'RUN' else 'PENDING'
        with self._conn() as conn:
            conn.execute('INSERT INTO uws.jobs (job_id, run_id, owner, phase, parameters, '
                         'creation_time, execution_duration_s, destruction_time) '
                         'VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
                         (job_id, stored.get('runid'), owner, phase, json.dumps(stored),
                          now, duration, destruction))
        return self.get(job_id)

    def _duration(self, text):
        if text in (None, ''):
            return self.limits.async_default_s
        value = parse_int(text, 'EXECUTIONDURATION')
        return self.limits.async_hard_s if value == 0 else min(value, self.limits.async_hard_s)

    def get(self, job_id):
        """The `Job` ``job_id``.

        Raises
        ------
        JobNotFound
        """
        with self._conn() as conn:
            row = conn.execute(f'SELECT {", ".join(_COLUMNS)} FROM uws.jobs WHERE job_id = %s',
                               (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f'no job {job_id!r} (never created, or destroyed)')
        return Job(*row)

    def list(self, phases=(), after=None, last=None, owner=Ellipsis):
        """Jobs, newest first (UWS 1.1 section 2.2.2.1 filters).

        ``owner``: only the jobs of this user (None: the anonymous ones);
        default: everybody's.
        """
        where, args = ["phase <> 'ARCHIVED'"] if not phases else ['phase = ANY(%s)'], []
        if phases:
            args.append(list(phases))
        if owner is not Ellipsis:
            where.append('owner IS NOT DISTINCT FROM %s')
            args.append(owner)
        if after is not None:
            where.append('creation_time > %s')
            args.append(after)
        sql = (f'SELECT {", ".join(_COLUMNS)} FROM uws.jobs WHERE {" AND ".join(where)} '
               'ORDER BY creation_time DESC')
        if last is not None:
            sql += ' LIMIT %s'
            args.append(last)
        with self._conn() as conn:
            return [Job(*row) for row in conn.execute(sql, args).fetchall()]

    def update(self, job_id, only_phases=None, **values):
        """Set columns of a job (only in ``only_phases`` when given); True if changed."""
        sets = ', '.join(f'{k} = %s' for k in values)
        sql = f'UPDATE uws.jobs SET {sets} WHERE job_id = %s'
        args = [json.dumps(v) if k == 'parameters' else v for k, v in values.items()]
        args.append(job_id)
        if only_phases:
            sql += ' AND phase = ANY(%s)'
            args.append(list(only_phases))
        with self._conn() as conn:
            return conn.execute(sql, args).rowcount > 0

    def set_phase(self, job_id, phase):
        """Handle a PHASE=RUN or PHASE=ABORT request.

        Raises
        ------
        UsageError, JobStateError, JobNotFound
        """
        job = self.get(job_id)
        phase = (phase or '').upper()
        if phase == 'RUN':
            if job.phase in ('QUEUED', 'EXECUTING'):
                return
            if not self.update(job_id, ('PENDING', 'HELD'), phase='QUEUED'):
                raise JobStateError(f'job {job_id} is {job.phase}: it cannot be run again')
        elif phase == 'ABORT':
            if job.phase in FINAL_PHASES:
                return
            self.update(job_id, ACTIVE_PHASES + ('HELD', 'SUSPENDED'), phase='ABORTED',
                        end_time=_utcnow())
            self.cancel_backend(job)
        else:
            raise UsageError(f'PHASE={phase} is not allowed (RUN or ABORT)')

    def cancel_backend(self, job):
        """Cancel the PostgreSQL query of an executing job (if any)."""
        if job.phase == 'EXECUTING' and job.backend_pid:
            with self._conn() as conn:
                conn.execute('SELECT pg_cancel_backend(%s)', (job.backend_pid,))

    def set_parameters(self, job_id, params):
        """Change parameters of a PENDING job (UWS 1.1 section 2.2.3.7)."""
        job = self.get(job_id)
        if job.phase != 'PENDING':
            raise JobStateError(f'job {job_id} is {job.phase}: parameters are frozen')
        merged = dict(job.parameters)
        merged.update({k: v for k, v in params.as_dict().items()
                       if k not in ('phase', 'executionduration', 'destruction')})
        self.update(job_id, ('PENDING',), parameters=merged)

    def set_execution_duration(self, job_id, text):
        job = self.get(job_id)
        if job.phase != 'PENDING':
            raise JobStateError(f'job {job_id} is {job.phase}: its duration is frozen')
        self.update(job_id, ('PENDING',), execution_duration_s=self._duration(text))

    def set_destruction(self, job_id, text):
        self.get(job_id)
        wanted = parse_iso(text, 'DESTRUCTION')
        latest = _utcnow() + datetime.timedelta(days=self.limits.destruction_days)
        self.update(job_id, destruction_time=min(wanted, latest))

    def delete(self, job_id):
        """Abort and destroy a job with its files."""
        job = self.get(job_id)
        self.cancel_backend(job)
        with self._conn() as conn:
            conn.execute('DELETE FROM uws.jobs WHERE job_id = %s', (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def destroy_expired(self):
        """Delete jobs past their destruction time; returns how many."""
        with self._conn() as conn:
            rows = conn.execute('SELECT job_id FROM uws.jobs WHERE destruction_time < %s',
                                (_utcnow(),)).fetchall()
        for (job_id,) in rows:
            self.delete(job_id)
        return len(rows)

    def wait(self, job_id, wait_s, phase=None):
        """Block while the job stays in an active phase (UWS 1.1 blocking WAIT)."""
        job = self.get(job_id)
        start_phase = phase.upper() if phase else job.phase
        if job.phase not in ACTIVE_PHASES or job.phase != start_phase:
            return job
        deadline = time.monotonic() + (60 if wait_s < 0 else min(wait_s, 60))
        while time.monotonic() < deadline:
            time.sleep(0.05)
            job = self.get(job_id)
            if job.phase != start_phase:
                break
        return job


def _nil(tag, value):
    if value is None:
        return f'<uws:{tag} xsi:nil="true"/>'
    return f'<uws:{tag}>{escape(str(value))}</uws:{tag}>'


def job_xml(job, job_url):
    """The UWS 1.1 job document."""
    params = ''.join(f'<uws:parameter id={quoteattr(k)}>{escape(str(v))}</uws:parameter>'
                     for k, v in sorted(job.parameters.items()) if not k.startswith('_'))
    results = ''
    if job.phase == 'COMPLETED' and job.result_path:
        results = (f'<uws:result id="result" xlink:type="simple" '
                   f'xlink:href={quoteattr(job_url + "/results/result")} '
                   f'mime-type={quoteattr(job.result_type or "")}/>')
    error = ''
    if job.phase == 'ERROR':
        error = (f'<uws:errorSummary type="fatal" hasDetail="true"><uws:message>'
                 f'{escape(job.error_message or "")}</uws:message></uws:errorSummary>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<uws:job {_UWS_NS} version="1.1">'
            f'<uws:jobId>{job.job_id}</uws:jobId>'
            + (_nil('runId', job.run_id) if job.run_id else '')
            + _nil('ownerId', job.owner) + f'<uws:phase>{job.phase}</uws:phase>'
            + _nil('quote', job.quote_time and _iso(job.quote_time))
            + f'<uws:creationTime>{_iso(job.creation_time)}</uws:creationTime>'
            + _nil('startTime', job.start_time and _iso(job.start_time))
            + _nil('endTime', job.end_time and _iso(job.end_time))
            + f'<uws:executionDuration>{job.execution_duration_s}</uws:executionDuration>'
            + f'<uws:destruction>{_iso(job.destruction_time)}</uws:destruction>'
            + f'<uws:parameters>{params}</uws:parameters>'
            + f'<uws:results>{results}</uws:results>' + error + '</uws:job>\n')


def jobs_xml(jobs, base_url):
    """The UWS 1.1 job list."""
    refs = ''.join(f'<uws:jobref id="{j.job_id}" xlink:href="{base_url}/{j.job_id}">'
                   f'<uws:phase>{j.phase}</uws:phase>'
                   + (_nil('runId', j.run_id) if j.run_id else '')
                   + _nil('ownerId', j.owner)
                   + f'<uws:creationTime>{_iso(j.creation_time)}</uws:creationTime>'
                   '</uws:jobref>' for j in jobs)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<uws:jobs {_UWS_NS} version="1.1">{refs}</uws:jobs>\n')
