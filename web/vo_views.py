"""Flask routes of the VO services: each view parses, calls vo/ and converts the reply.

Paths as in DESIGN.md: TAP under ``/tap``, Cone Search ``/scs/<table>``,
SIA2 ``/sia/query``, SSA ``/ssa``, DataLink ``/datalink/links``, each with
VOSI ``capabilities`` and ``availability``.
"""
from flask import Blueprint, Response, abort, redirect, request
from werkzeug.exceptions import RequestEntityTooLarge

from .convert import base_url, request_files, request_params, to_response

bp = Blueprint('vo', __name__)

XML = 'text/xml'


def _svc():
    from .app import services

    svc = services()
    svc.jobs.base_url = base_url()
    svc.jobs.ensure_started()
    return svc


def _error(exc):
    from vo.reply import error_reply

    return to_response(error_reply(exc))


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc):
    from vo.exceptions import UploadError

    return _error(UploadError('request body too large (upload limit exceeded)', 413))


# --- TAP synchronous, VOSI, examples
@bp.route('/tap/sync', methods=['GET', 'POST'])
def tap_sync():
    from vo.tap import sync_query

    svc = _svc()
    try:
        files = request_files()
    except RequestEntityTooLarge as exc:
        return too_large(exc)
    return to_response(sync_query(svc.pool, request_params(), files, svc.limits, base_url()))


@bp.get('/tap')
def tap_root():
    return redirect(base_url() + '/tap/capabilities', 303)


@bp.get('/tap/capabilities')
def tap_capabilities():
    from vo.vosi import capabilities_xml, tap_capability

    return Response(capabilities_xml(tap_capability(base_url() + '/tap', _svc().limits)),
                    content_type=XML)


@bp.get('/tap/availability')
@bp.get('/scs/<table>/availability')
@bp.get('/<any(sia, ssa, datalink):service>/availability')
def availability(service='tap', table=None):
    from vo.vosi import availability_xml

    ok = _svc().pool.ping()
    return Response(availability_xml(ok, 'database answers' if ok else
                                     'the database does not answer'),
                    status=200, content_type=XML)


@bp.get('/tap/tables')
def tap_tables():
    from vo.exceptions import UsageError
    from vo.vosi import tableset_xml

    detail = (request_params().get('DETAIL') or 'max').lower()
    if detail not in ('min', 'max'):
        return _error(UsageError('DETAIL must be min or max'))
    return Response(tableset_xml(detail), content_type=XML)


@bp.get('/tap/tables/<name>')
def tap_table(name):
    from vo.vosi import table_xml

    doc = table_xml(name)
    if doc is None:
        return Response(f'no table {name}\n', status=404, content_type='text/plain')
    return Response(doc, content_type=XML)


@bp.get('/tap/examples')
def tap_examples():
    from vo.examples import examples_xhtml

    return Response(examples_xhtml(base_url() + '/tap'), content_type='application/xhtml+xml')


# --- TAP asynchronous (UWS 1.1)
def _uws_error(exc):
    return Response(exc.message + '\n', status=exc.http_status, content_type='text/plain')


def _job_url(job_id):
    return f'{base_url()}/tap/async/{job_id}'


@bp.route('/tap/async', methods=['GET', 'POST'])
def tap_async():
    from vo.exceptions import VOError
    from vo.params import parse_int
    from vo.uws import jobs_xml, parse_iso

    svc = _svc()
    params = request_params()
    try:
        if request.method == 'POST':
            job = svc.jobs.store.create(params, request_files(), owner=_username())
            if job.phase == 'QUEUED':
                svc.jobs.notify()
            return redirect(_job_url(job.job_id), 303)
        last = params.get('LAST')
        after = params.get('AFTER')
        jobs = svc.jobs.store.list(
            phases=[p.upper() for p in params.getlist('PHASE')],
            after=parse_iso(after, 'AFTER') if after else None,
            last=parse_int(last, 'LAST', lo=1) if last else None, owner=_username())
        if _username() is None:
            # Anonymous jobs are reachable by their random URL only: listing them
            # would show everybody's queries to everybody.
            jobs = []
    except VOError as exc:
        return _uws_error(exc)
    return Response(jobs_xml(jobs, base_url() + '/tap/async'), content_type=XML)


@bp.route('/tap/async/<job_id>', methods=['GET', 'POST', 'DELETE'])
@bp.route('/tap/async/<job_id>/<prop>', methods=['GET', 'POST'])
@bp.route('/tap/async/<job_id>/results/<result_id>', methods=['GET'])
def tap_job(job_id, prop=None, result_id=None):
    from vo.exceptions import VOError

    svc = _svc()
    try:
        return _job_view(svc, job_id, prop, result_id)
    except VOError as exc:
        return _uws_error(exc)


def _username():
    from .auth import current_user

    user = current_user()
    return user.username if user else None


