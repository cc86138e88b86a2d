"""Reduction requests on the web: the PI's pages, the staff queue and the JSON API.

Pages: ``/requests`` (my requests, their history, products and messages),
``/requests/new`` (the form, with an optional upload of raw files),
``/requests/<id>``, ``/staff/requests`` (accept, reject, re-prioritise,
re-queue). API: ``GET|POST /api/requests``, ``GET /api/requests/<id>``,
``POST /api/requests/<id>/accept|reject|priority|requeue`` (staff); JSON in
and out, errors as ``{"error": ...}`` with their HTTP status.

Requests live in ``requests.*`` (read and written as the owner through
`web.auth.owner_connection`); everything shown of ``sphere.*`` (nights,
sequences, products) is read through ``services().pool.fetch``, so the
database's row-level security applies. A user sees only their own requests
(staff see all); another user's request is answered 404, like one that does
not exist.
"""
import hashlib
import logging
import re
import shutil
import uuid
from pathlib import Path

from flask import (Blueprint, flash, jsonify, redirect, render_template, request, url_for)

from .auth import current_user, login_required, owner_connection, staff_required

__all__ = ['bp', 'save_uploads', 'InputRefused']

bp = Blueprint('requests', __name__)
log = logging.getLogger(__name__)

#: Files one upload may hold.
MAX_UPLOAD_FILES = 500
_CHUNK = 1 << 20
_API_KEYS = ('prog_id', 'nights', 'modes', 'parameters')


class InputRefused(Exception):
    """Input refused before anything is written (a form field, a JSON body, an upload);
    ``http_status`` is the answer's status."""

    def __init__(self, message, http_status=400):
        super().__init__(message)
        self.message = message
        self.http_status = http_status


def _services():
    from .app import services

    return services()


def _http_status(exc):
    from archive.requests import IllegalTransition, RequestForbidden, RequestNotFound

    if isinstance(exc, RequestNotFound):
        return 404
    if isinstance(exc, RequestForbidden):
        return 403
    if isinstance(exc, IllegalTransition):
        return 409
    return getattr(exc, 'http_status', 400)


def _user_errors():
    """The exceptions whose message is for the user (bad input, not found, ...)."""
    from archive.accounts import AccountError
    from archive.requests import RequestError
    from vo.exceptions import VOError

    return (RequestError, AccountError, InputRefused, VOError)


# --- reading what a page shows ---------------------------------------------------------

def _products(product_ids):
    """``{product_id: (type, file, filter, sequence)}`` of those the viewer may see."""
    if not product_ids:
        return {}
    rows = _services().pool.fetch(
        'SELECT product_id, product_type, file_name, filter, sequence_id FROM sphere.products '
        'WHERE product_id = ANY(%s) ORDER BY sequence_id, product_type, product_id',
        (list(product_ids),))
    return {r[0]: r[1:] for r in rows}


def _programme_nights(user):
    """``{programme: [nights with data]}`` for the user's programmes (as the viewer)."""
    progs = sorted(user.programmes)
    if not progs:
        return {}
    rows = _services().pool.fetch(
        "SELECT DISTINCT prog_id, night FROM sphere.sequences WHERE prog_id = ANY(%s) "
        "OR split_part(prog_id, '(', 1) = ANY(%s) ORDER BY night", (progs, progs))
    out = {p: [] for p in progs}
    for prog, night in rows:
        for p in progs:
            if (prog == p or prog.split('(')[0] == p) and night not in out[p]:
                out[p].append(night)
    return out


def _sequences_for(req):
    """The sequences a request covers, resolved as its requester (row-level security)."""
    from archive.requests import covered_sequences
    from vo.query import as_viewer

    with as_viewer(req.requester):
        return covered_sequences(req, _services().pool.fetch)


def _detail(req):
    """Everything the detail page and ``GET /api/requests/<id>`` show."""
    from archive.requests import messages_for, request_events

    with owner_connection() as conn:
        events = request_events(conn, req.request_id)
        messages = messages_for(conn, req.requester, req.request_id)
    return events, messages, _products(req.product_ids)


