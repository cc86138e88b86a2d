"""Logins, sessions, API tokens and CSRF against the real server.

Failed logins are throttled per account and per client address. So that these
tests never block the other tests' logins (all from 127.0.0.1), each test that
fails a login on purpose connects from its own loopback address (127.0.0.x:
Linux routes the whole 127/8 to the loopback interface) with its own user, and
forgets its failures when done.
"""
import datetime
import re
from urllib.parse import quote, urljoin, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.web.conftest import csrf_token, login

QUERY = 'SELECT sequence_id, target_name FROM sphere.sequences'


class _FromAddress(HTTPAdapter):
    """Connect from a given local address (the server sees it as the client's)."""

    def __init__(self, address):
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs['source_address'] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address):
    session = requests.Session()
    session.mount('http://', _FromAddress(address))
    return session


def _owner(portal_archive):
    return portal_archive.database.connect()


@pytest.fixture(scope='module')
def make_user(portal_archive):
    """Create a user of the test's own (with a membership of the private programme)."""
    from archive import accounts

    def make(name, password='right-password-1', member=True):
        with _owner(portal_archive) as conn:
            accounts.create_user(conn, name, password, full_name=name, email=None)
            if member:
                accounts.add_membership(conn, name, portal_archive.private_prog_id, 'CoI')
            conn.commit()
        return name, password
    return make


def forget_failures(portal_archive, keys):
    keys = [k for k in keys if '\x00' not in k]  # PostgreSQL text never holds NUL
    with _owner(portal_archive) as conn:
        conn.execute('DELETE FROM accounts.login_attempts WHERE key = ANY(%s)', (keys,))
        conn.commit()


def _form_token(session, base, path='/login'):
    page = session.get(base + path, timeout=30)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post_login(session, base, username, password, next_url=None, token=True, csrf=None):
    """POST the login form (with the CSRF token of ``session``'s login page, or ``csrf``)."""
    data = {'username': username, 'password': password}
    if token:
        data['csrf_token'] = csrf or _form_token(session, base)
    url = base + '/login' + (f'?next={quote(next_url, safe="")}' if next_url is not None else '')
    return session.post(url, data=data, allow_redirects=False, timeout=30)


def logged_in(session, base):
    """True when ``session`` reaches the account page (a login-only page)."""
    resp = session.get(base + '/account', allow_redirects=False, timeout=30)
    if resp.status_code == 200:
        return True
    assert resp.status_code in (302, 303) and '/login' in resp.headers['Location'], \
        resp.status_code
    return False


def sees_private(resp, portal_archive):
    return any(s in resp.text for s in portal_archive.private_sequence_ids)


