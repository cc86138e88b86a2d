"""Who is asking: sessions, API tokens, login and logout, CSRF, and the viewer of queries.

Every request is resolved to a user (or anonymous) before its view runs:

- ``Authorization: Bearer <token>`` for scripts (pyvo: ``session.headers``);
  a token that is unknown, revoked or expired is refused with 401;
- otherwise the signed session cookie set at login.

The user name is then made the `vo.query.viewer` of the request, so every
query of every interface (portal, TAP, SCS, SIA2, SSA, DataLink, downloads)
is filtered by the database's row-level security for that user. Forms are
protected against CSRF (Flask-WTF) except for the VO protocols, which are
stateless by standard and whose writes (async jobs) only create things owned
by the caller. Failed logins are throttled per account and per address.
"""
import contextlib
import functools
import os
import secrets

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect,
                   render_template, request, session, url_for)

__all__ = ['bp', 'init_auth', 'current_user', 'owner_connection', 'login_required',
           'staff_required', 'safe_next']

bp = Blueprint('auth', __name__)


def init_auth(app, settings, cookie_secure=None):
    """Install sessions, CSRF protection and user resolution on ``app``."""
    from flask_wtf.csrf import CSRFProtect

    app.secret_key = settings.secret_key or _stored_secret(settings.home)
    secure = settings.cookie_secure if cookie_secure is None else cookie_secure
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE='Lax',
                      SESSION_COOKIE_SECURE=bool(secure), SESSION_COOKIE_NAME='spheredc_session',
                      PERMANENT_SESSION_LIFETIME=12 * 3600,
                      # Tokens in forms stay valid as long as the session (pages stay open).
                      WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_CHECK_DEFAULT=False)
    csrf = CSRFProtect(app)
    app.extensions['spheredc_csrf'] = csrf
    app.before_request(_load_user)
    app.teardown_request(_forget_viewer)
    app.context_processor(lambda: {'current_user': current_user()})
    app.after_request(_security_headers)


def _stored_secret(home):
    # One random key per installation, kept beside the data, readable by the owner only.
    path = home / 'secret_key'
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as fh:
            fh.write(key)
        return key
    except FileExistsError:  # another process wrote it meanwhile
        return path.read_text().strip()


@contextlib.contextmanager
def owner_connection():
    """A pooled connection as the archive's owner (accounts, requests), committed on exit."""
    from .app import services

    with services().owner_pool.connection() as conn:
        yield conn


def current_user():
    """The `archive.accounts.User` of this request, or None (anonymous)."""
    return g.get('user')


def _load_user():
    from archive.accounts import user_for_session, user_for_token
    from vo.query import viewer

    g.user = None
    g.by_token = False
    auth = request.headers.get('Authorization', '')
    if auth:
        scheme, _, token = auth.partition(' ')
        if scheme.lower() != 'bearer' or not token.strip():
            return _unauthorized('the Authorization header must be "Bearer <token>"')
        with owner_connection() as conn:
            g.user = user_for_token(conn, token.strip())
        if g.user is None:
            return _unauthorized('this API token is unknown, revoked or expired')
        g.by_token = True
    elif (key := session.get('sid')) is not None:
        with owner_connection() as conn:
            g.user = user_for_session(conn, key)
        if g.user is None:  # logged out elsewhere, expired, password changed, disabled
            session.clear()
    if request.endpoint == 'requests.new':
        # Raw files uploaded by a PI may be far larger than a TAP upload; the CSRF check
        # below reads the form, so the request's own limit must be set first.
        from .app import services

        request.max_content_length = services().database.settings.upload_max_bytes + 1_000_000
    if not g.by_token and request.method == 'POST' and not _csrf_exempt():
        current_app.extensions['spheredc_csrf'].protect()
    g.viewer_token = viewer.set(g.user.username if g.user else None)


def _forget_viewer(exc=None):
    from vo.query import viewer

    token = g.pop('viewer_token', None)
    if token is not None:
        try:
            viewer.reset(token)
        except ValueError:  # set in another context (streamed response): nothing to undo
            pass


def _csrf_exempt():
    # The VO protocols (TAP, SCS, SIA2, SSA, DataLink) are posted by clients that never
    # saw a form; their writes only create async jobs owned by the caller.
    return request.blueprint == 'vo'


def _unauthorized(message):
    return Response(message + '\n', status=401, content_type='text/plain',
                    headers={'WWW-Authenticate': 'Bearer realm="spheredc"'})