# --- uploads ------------------------------------------------------------------------------

def _safe_name(name):
    """A file name to store an upload under: its own when harmless (ESO names such as
    ``SPHER.2025-04-13T05:38:41.000.fits`` keep their colons), else werkzeug's."""
    from werkzeug.utils import secure_filename

    base = re.split(r'[/\\]', name or '')[-1]
    if re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._:+-]{0,200}', base):
        return base
    return secure_filename(base)


def save_uploads(files, folder, max_bytes):
    """Write uploaded files into ``folder``, refusing more than ``max_bytes`` in all.

    Parameters
    ----------
    files : list of werkzeug.datastructures.FileStorage
    folder : pathlib.Path
        Created; removed again when the upload is refused.
    max_bytes : int

    Returns
    -------
    list of (pathlib.Path, str)
        Each file written and the SHA-256 of its bytes.

    Raises
    ------
    InputRefused
        Too many files, or too many bytes (413).
    """
    if len(files) > MAX_UPLOAD_FILES:
        raise InputRefused(f'at most {MAX_UPLOAD_FILES} files in one upload')
    folder.mkdir(parents=True, exist_ok=False)
    saved, total, names = [], 0, set()
    try:
        for i, storage in enumerate(files, start=1):
            name = _safe_name(storage.filename) or f'upload-{i}.fits'
            if name in names:  # two files of the same name: keep both
                name = f'{i}-{name}'
            names.add(name)
            path = folder / name
            digest = hashlib.sha256()
            with open(path, 'wb') as out:
                while chunk := storage.stream.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise InputRefused(f'the upload is larger than the limit of '
                                           f'{max_bytes / 2**20:.0f} MiB: nothing was kept',
                                           413)
                    digest.update(chunk)
                    out.write(chunk)
            saved.append((path, digest.hexdigest()))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return saved


def _prog_of_files(saved, prog_id):
    """Names and programmes of the readable files that are not of ``prog_id``.

    Calibrations (``DPR CATG`` CALIB) belong to the observatory's calibration
    plan, not to a programme, and are public at once: a PI may send those the
    reduction of their files needs. Unreadable files are left to the ingest,
    which quarantines them.
    """
    from ingest.exceptions import IngestError
    from ingest.fitsfiles import read_file

    wrong = []
    for path, _ in saved:
        try:
            header = read_file(path)['header']
        except (IngestError, OSError):
            continue
        if header.get('ESO DPR CATG') == 'CALIB':
            continue
        got = header.get('ESO OBS PROG ID')
        got = got.strip() if isinstance(got, str) else got
        if got is None or (got != prog_id and got.split('(')[0] != prog_id):
            wrong.append(f'{path.name} ({got or "no ESO OBS PROG ID"})')
    return wrong


def _ingest_upload(req, folder, saved, user):
    """Ingest the uploaded files of ``req``; record what happened; return the report."""
    from archive.requests import add_note, upload_sequences
    from ingest.run import ingest_paths

    database = _services().database
    report = ingest_paths([str(folder)], database, workers=1)
    quarantined = [{'file': Path(r['file']).name, 'reason': r['reason']}
                   for r in report.refused]
    with owner_connection() as conn:
        sequences = upload_sequences(conn, [digest for _, digest in saved], req.prog_id)
        note = (f'upload of {report.files_seen} files: {report.ingested} ingested, '
                f'{report.already_archived} already in the archive, '
                f'{len(quarantined)} quarantined')
        if quarantined:
            note += ' (' + '; '.join(f"{q['file']}: {q['reason']}" for q in quarantined) + ')'
        add_note(conn, req.request_id, user.username, note, sequence_ids=sequences,
                 upload_dir=str(folder))
    return {'files': report.files_seen, 'ingested': report.ingested,
            'already_archived': report.already_archived, 'quarantined': quarantined,
            'sequence_ids': sequences}