# --- API tokens
def test_bad_tokens_refused(portal_archive, portal_server, make_user):
    """Unknown, revoked, expired, disabled-user and malformed tokens: 401, a clear message,
    no data; the same user's valid token works (positive control)."""
    from archive import accounts

    name, _ = make_user('token-user')
    disabled, _ = make_user('disabled-user')
    with _owner(portal_archive) as conn:
        valid = accounts.create_token(conn, name, 'valid')
        revoked = accounts.create_token(conn, name, 'revoked')
        accounts.revoke_token(conn, revoked)
        expired = accounts.create_token(conn, name, 'expired', lifetime_days=1)
        conn.execute('UPDATE accounts.api_tokens SET expires_at = %s WHERE label = %s AND '
                     'username = %s', (datetime.datetime.utcnow() - datetime.timedelta(hours=1),
                                       'expired', name))
        of_disabled = accounts.create_token(conn, disabled, 'disabled')
        conn.execute('UPDATE accounts.users SET disabled = true WHERE username = %s',
                     (disabled,))
        conn.commit()
    private_pid = portal_archive.query(
        'SELECT product_id FROM sphere.products WHERE split_part(prog_id, \'(\', 1) = %s '
        'LIMIT 1', (portal_archive.private_prog_id,))[0][0]
    urls = [('get', '/tap/sync', {'LANG': 'ADQL', 'QUERY': QUERY}),
            ('post', '/tap/sync', {'LANG': 'ADQL', 'QUERY': QUERY}),
            ('post', '/tap/async', {'LANG': 'ADQL', 'QUERY': QUERY, 'PHASE': 'RUN'}),
            ('get', '/scs/sequences', {'RA': 217.5, 'DEC': -47.65, 'SR': 1}),
            ('get', f'/files/product/{private_pid}', None),
            ('get', '/account', None), ('get', '/', None)]
    good = requests.Session()
    good.headers['Authorization'] = f'Bearer {valid}'
    resp = good.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
    assert resp.status_code == 200 and sees_private(resp, portal_archive)
    assert 'no-store' in resp.headers.get('Cache-Control', '')  # never kept by proxies
    assert good.get(portal_server + '/account').status_code == 200
    bad_headers = {'unknown': f'Bearer sdc_{"A" * 43}', 'revoked': f'Bearer {revoked}',
                   'expired': f'Bearer {expired}', 'disabled user': f'Bearer {of_disabled}',
                   'not bearer': 'Basic dG9rZW4tdXNlcjpyaWdodC1wYXNzd29yZC0x',
                   'no token': 'Bearer', 'too long': 'Bearer ' + 'x' * 5000,
                   'lower-case scheme, revoked': f'bearer {revoked}'}
    for label, header in bad_headers.items():
        for method, path, params in urls:
            kwargs = {'params': params} if method == 'get' else {'data': params}
            resp = getattr(requests, method)(portal_server + path,
                                             headers={'Authorization': header},
                                             allow_redirects=False, timeout=30, **kwargs)
            assert resp.status_code == 401, (label, path, resp.status_code)
            assert 'Bearer' in resp.headers.get('WWW-Authenticate', ''), (label, path)
            assert ('token' in resp.text or 'Authorization' in resp.text), resp.text
            assert len(resp.content) < 300 and not sees_private(resp, portal_archive)
    # a failed token creates nothing: no async job appeared for anyone
    assert not portal_archive.query("SELECT job_id FROM uws.jobs WHERE owner = %s", (name,))


def test_valid_token_needs_no_csrf_and_a_session_post_does(portal_archive, portal_server,
                                                          make_user):
    """A Bearer-authenticated POST is no CSRF risk (no cookie), a cookie POST is."""
    from archive import accounts

    name, password = make_user('csrf-user')
    with _owner(portal_archive) as conn:
        token = accounts.create_token(conn, name, 'script')
        conn.commit()

    def count():
        return portal_archive.query('SELECT count(*) FROM accounts.api_tokens '
                                    'WHERE username = %s', (name,))[0][0]

    before = count()
    resp = requests.post(portal_server + '/account', data={'action': 'create-token'},
                         headers={'Authorization': f'Bearer {token}'}, timeout=30)
    assert resp.status_code == 200 and count() == before + 1
    session = requests.Session()
    assert post_login(session, portal_server, name, password).status_code == 303
    for data, headers in (({'action': 'create-token'}, {}),
                          ({'action': 'create-token', 'csrf_token': 'forged'}, {}),
                          ({'action': 'create-token'}, {'X-CSRFToken': 'forged'}),
                          ({'action': 'create-token', 'csrf_token': ''}, {})):
        resp = session.post(portal_server + '/account', data=data, headers=headers,
                            allow_redirects=False, timeout=30)
        assert resp.status_code == 400, (data, headers, resp.status_code)
        assert 'sdc_' not in resp.text
    assert count() == before + 1  # nothing created
    # logout without the token is refused too, and the session goes on
    resp = session.post(portal_server + '/logout', allow_redirects=False, timeout=30)
    assert resp.status_code == 400 and logged_in(session, portal_server)
    # a login form posted without its token logs nobody in
    other = requests.Session()
    resp = post_login(other, portal_server, name, password, token=False)
    assert resp.status_code == 400 and not logged_in(other, portal_server)
    # with the token (form field or header) the same requests work (positive control)
    resp = session.post(portal_server + '/account', data={'action': 'create-token'},
                        headers={'X-CSRFToken': csrf_token(session, portal_server)},
                        timeout=30)
    assert resp.status_code == 200 and count() == before + 2
    resp = session.post(portal_server + '/account', data={
        'action': 'create-token', 'csrf_token': csrf_token(session, portal_server)}, timeout=30)
    assert resp.status_code == 200 and count() == before + 3


