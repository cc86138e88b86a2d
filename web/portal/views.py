"""Home page, search page and the error pages of the whole site.

Each view parses (`web.portal.search`), reads as the viewer
(`web.portal.records`) and renders a template; Jinja's autoescape is the only
escaping, so anything a visitor typed comes back as text.
"""
import threading
import time
from urllib.parse import urlencode

from flask import jsonify, make_response, render_template, request, url_for

from . import bp, records
from .search import (CALIB_STATUSES, DEFAULT_RADIUS_ARCSEC, MAX_PER_PAGE, MAX_RADIUS_ARCSEC,
                     SORT_KEYS, FormError, adql_query, parse_search, resolve_name,
                     suggest_names)

#: Fields of the search form (anything else in the query string is ignored).
FORM_KEYS = ('name', 'ra', 'dec', 'radius', 'night_from', 'night_to', 'arm', 'mode', 'filter',
             'coronagraph', 'prog_id', 'survey', 'calib_status', 'has_candidates', 'min_rotation',
             'sort', 'order', 'page', 'per_page')

_CHOICES_TTL_S = 60.0
_choices = {}
_choices_lock = threading.Lock()


def _pool():
    from web.app import services

    return services().pool


def _viewer():
    from vo.query import viewer

    return viewer.get()


def form_choices(pool, fetch=True):
    """Target names and suggested values of the text fields, per viewer.

    Kept a minute per process: names are resolved and suggested from here, and
    the rows themselves are always read afresh (a name appearing in the last
    minute is found by position meanwhile). ``fetch=False``: only what is kept
    (no query at all), possibly nothing.
    """
    who = _viewer()
    now = time.monotonic()
    with _choices_lock:
        hit = _choices.get(who)
        if hit and (now - hit[0] < _CHOICES_TTL_S or not fetch):
            return hit[1]
    if not fetch:
        return {}
    values = records.distinct_values(pool)
    with _choices_lock:
        if len(_choices) > 1000:  # many users: start again rather than grow
            _choices.clear()
        _choices[who] = (now, values)
    return values


def _form_context(pool, form, errors=None):
    # A form with errors runs no query at all.
    return {'form': form, 'errors': errors or {}, 'choices': form_choices(pool, not errors),
            'calib_statuses': CALIB_STATUSES, 'max_radius': MAX_RADIUS_ARCSEC,
            'default_radius': DEFAULT_RADIUS_ARCSEC, 'max_per_page': MAX_PER_PAGE}


@bp.get('/')
def index():
    pool = _pool()
    return render_template('index.html', counts=records.archive_counts(pool),
                           **_form_context(pool, {}))


def _search_url(form, **changes):
    args = {k: form.get(k) for k in FORM_KEYS if form.get(k)}
    args.update({k: v for k, v in changes.items() if v is not None})
    return url_for('portal.search', **args)


@bp.get('/search')
def search():
    """Search sequences; a wrong field gives the form back with its message (400)."""
    from web.convert import base_url

    pool = _pool()
    form = {k: request.args.get(k, '') for k in FORM_KEYS}
    try:
        query = parse_search(request.args)
    except FormError as exc:
        return render_template('search.html', results=None, **_form_context(
            pool, form, exc.errors)), 400
    ctx = _form_context(pool, form)
    names = ()
    if query.name is not None:
        known = ctx['choices']['target_name']
        names = resolve_name(query.name, known)
        if not names:
            return render_template('search.html', results=None, unknown_name=query.name,
                                   suggestions=suggest_names(query.name, known),
                                   search_url=lambda **c: _search_url(form, **c), **ctx)
    programmes = ()
    if query.survey is not None:
        programmes = records.survey_programmes(pool, query.survey)
        if not programmes:
            known = records.distinct_values(pool)['survey']  # afresh: a survey just added
            message = f'no survey called {query.survey!r}' + (
                ': known surveys are ' + ', '.join(known) if known else
                ' (no survey is recorded in the archive)')
            return render_template('search.html', results=None, **_form_context(
                pool, form, {'survey': message})), 400
    rows, total = records.search_page(pool, query, names, programmes)
    adql = adql_query(query, names, programmes)
    tap = base_url() + '/tap'
    sync_url = tap + '/sync?' + urlencode({'REQUEST': 'doQuery', 'LANG': 'ADQL',
                                           'QUERY': adql})
    n_pages = -(-total // query.per_page) if total else None
    return render_template('search.html', results=rows, total=total, query=query,
                           names=names, n_pages=n_pages, adql=adql, tap_url=tap,
                           sync_url=sync_url, sort_keys=SORT_KEYS,
                           search_url=lambda **c: _search_url(form, **c), **ctx)


# --- Error pages of the whole site (HTML, or JSON for API clients)
_TITLES = {400: 'Bad request', 401: 'Not logged in', 403: 'Not allowed', 404: 'Not found',
           405: 'Method not allowed', 413: 'Too large', 429: 'Too many requests',
           500: 'Server error', 503: 'Service unavailable'}
_DEFAULT_TEXT = {
    404: 'There is nothing at this address.',
    403: 'You may not see this page.',
    413: 'What you sent is larger than this site accepts.',
    429: 'Too many requests in a short time: wait a little and try again.',
    500: 'Something went wrong on our side. It has been logged; please try again later.',
    503: 'The archive database does not answer at the moment; please try again later.',
}


def _wants_json():
    if request.path.startswith('/api/'):
        return True
    best = request.accept_mimetypes.best_match(['text/html', 'application/json'])
    return best == 'application/json' and request.accept_mimetypes[best] > \
        request.accept_mimetypes['text/html']


def error_response(code, message):
    """An error page (or a JSON error for API clients) with ``code``."""
    if _wants_json():
        resp = jsonify(error=message, status=code)
    else:
        resp = make_response(render_template('error.html', code=code,
                                             title=_TITLES.get(code, 'Error'), message=message))
    resp.status_code = code
    return resp


def _http_error(exc):
    code = exc.code or 500
    # Werkzeug's stock descriptions speak HTTP; ours speak to people. A message given
    # to abort() is kept (it is escaped in the template like any text).
    stock = type(exc).description
    message = exc.description if exc.description and exc.description != stock else \
        _DEFAULT_TEXT.get(code, exc.description or _TITLES.get(code, 'Error'))
    resp = error_response(code, message)
    if code == 429 and getattr(exc, 'retry_after', None):
        resp.headers['Retry-After'] = str(exc.retry_after)
    return resp


def _server_error(exc):
    # Never the exception's text: it may name files, tables or queries.
    return error_response(500, _DEFAULT_TEXT[500])


def _unavailable(exc):
    return error_response(503, _DEFAULT_TEXT[503])


def register_error_pages(blueprint):
    """Install the site's error pages (every blueprint) on ``blueprint``."""
    from vo.exceptions import ServiceUnavailable

    for code in (400, 403, 404, 405, 413, 429):
        blueprint.app_errorhandler(code)(_http_error)
    blueprint.app_errorhandler(500)(_server_error)
    blueprint.app_errorhandler(ServiceUnavailable)(_unavailable)

