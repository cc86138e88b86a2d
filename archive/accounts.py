"""User accounts: passwords, programme memberships, API tokens, login throttling.

Functions take an open psycopg connection of the archive's owner and leave the
transaction to the caller. Passwords are hashed with werkzeug's scrypt default;
API tokens are random (256 bits) and only their SHA-256 is stored, so a stolen
database reveals neither. What a user may *see* is not decided here but by the
database's row-level security policies (migration 0003), keyed on the user
name this module authenticates.
"""
import dataclasses
import datetime
import hashlib
import re
import secrets

from .exceptions import ArchiveError

__all__ = ['AccountError', 'User', 'create_user', 'set_password', 'add_membership',
           'authenticate', 'get_user', 'create_token', 'user_for_token', 'revoke_token',
           'login_blocked', 'record_failed_login', 'open_session', 'user_for_session',
           'close_session', 'USERNAME_RE', 'MEMBER_ROLES']

#: What a user name may be: it appears in URLs, logs and SQL settings.
USERNAME_RE = re.compile(r'^[a-z0-9][a-z0-9._-]{1,39}$')
MEMBER_ROLES = ('PI', 'CoI')
#: A programme (0104.C-0123) or one of its runs (0104.C-0123(A)); also test ids.
PROG_ID_RE = re.compile(r'^[0-9A-Za-z.\-]{3,20}(\([A-Z]\))?$')
MIN_PASSWORD_CHARS = 10

#: Login throttling: at most this many failures per account, and per client address
#: (higher: many people may share one address behind a NAT), within the window.
MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW_S = 300


class AccountError(ArchiveError, ValueError):
    """A bad user name, password, programme or token (message for the user)."""


@dataclasses.dataclass(frozen=True)
class User:
    """An authenticated user.

    Attributes
    ----------
    username : str
    full_name, email : str or None
    is_staff : bool
    programmes : dict
        Programme identifier to role (``PI`` or ``CoI``).
    """

    username: str
    full_name: str | None = None
    email: str | None = None
    is_staff: bool = False
    programmes: dict = dataclasses.field(default_factory=dict)

    def role_in(self, prog_id):
        """``PI``, ``CoI`` or None: the user's role in ``prog_id`` (or its programme)."""
        if not prog_id:
            return None
        return self.programmes.get(prog_id) or self.programmes.get(prog_id.split('(')[0])


def _check_username(username):
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise AccountError('a user name is 2 to 40 characters: lower-case letters, digits, '
                           '".", "_" or "-", starting with a letter or digit')
    return username


def _check_password(password):
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f'a password has at least {MIN_PASSWORD_CHARS} characters')
    if len(password) > 1024:
        raise AccountError('a password has at most 1024 characters')
    return password


def check_prog_id(prog_id):
    """``prog_id`` if it looks like an ESO programme or run identifier.

    Raises
    ------
    AccountError
    """
    if not isinstance(prog_id, str) or not PROG_ID_RE.match(prog_id):
        raise AccountError(f'{str(prog_id)[:40]!r} is not a programme identifier '
                           '(such as 0104.C-0123 or 0104.C-0123(A))')
    return prog_id


def create_user(conn, username, password, *, full_name=None, email=None, is_staff=False):
    """Add a user; raises `AccountError` when the name is taken or invalid."""
    from werkzeug.security import generate_password_hash

    _check_username(username)
    _check_password(password)
    row = conn.execute(
        'INSERT INTO accounts.users (username, password_hash, full_name, email, is_staff) '
        'VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING RETURNING username',
        (username, generate_password_hash(password), full_name, email, bool(is_staff))).fetchone()
    if row is None:
        raise AccountError(f'user {username!r} exists already')


def set_password(conn, username, password):
    """Change a user's password."""
    from werkzeug.security import generate_password_hash

    _check_password(password)
    cur = conn.execute('UPDATE accounts.users SET password_hash = %s WHERE username = %s',
                       (generate_password_hash(password), username))
    if cur.rowcount != 1:
        raise AccountError(f'no user {username!r}')
    # A new password ends every session opened with the old one.
    conn.execute('DELETE FROM accounts.sessions WHERE username = %s', (username,))


def add_membership(conn, username, prog_id, role='PI'):
    """Make ``username`` a member (PI or CoI) of ``prog_id``."""
    check_prog_id(prog_id)
    if role not in MEMBER_ROLES:
        raise AccountError(f'a member is one of {", ".join(MEMBER_ROLES)}, not {role!r}')
    if get_user(conn, username) is None:
        raise AccountError(f'no user {username!r}')
    conn.execute('INSERT INTO accounts.memberships (username, prog_id, role) VALUES (%s, %s, %s) '
                 'ON CONFLICT (username, prog_id) DO UPDATE SET role = EXCLUDED.role',
                 (username, prog_id, role))


# One round trip: the user, and their programmes as two parallel arrays.
_USER_SQL = """SELECT u.username, u.full_name, u.email, u.is_staff,
  coalesce(array_agg(m.prog_id ORDER BY m.prog_id) FILTER (WHERE m.prog_id IS NOT NULL), '{{}}'),
  coalesce(array_agg(m.role ORDER BY m.prog_id) FILTER (WHERE m.prog_id IS NOT NULL), '{{}}')
FROM accounts.users u LEFT JOIN accounts.memberships m ON m.username = u.username
WHERE {where} AND NOT u.disabled GROUP BY u.username"""