# --- sessions
def test_session_cookie_flags(portal_archive, portal_server):
    session = requests.Session()
    page = session.get(portal_server + '/login')
    resp = session.post(portal_server + '/login', allow_redirects=False, data={
        'username': portal_archive.users['pi'][0], 'password': portal_archive.users['pi'][1],
        'csrf_token': re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)})
    assert resp.status_code == 303
    cookies = [c for c in resp.raw.headers.getlist('Set-Cookie')
               if c.startswith('spheredc_session=')]
    assert cookies, resp.headers
    flags = [f.strip().lower() for f in cookies[-1].split(';')[1:]]
    assert 'httponly' in flags and 'samesite=lax' in flags, flags
    page = session.get(portal_server + '/account')
    assert page.status_code == 200
    assert 'no-store' in page.headers.get('Cache-Control', '')


def test_logout_ends_the_session(portal_archive, portal_server):
    session = login(requests.Session(), portal_server, 'pi', portal_archive)
    assert logged_in(session, portal_server)
    tap = session.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
    assert sees_private(tap, portal_archive)
    resp = session.post(portal_server + '/logout', allow_redirects=False,
                        data={'csrf_token': csrf_token(session, portal_server)})
    assert resp.status_code == 303
    assert not logged_in(session, portal_server)
    tap = session.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
    assert tap.status_code == 200 and not sees_private(tap, portal_archive)


def test_logged_out_cookie_is_dead(portal_archive, portal_server, make_user):
    """A copy of the session cookie taken before logout (a stolen one) is refused after it."""
    name, password = make_user('replay-user')
    session = requests.Session()
    assert post_login(session, portal_server, name, password).status_code == 303
    stolen = session.cookies.get('spheredc_session')
    resp = session.post(portal_server + '/logout', allow_redirects=False,
                        data={'csrf_token': csrf_token(session, portal_server)})
    assert resp.status_code == 303 and not logged_in(session, portal_server)
    thief = requests.Session()
    thief.cookies.set('spheredc_session', stolen)
    assert not logged_in(thief, portal_server), 'the session cookie outlives logout'
    tap = thief.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
    assert not sees_private(tap, portal_archive)


def test_password_change_ends_old_sessions(portal_archive, portal_server, make_user):
    from archive import accounts

    name, password = make_user('pwchange-user')
    client = session_from('127.0.0.6')
    old = session_from('127.0.0.6')
    try:
        assert post_login(old, portal_server, name, password).status_code == 303
        assert logged_in(old, portal_server)
        with _owner(portal_archive) as conn:
            accounts.set_password(conn, name, 'a-new-password-2')
            conn.commit()
        assert not logged_in(old, portal_server)
        tap = old.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
        assert not sees_private(tap, portal_archive)
        assert post_login(client, portal_server, name, password).status_code == 401
        assert post_login(client, portal_server, name, 'a-new-password-2').status_code == 303
        assert logged_in(client, portal_server)
    finally:
        forget_failures(portal_archive, ['ip:127.0.0.6', f'user:{name}'])


def test_disabled_account_loses_session_and_tokens(portal_archive, portal_server, make_user):
    from archive import accounts

    name, password = make_user('soon-disabled-user')
    with _owner(portal_archive) as conn:
        token = accounts.create_token(conn, name, 'script')
        conn.commit()
    session = requests.Session()
    assert post_login(session, portal_server, name, password).status_code == 303
    tap = requests.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY},
                       headers={'Authorization': f'Bearer {token}'})
    assert logged_in(session, portal_server) and sees_private(tap, portal_archive)
    with _owner(portal_archive) as conn:
        conn.execute('UPDATE accounts.users SET disabled = true WHERE username = %s', (name,))
        conn.commit()
    assert not logged_in(session, portal_server)
    tap = session.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY})
    assert not sees_private(tap, portal_archive)
    tap = requests.get(portal_server + '/tap/sync', params={'LANG': 'ADQL', 'QUERY': QUERY},
                       headers={'Authorization': f'Bearer {token}'})
    assert tap.status_code == 401 and not sees_private(tap, portal_archive)