def _security_headers(resp):
    resp.headers.setdefault('X-Content-Type-Options', 'nosniff')
    resp.headers.setdefault('X-Frame-Options', 'DENY')
    resp.headers.setdefault('Referrer-Policy', 'same-origin')
    if resp.mimetype == 'text/html':
        resp.headers.setdefault('Content-Security-Policy',
                                "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    if g.get('user') is not None:
        # Pages of a logged-in user may show proprietary data: never cached by proxies.
        resp.headers['Cache-Control'] = 'private, no-store'
    return resp


def login_required(view):
    """Send anonymous visitors to the login page (API clients get 401)."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            if request.path.startswith('/api/'):
                return _unauthorized('log in or send an API token')
            return redirect(url_for('auth.login', next=request.full_path.rstrip('?')))
        return view(*args, **kwargs)
    return wrapped


def staff_required(view):
    """Only staff may call ``view`` (others get 403)."""
    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user().is_staff:
            abort(403, 'staff only')
        return view(*args, **kwargs)
    return wrapped


def safe_next(target):
    """``target`` if it is a path on this site, else the home page (no open redirects)."""
    # Browsers drop tabs and newlines from URLs ('/\t/evil' is '//evil'): printable only.
    if isinstance(target, str) and target.isprintable() and target.startswith('/') \
            and not target.startswith('//') and '\\' not in target and len(target) < 2000:
        return target
    return url_for('portal.index')


def _client_address():
    return request.remote_addr or 'unknown'


@bp.route('/login', methods=['GET', 'POST'])
def login():
    from archive.accounts import (USERNAME_RE, authenticate, login_blocked, open_session,
                                  record_failed_login)

    error = None
    status = 200
    username = ''
    if request.method == 'POST':
        current_app.extensions['spheredc_csrf'].protect()
        username = (request.form.get('username') or '').strip().lower()[:100]
        password = request.form.get('password') or ''
        keys = [f'ip:{_client_address()}'] + ([f'user:{username}']
                                               if USERNAME_RE.match(username) else [])
        with owner_connection() as conn:
            if login_blocked(conn, keys):
                error, status = ('too many failed logins: wait a few minutes and try again',
                                 429)
            elif not username or not password:
                error, status = 'give your user name and your password', 400
            else:
                user = authenticate(conn, username, password)
                if user is None:
                    record_failed_login(conn, keys)
                    error, status = 'wrong user name or password', 401
        if error is None:
            with owner_connection() as conn:
                key = open_session(conn, user.username,
                                   current_app.config['PERMANENT_SESSION_LIFETIME'],
                                   f'{_client_address()} {request.user_agent.string}')
            session.clear()
            session['sid'] = key
            session.permanent = True
            return redirect(safe_next(request.args.get('next')), 303)
    return render_template('login.html', error=error, username=username,
                           next=request.args.get('next', '')), status


@bp.post('/logout')
def logout():
    from archive.accounts import close_session

    current_app.extensions['spheredc_csrf'].protect()
    with owner_connection() as conn:
        close_session(conn, session.get('sid'))
    session.clear()
    return redirect(url_for('portal.index'), 303)


@bp.route('/account', methods=['GET', 'POST'])
@login_required
def account():
    """The user's programmes and API tokens; POST creates or revokes a token."""
    from archive.accounts import create_token

    user = current_user()
    new_token = None
    if request.method == 'POST':
        action = request.form.get('action')
        with owner_connection() as conn:
            if action == 'create-token':
                label = (request.form.get('label') or '').strip()[:100] or None
                new_token = create_token(conn, user.username, label)
            elif action == 'revoke-token':
                digest = request.form.get('token_sha256') or ''
                cur = conn.execute('UPDATE accounts.api_tokens SET revoked = true '
                                   'WHERE token_sha256 = %s AND username = %s',
                                   (digest, user.username))
                if cur.rowcount:
                    flash('token revoked')
                else:
                    flash('no such token')
            else:
                abort(400, 'unknown action')
    with owner_connection() as conn:
        tokens = conn.execute(
            'SELECT token_sha256, label, created_at, last_used_at, expires_at FROM '
            'accounts.api_tokens WHERE username = %s AND NOT revoked ORDER BY created_at',
            (user.username,)).fetchall()
    return render_template('account.html', user=user, tokens=tokens, new_token=new_token)