def _user_of(row):
    return None if row is None else User(row[0], row[1], row[2], row[3], dict(zip(row[4], row[5])))


def get_user(conn, username):
    """The enabled `User` called ``username``, or None."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        return None
    return _user_of(conn.execute(_USER_SQL.format(where='u.username = %s'),
                                 (username,)).fetchone())


def open_session(conn, username, lifetime_s, client=None):
    """Start a portal session for ``username``; returns its key (for the cookie)."""
    key = secrets.token_urlsafe(32)
    conn.execute("DELETE FROM accounts.sessions WHERE expires_at < now() AT TIME ZONE 'UTC'")
    conn.execute('INSERT INTO accounts.sessions (session_sha256, username, expires_at, client) '
                 "VALUES (%s, %s, now() AT TIME ZONE 'UTC' + make_interval(secs => %s), %s)",
                 (_token_digest(key), username, lifetime_s, (client or '')[:300]))
    return key


def user_for_session(conn, key):
    """The `User` of a live session key, or None (unknown, ended, expired, disabled)."""
    if not isinstance(key, str) or not 8 <= len(key) <= 200:
        return None
    where = ('u.username = (SELECT s.username FROM accounts.sessions s WHERE s.session_sha256 = '
             "%s AND s.expires_at > now() AT TIME ZONE 'UTC')")
    return _user_of(conn.execute(_USER_SQL.format(where=where), (_token_digest(key),)).fetchone())


def close_session(conn, key):
    """End a session (logout)."""
    if isinstance(key, str):
        conn.execute('DELETE FROM accounts.sessions WHERE session_sha256 = %s',
                     (_token_digest(key),))


def authenticate(conn, username, password):
    """The `User` if ``password`` is right (and the account enabled), else None.

    Takes the same time whether or not the user exists (a hash is always checked).
    """
    from werkzeug.security import check_password_hash

    row = None
    if isinstance(username, str) and USERNAME_RE.match(username):
        row = conn.execute('SELECT password_hash FROM accounts.users '
                           'WHERE username = %s AND NOT disabled', (username,)).fetchone()
    stored = row[0] if row else _DUMMY_HASH()
    ok = isinstance(password, str) and len(password) <= 1024 and check_password_hash(stored,
                                                                                      password)
    return get_user(conn, username) if ok and row else None


def _DUMMY_HASH():
    from werkzeug.security import generate_password_hash

    global _dummy
    try:
        return _dummy
    except NameError:
        _dummy = generate_password_hash(secrets.token_hex(16))
        return _dummy


def _token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn, username, label=None, lifetime_days=None):
    """A new API token for ``username`` (returned once; only its digest is kept)."""
    if get_user(conn, username) is None:
        raise AccountError(f'no user {username!r}')
    token = 'sdc_' + secrets.token_urlsafe(32)
    expires = (datetime.datetime.utcnow() + datetime.timedelta(days=lifetime_days)
               if lifetime_days else None)
    conn.execute('INSERT INTO accounts.api_tokens (token_sha256, username, label, expires_at) '
                 'VALUES (%s, %s, %s, %s)', (_token_digest(token), username, label, expires))
    return token


def user_for_token(conn, token):
    """The `User` a valid, unexpired, unrevoked token belongs to, or None."""
    if not isinstance(token, str) or not 8 <= len(token) <= 200:
        return None
    row = conn.execute(
        'UPDATE accounts.api_tokens SET last_used_at = now() AT TIME ZONE \'UTC\' '
        'WHERE token_sha256 = %s AND NOT revoked '
        'AND (expires_at IS NULL OR expires_at > now() AT TIME ZONE \'UTC\') RETURNING username',
        (_token_digest(token),)).fetchone()
    return get_user(conn, row[0]) if row else None


def revoke_token(conn, token):
    """Revoke a token; True when it existed."""
    cur = conn.execute('UPDATE accounts.api_tokens SET revoked = true WHERE token_sha256 = %s',
                       (_token_digest(token),))
    return cur.rowcount == 1


def login_blocked(conn, keys, max_failures=MAX_FAILURES,
                  max_per_address=MAX_FAILURES_PER_ADDRESS, window_s=FAILURE_WINDOW_S):
    """True when any of ``keys`` (``user:NAME``, ``ip:ADDR``) failed too often lately."""
    rows = conn.execute(
        'SELECT key, count(*) FROM accounts.login_attempts WHERE key = ANY(%s) '
        "AND at > now() AT TIME ZONE 'UTC' - make_interval(secs => %s) GROUP BY key",
        (list(keys), window_s)).fetchall()
    return any(n >= (max_per_address if key.startswith('ip:') else max_failures)
               for key, n in rows)


def record_failed_login(conn, keys, window_s=FAILURE_WINDOW_S):
    """Note a failed login for each of ``keys`` (and forget old failures)."""
    conn.execute('DELETE FROM accounts.login_attempts '
                 'WHERE at < now() AT TIME ZONE \'UTC\' - make_interval(secs => %s)',
                 (window_s * 2,))
    with conn.cursor() as cur:
        cur.executemany('INSERT INTO accounts.login_attempts (key, at) '
                        'VALUES (%s, now() AT TIME ZONE \'UTC\')', [(k,) for k in keys])