def _create(user, fields, files=()):
    """Validate and record a request (and its upload); return ``(request, upload report)``.

    Bad input raises before anything is written; an upload is kept under
    ``uploads/<request id>`` and ingested.
    """
    from archive.requests import submit, validate_submission

    prog_id, nights, modes, parameters = validate_submission(
        user, fields.get('prog_id'), fields.get('nights'), fields.get('modes'),
        fields.get('parameters'))
    files = [f for f in files if f.filename]
    if not files:
        with owner_connection() as conn:
            req = submit(conn, user, prog_id, nights, modes, parameters)
        return req, None
    settings = _services().database.settings
    uploads = Path(settings.uploads_dir)
    incoming = uploads / 'incoming' / uuid.uuid4().hex
    saved = save_uploads(files, incoming, settings.upload_max_bytes)
    wrong = _prog_of_files(saved, prog_id)
    if wrong:
        shutil.rmtree(incoming, ignore_errors=True)
        shown = ', '.join(wrong[:10]) + (f' and {len(wrong) - 10} more' if len(wrong) > 10
                                         else '')
        raise InputRefused(f'{len(wrong)} uploaded files are not of programme {prog_id}: '
                            f'{shown}. Upload only the files of the programme you ask for '
                            '(nothing was kept).')
    with owner_connection() as conn:
        req = submit(conn, user, prog_id, nights, modes, parameters, source='upload',
                     note=f'{len(saved)} files uploaded')
    folder = uploads / str(req.request_id)
    if folder.exists():  # left by an earlier database: never mix files of two requests
        folder = uploads / f'{req.request_id}-{incoming.name}'
    incoming.rename(folder)
    saved = [(folder / path.name, digest) for path, digest in saved]
    try:
        return req, _ingest_upload(req, folder, saved, user)
    except Exception as exc:  # the request and the files are kept: staff can ingest later
        log.exception('request %s: upload not ingested', req.request_id)
        return req, {'error': f'the files are kept in the request but could not be ingested '
                              f'yet ({type(exc).__name__}); staff will see to it',
                     'files': len(saved), 'ingested': 0, 'already_archived': 0,
                     'quarantined': [], 'sequence_ids': []}