# --- login form
def test_wrong_password_401_and_no_user_enumeration(portal_archive, portal_server, make_user):
    name, password = make_user('wrongpw-user')
    client = session_from('127.0.0.5')
    try:
        wrong = post_login(client, portal_server, name, 'not-the-password')
        assert wrong.status_code == 401 and 'wrong user name or password' in wrong.text
        assert not logged_in(client, portal_server)
        unknown = post_login(client, portal_server, 'no-such-user', 'not-the-password')
        assert unknown.status_code == 401
        strip = re.compile(r'name="csrf_token" value="[^"]*"')
        assert strip.sub('', wrong.text).replace(name, 'X') == \
            strip.sub('', unknown.text).replace('no-such-user', 'X')
        empty = post_login(client, portal_server, name, '')
        assert empty.status_code == 400 and not logged_in(client, portal_server)
        assert post_login(client, portal_server, name, password).status_code == 303
    finally:
        forget_failures(portal_archive, ['ip:127.0.0.5', f'user:{name}', 'user:no-such-user'])


def test_login_throttled_per_account_and_per_address(portal_archive, portal_server, make_user):
    """5 failures in 5 minutes: 429 even with the right password, from anywhere, for that
    account; an address is blocked for every account after more failures (a NAT shares one
    address among many people); other accounts elsewhere are unaffected."""
    from archive.accounts import MAX_FAILURES, MAX_FAILURES_PER_ADDRESS

    name, password = make_user('throttled-user')
    bystander, bystander_password = make_user('bystander-user')
    attacker = session_from('127.0.0.2')
    owner_elsewhere = session_from('127.0.0.3')
    try:
        for i in range(MAX_FAILURES):
            resp = post_login(attacker, portal_server, name, f'guess-{i}-wrong')
            assert resp.status_code == 401, (i, resp.status_code)
        for client in (attacker, owner_elsewhere):
            resp = post_login(client, portal_server, name, password)
            assert resp.status_code == 429, resp.status_code
            assert 'too many failed logins' in resp.text
            assert not logged_in(client, portal_server)
        # the attacker's address still lets another account in...
        resp = post_login(attacker, portal_server, bystander, bystander_password)
        assert resp.status_code == 303
        # ...until it has failed too often, on whatever accounts
        for i in range(MAX_FAILURES_PER_ADDRESS - MAX_FAILURES):
            resp = post_login(attacker, portal_server, f'nobody-{i}', 'wrong-password-x')
            assert resp.status_code == 401, (i, resp.status_code)
        resp = post_login(attacker, portal_server, bystander, bystander_password)
        assert resp.status_code == 429
        # ...but the other account logs in from elsewhere
        resp = post_login(owner_elsewhere, portal_server, bystander, bystander_password)
        assert resp.status_code == 303 and logged_in(owner_elsewhere, portal_server)
    finally:
        forget_failures(portal_archive, ['ip:127.0.0.2', 'ip:127.0.0.3', f'user:{name}',
                                         f'user:{bystander}'] +
                        [f'user:nobody-{i}' for i in range(MAX_FAILURES_PER_ADDRESS)])
    # once the failures are old (forgotten here), the right password works again
    resp = post_login(session_from('127.0.0.3'), portal_server, name, password)
    assert resp.status_code == 303


#: Targets of ?next= that must never send the browser to another site.
FOREIGN_NEXT = ['https://evil.example/', '//evil.example/', '///evil.example/',
                '/\\evil.example/', '\\\\evil.example/', 'http:evil.example',
                'https:/evil.example', '/\t/evil.example/', '/\n/evil.example/',
                ' //evil.example/', 'javascript:alert(1)', '/%2F%2Fevil.example/', 'evil.example',
                '/%09/evil.example', 'HTTPS://EVIL.EXAMPLE/', '/\x00//evil.example/']