def _job_view(svc, job_id, prop, result_id):
    from vo.exceptions import JobNotFound, UsageError
    from vo.params import parse_float
    from vo.uws import _iso, job_xml

    store = svc.jobs.store
    # A job (its parameters, results, existence) belongs to whoever created it; an
    # anonymous job to whoever knows its random identifier.
    if store.get(job_id).owner != _username():
        raise JobNotFound(f'no job {job_id!r} (never created, or destroyed)')
    params = request_params()
    text = 'text/plain'
    if request.method == 'DELETE' or (prop is None and request.method == 'POST'
                                      and (params.get('ACTION') or '').upper() == 'DELETE'):
        store.delete(job_id)
        return redirect(base_url() + '/tap/async', 303)
    if request.method == 'POST':
        if prop is None:
            store.set_parameters(job_id, params)
            if params.get('PHASE'):
                store.set_phase(job_id, params.get('PHASE'))
        elif prop == 'phase':
            store.set_phase(job_id, params.get('PHASE'))
        elif prop == 'executionduration':
            store.set_execution_duration(job_id, params.get('EXECUTIONDURATION'))
        elif prop == 'destruction':
            store.set_destruction(job_id, params.get('DESTRUCTION') or '')
        elif prop == 'parameters':
            store.set_parameters(job_id, params)
        else:
            abort(404)
        if store.get(job_id).phase == 'QUEUED':
            svc.jobs.notify()
        return redirect(_job_url(job_id), 303)
    if result_id is not None:
        job = store.get(job_id)
        if result_id != 'result' or job.phase != 'COMPLETED' or not job.result_path:
            raise JobNotFound(f'job {job_id} has no result {result_id!r}')
        return Response(_file_chunks(job.result_path), content_type=job.result_type)
    if prop is None:
        wait = params.get('WAIT')
        if wait is not None:
            job = store.wait(job_id, parse_float(wait, 'WAIT', lo=-1), params.get('PHASE'))
        else:
            job = store.get(job_id)
        return Response(job_xml(job, _job_url(job_id)), content_type=XML)
    job = store.get(job_id)
    if prop == 'phase':
        return Response(job.phase, content_type=text)
    if prop == 'executionduration':
        return Response(str(job.execution_duration_s), content_type=text)
    if prop == 'destruction':
        return Response(_iso(job.destruction_time), content_type=text)
    if prop == 'quote':
        return Response(_iso(job.quote_time) if job.quote_time else '', content_type=text)
    if prop == 'owner':
        return Response(job.owner or '', content_type=text)
    if prop == 'error':
        if job.phase != 'ERROR':
            raise UsageError(f'job {job_id} is {job.phase}: no error')
        from vo.votable import error_document
        return Response(error_document(job.error_message or ''),
                        content_type='application/x-votable+xml')
    if prop in ('parameters', 'results'):
        doc = job_xml(job, _job_url(job_id))
        start = doc.index(f'<uws:{prop}>')
        end = doc.index(f'</uws:{prop}>') + len(f'</uws:{prop}>')
        inner = doc[start:end].replace(f'<uws:{prop}>', f'<uws:{prop} {_ns()}>', 1)
        return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + inner, content_type=XML)
    abort(404)


def _ns():
    from vo.uws import _UWS_NS

    return _UWS_NS


def _file_chunks(path, size=1 << 16):
    with open(path, 'rb') as fh:
        while chunk := fh.read(size):
            yield chunk


# --- Cone Search, SIA2, SSA, DataLink, files
_STANDARDS = {'scs': 'ivo://ivoa.net/std/ConeSearch', 'sia': 'ivo://ivoa.net/std/SIA#query-2.0',
              'ssa': 'ivo://ivoa.net/std/SSA', 'datalink': 'ivo://ivoa.net/std/DataLink#links-1.0'}


@bp.get('/scs/<table>/capabilities')
@bp.get('/<any(sia, ssa, datalink):service>/capabilities')
def capabilities(service='scs', table=None):
    from vo.vosi import Capability, capabilities_xml, vosi_capabilities

    base = base_url()
    service_base, endpoint = {
        'scs': (f'{base}/scs/{table}', f'{base}/scs/{table}?'),
        'sia': (f'{base}/sia', f'{base}/sia/query'),
        'ssa': (f'{base}/ssa', f'{base}/ssa?'),
        'datalink': (f'{base}/datalink', f'{base}/datalink/links'),
    }[service]
    caps = [Capability(_STANDARDS[service], endpoint, use='base', role='std'),
            *vosi_capabilities(service_base)]
    return Response(capabilities_xml(caps), content_type=XML)


@bp.route('/scs/<table>', methods=['GET', 'POST'])
def scs(table):
    from vo.scs import cone_search

    svc = _svc()
    return to_response(cone_search(svc.pool, table, request_params(), svc.limits))


@bp.route('/sia/query', methods=['GET', 'POST'])
def sia():
    from vo.sia2 import sia_query

    svc = _svc()
    return to_response(sia_query(svc.pool, request_params(), svc.limits, base_url()))


@bp.route('/ssa', methods=['GET', 'POST'])
def ssa():
    from vo.ssa import ssa_query

    svc = _svc()
    return to_response(ssa_query(svc.pool, request_params(), svc.limits, base_url()))


@bp.route('/datalink/links', methods=['GET', 'POST'])
def datalink():
    from vo.datalink import links_query

    svc = _svc()
    return to_response(links_query(svc.pool, request_params(), base_url()))


@bp.get('/files/<any(product, raw):kind>/<path:ident>')
def files(kind, ident):
    from flask import send_file

    from vo.datalink import product_file, raw_file
    from vo.exceptions import VOError

    svc = _svc()
    settings = svc.database.settings
    try:
        if kind == 'product':
            path, ctype, name = product_file(svc.pool, ident, settings.products_dir)
        else:
            path, ctype, name = raw_file(svc.pool, ident, settings.home)
    except VOError as exc:
        return Response(exc.message + '\n', status=exc.http_status, content_type='text/plain')
    return send_file(path, mimetype=ctype, download_name=name, conditional=True)