def _form_fields(form):
    """The request a form describes, as the API's JSON fields (types checked later)."""
    parameters = {'algorithm': form.get('algorithm') or 'pca'}
    components = (form.get('components') or '').strip()
    if components:
        try:
            values = [int(v) for v in components.replace(';', ',').split(',') if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise InputRefused('components: whole numbers separated by commas, such as '
                               '"5" or "3, 5, 10"')
        parameters['components'] = values if len(values) > 1 else values[0]
    selection = {}
    for key in ('z_max', 'r_in_px', 'r_out_px'):
        text = (form.get(key) or '').strip()
        if text:
            try:
                selection[key] = float(text)
            except ValueError:
                raise InputRefused(f'frame selection {key}: {text[:20]!r} is not a '
                                   'number') from None
    if selection:
        parameters['frame_selection'] = selection
    return {'prog_id': (form.get('prog_id') or '').strip(), 'nights': form.getlist('nights'),
            'modes': form.getlist('modes'), 'parameters': parameters}


# --- pages --------------------------------------------------------------------------------

def _error_page(message, status):
    return render_template('requests_error.html', message=message, status=status), status


@bp.get('/requests')
@login_required
def my_requests():
    """The user's requests: states, history, products, messages."""
    from archive.requests import list_requests, messages_for, request_events

    user = current_user()
    with owner_connection() as conn:
        reqs = list_requests(conn, requester=user.username, limit=200)
        events = {r.request_id: request_events(conn, r.request_id) for r in reqs}
        messages = messages_for(conn, user.username, limit=50)
    products = _products([p for r in reqs for p in r.product_ids])
    return render_template('requests_list.html', reqs=reqs, events=events, messages=messages,
                           products=products)


@bp.route('/requests/new', methods=['GET', 'POST'])
@login_required
def new():
    """The form: programme, nights, modes, parameters, optional raw files."""
    from archive.requests import ALGORITHMS, MODES

    user = current_user()
    settings = _services().database.settings
    nights = _programme_nights(user)
    fields, error, status = {}, None, 200
    if request.method == 'POST':
        # Raw files are bigger than the site's default limit (when not read already).
        request.max_content_length = settings.upload_max_bytes + 1_000_000
        try:
            fields = _form_fields(request.form)
            req, upload = _create(user, fields, request.files.getlist('files'))
        except _user_errors() as exc:
            error, status = getattr(exc, 'message', None) or str(exc), _http_status(exc)
        else:
            flash(f'request #{req.request_id} submitted: staff will look at it')
            if upload is not None and upload.get('error'):
                flash('upload: ' + upload['error'])
            elif upload is not None:
                flash(f"upload: {upload['ingested']} files ingested, "
                      f"{upload['already_archived']} already in the archive, "
                      f"{len(upload['quarantined'])} quarantined")
            return redirect(url_for('requests.detail', request_id=req.request_id), 303)
    selected = fields.get('prog_id') or request.args.get('prog_id') or ''
    return render_template('requests_new.html', nights=nights, modes=list(MODES),
                           algorithms=ALGORITHMS, fields=fields, selected=selected,
                           error=error, max_upload_mib=settings.upload_max_bytes / 2**20,
                           form=request.form), status


@bp.get('/requests/<int:request_id>')
@login_required
def detail(request_id):
    """One request: what it asks, its history, products and messages."""
    from archive.requests import get_request

    user = current_user()
    try:
        with owner_connection() as conn:
            req = get_request(conn, request_id, user)
        events, messages, products = _detail(req)
    except _user_errors() as exc:
        return _error_page(getattr(exc, 'message', None) or str(exc), _http_status(exc))
    return render_template('requests_detail.html', req=req, events=events, messages=messages,
                           products=products)


def _staff_action(user, request_id, action, values):
    """Apply a staff decision; returns the request."""
    from archive import requests as rq

    with owner_connection() as conn:
        if action == 'accept':
            req = rq.get_request(conn, request_id)
            rq.check_transition(req.state, 'accepted')
            sequences = _sequences_for(req)
            req = rq.accept(conn, request_id, user, sequences, values.get('note'))
        elif action == 'reject':
            req = rq.reject(conn, request_id, user, values.get('reason'))
        elif action == 'priority':
            req = rq.set_priority(conn, request_id, user, values.get('priority'))
        elif action == 'requeue':
            req = rq.requeue(conn, request_id, user, values.get('note'))
        else:
            raise rq.RequestError(f'unknown action {str(action)[:20]!r} (accept, reject, '
                                  'priority or requeue)')
    if req.state == 'queued':
        worker = _services().requests
        if worker is not None:
            worker.notify()
    return req


@bp.route('/staff/requests', methods=['GET', 'POST'])
@staff_required
def staff_queue():
    """Every request, those waiting for a decision first; the staff's actions."""
    from archive.requests import list_requests

    user = current_user()
    error, status = None, 200
    if request.method == 'POST':
        form = request.form
        try:
            request_id = _int_field(form.get('request_id'), 'request_id')
            values = {'note': form.get('note'), 'reason': form.get('reason')}
            if form.get('action') == 'priority':
                values['priority'] = _int_field(form.get('priority'), 'priority')
            req = _staff_action(user, request_id, form.get('action'), values)
        except _user_errors() as exc:
            error, status = getattr(exc, 'message', None) or str(exc), _http_status(exc)
        else:
            flash(f'request #{req.request_id}: {form.get("action")} done, now {req.state}')
            return redirect(url_for('requests.staff_queue'), 303)
    with owner_connection() as conn:
        reqs = list_requests(conn, user, limit=500)
    order = {'submitted': 0, 'failed': 1, 'running': 2, 'queued': 3, 'accepted': 3}
    reqs.sort(key=lambda r: (order.get(r.state, 9), -r.priority, r.request_id))
    return render_template('requests_staff.html', reqs=reqs, error=error), status


def _int_field(text, name):
    from archive.requests import RequestError

    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        raise RequestError(f'{name} must be a whole number') from None


# --- JSON API -----------------------------------------------------------------------------

def _json_error(message, status):
    resp = jsonify(error=message, status=status)
    resp.status_code = status
    if status == 401:
        resp.headers['WWW-Authenticate'] = 'Bearer realm="spheredc"'
    return resp


def _api_user():
    user = current_user()
    if user is None:
        return None, _json_error('log in, or send an API token as "Authorization: Bearer '
                                 '<token>"', 401)
    return user, None


def _json_body(required=True):
    """The request's JSON object (``{}`` when optional and absent)."""
    body = request.get_json(silent=True)
    if body is None and not required and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise InputRefused('send a JSON object (Content-Type: application/json)')
    return body


@bp.errorhandler(413)
def _too_large(exc):
    message = 'the request is larger than the server accepts'
    if request.path.startswith('/api/'):
        return _json_error(message, 413)
    return _error_page(message, 413)


@bp.route('/api/requests', methods=['GET', 'POST'])
def api_requests():
    """GET: the user's requests (staff: all; ``?state=``). POST: a new request (JSON)."""
    from archive.requests import STATES, list_requests

    user, error = _api_user()
    if error:
        return error
    if request.method == 'GET':
        states = request.args.getlist('state')
        bad = [s for s in states if s not in STATES]
        if bad:
            return _json_error(f'unknown state {bad[0][:20]!r} (one of {", ".join(STATES)})',
                               400)
        with owner_connection() as conn:
            reqs = list_requests(conn, user, states=states or None)
        return jsonify(requests=[r.as_json() for r in reqs])
    try:
        body = _json_body()
        unknown = [k for k in body if k not in _API_KEYS]
        if unknown:
            raise InputRefused(f'unknown field {str(unknown[0])[:40]!r} (known: '
                               f'{", ".join(_API_KEYS)})')
        if not body.get('prog_id'):
            raise InputRefused('prog_id is missing: the programme (ESO OBS PROG ID) whose '
                               'data are to be reduced')
        req, _ = _create(user, body)
    except _user_errors() as exc:
        return _json_error(getattr(exc, 'message', None) or str(exc), _http_status(exc))
    resp = jsonify(request=req.as_json())
    resp.status_code = 201
    resp.headers['Location'] = url_for('requests.api_request', request_id=req.request_id)
    return resp


@bp.get('/api/requests/<int:request_id>')
def api_request(request_id):
    """One request, its history, its messages and the products the caller may see."""
    from archive.requests import get_request

    user, error = _api_user()
    if error:
        return error
    try:
        with owner_connection() as conn:
            req = get_request(conn, request_id, user)
        events, messages, products = _detail(req)
    except _user_errors() as exc:
        return _json_error(getattr(exc, 'message', None) or str(exc), _http_status(exc))
    return jsonify(request=req.as_json(), events=[e.as_json() for e in events],
                   messages=[m.as_json() for m in messages],
                   products=[{'product_id': pid, 'product_type': t, 'file_name': f,
                              'filter': flt, 'sequence_id': s,
                              'url': f'/files/product/{pid}'}
                             for pid, (t, f, flt, s) in products.items()])


@bp.post('/api/requests/<int:request_id>/<action>')
def api_action(request_id, action):
    """Staff: ``accept`` ({note}), ``reject`` ({reason}), ``priority`` ({priority}),
    ``requeue`` ({note})."""
    user, error = _api_user()
    if error:
        return error
    if not user.is_staff:
        return _json_error('only staff may do this', 403)
    if action not in ('accept', 'reject', 'priority', 'requeue'):
        return _json_error(f'unknown action {action[:20]!r} (accept, reject, priority or '
                           'requeue)', 404)
    try:
        body = _json_body(required=action in ('reject', 'priority'))
        req = _staff_action(user, request_id, action, body)
    except _user_errors() as exc:
        return _json_error(getattr(exc, 'message', None) or str(exc), _http_status(exc))
    return jsonify(request=req.as_json())