def test_login_next_never_leaves_the_site(portal_archive, portal_server):
    name, password = portal_archive.users['other']
    problems = []
    for next_url in FOREIGN_NEXT:
        session = requests.Session()
        resp = post_login(session, portal_server, name, password, next_url=next_url)
        if resp.status_code != 303:
            problems.append(f'{next_url!r}: status {resp.status_code}')
            continue
        location = resp.headers['Location']
        # what a browser does: drop tabs and newlines, read backslashes as slashes
        browser = re.sub(r'[\t\r\n]', '', location).replace('\\', '/').strip()
        target = urlsplit(urljoin(portal_server + '/login', browser))
        if target.scheme != 'http' or target.netloc != urlsplit(portal_server).netloc:
            problems.append(f'{next_url!r}: redirected to {location!r}')
        # and the login page never writes the foreign URL as a link
        page = session.get(portal_server + '/login', params={'next': next_url})
        if 'href="https://evil' in page.text.lower() or page.status_code >= 500:
            problems.append(f'{next_url!r}: login page {page.status_code} links it')
    assert not problems, '\n'.join(problems)
    # a path on the site is kept (positive control)
    resp = post_login(requests.Session(), portal_server, name, password,
                      next_url='/search?name=x')
    assert resp.status_code == 303 and resp.headers['Location'].endswith('/search?name=x')


#: User names (and passwords) a login form must refuse without a 500.
ODD_NAMES = ["' OR '1'='1", "alice'--", "alice' OR 1=1 --", 'x"; DROP TABLE accounts.users; --',
             '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', 'a' * 5000,
             'alice\x00', 'al\x00ice', '\x00', 'ålice', '{{7*7}}', '${jndi:ldap://x/a}', ' ',
             '\u202e', '%00', 'alice\r\nSet-Cookie: x=1']
ODD_PASSWORDS = ["' OR '1'='1", 'x\x00y', '\x00', 'p' * 5000]


def test_login_odd_user_names_refused_cleanly(portal_archive, portal_server, make_user):
    client = session_from('127.0.0.7')
    before = portal_archive.query('SELECT count(*) FROM accounts.users')[0][0]
    user, _ = make_user('oddpw-user')
    tries = [(n, 'whatever-password') for n in ODD_NAMES] + [(user, p) for p in ODD_PASSWORDS]
    problems = []
    csrf = _form_token(client, portal_server)  # valid for the whole session
    for username, password in tries:
        try:
            resp = post_login(client, portal_server, username, password, csrf=csrf)
        finally:  # each try starts with no failure recorded (no 429)
            forget_failures(portal_archive, ['ip:127.0.0.7', f'user:{user}',
                                             f'user:{username.strip().lower()[:100]}'])
        if resp.status_code not in (400, 401):
            problems.append(f'{username[:40]!r}/{password[:20]!r}: {resp.status_code}')
        elif 'text/html' not in resp.headers.get('Content-Type', ''):
            problems.append(f'{username[:40]!r}: not an HTML page')
        elif '<script>alert(1)' in resp.text or '<img src=x' in resp.text:
            problems.append(f'{username[:40]!r}: not escaped')
        elif 'Traceback' in resp.text or 'psycopg' in resp.text:
            problems.append(f'{username[:40]!r}: internals shown')
    assert not logged_in(client, portal_server)
    assert not problems, '\n'.join(problems)
    assert portal_archive.query('SELECT count(*) FROM accounts.users')[0][0] == before + 1
    # upper case and spaces around a name are the same user (positive control)
    resp = post_login(requests.Session(), portal_server, ' ALICE ', portal_archive.users['pi'][1])
    assert resp.status_code == 303


def test_create_user_refuses_odd_names(portal_archive):
    from archive import accounts

    with _owner(portal_archive) as conn:
        for username in ("alice'--", '<b>x</b>', 'A-upper', 'x', '', 'a' * 41, 'al ice',
                         'al\x00ice', '.dot-first', None, 42):
            with pytest.raises(accounts.AccountError, match='user name'):
                accounts.create_user(conn, username, 'a-long-password-1')
        conn.rollback()
