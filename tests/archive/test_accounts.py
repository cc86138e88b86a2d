"""Accounts, tokens, login throttling and release dates on the real database."""
import datetime

import pytest

from archive import accounts
from archive.access import default_release_date, set_proprietary_period


@pytest.fixture
def conn(database):
    """An owner connection whose work is rolled back at the end of the test."""
    with database.connect() as c:
        yield c
        c.rollback()


def test_passwords_are_hashed_and_checked(conn):
    accounts.create_user(conn, 'dora', 'a-long-password', full_name='Dora', email='d@x.org')
    stored = conn.execute("SELECT password_hash FROM accounts.users WHERE username = 'dora'"
                          ).fetchone()[0]
    assert 'a-long-password' not in stored and stored.startswith('scrypt:')
    assert accounts.authenticate(conn, 'dora', 'a-long-password').full_name == 'Dora'
    assert accounts.authenticate(conn, 'dora', 'a-long-passworD') is None
    assert accounts.authenticate(conn, 'nobody', 'a-long-password') is None
    assert accounts.authenticate(conn, "x' OR '1'='1", 'a-long-password') is None
    with pytest.raises(accounts.AccountError, match='exists already'):
        accounts.create_user(conn, 'dora', 'another-password')
    conn.execute("UPDATE accounts.users SET disabled = true WHERE username = 'dora'")
    assert accounts.authenticate(conn, 'dora', 'a-long-password') is None


@pytest.mark.parametrize('name', ['', 'A', 'Upper', "o'brien", 'a b', '<script>', 'x' * 41,
                                  '-lead', 'semi;colon'])
def test_bad_user_names_are_refused(conn, name):
    with pytest.raises(accounts.AccountError, match='user name'):
        accounts.create_user(conn, name, 'a-long-password')


def test_short_password_and_bad_programme_are_refused(conn):
    with pytest.raises(accounts.AccountError, match='at least'):
        accounts.create_user(conn, 'erin', 'short')
    accounts.create_user(conn, 'erin', 'a-long-password')
    for prog in ('', "0104.C-0123'; DROP TABLE x", '<b>', None):
        with pytest.raises(accounts.AccountError, match='programme'):
            accounts.add_membership(conn, 'erin', prog)
    with pytest.raises(accounts.AccountError, match='PI, CoI'):
        accounts.add_membership(conn, 'erin', '0104.C-0123', 'boss')
    accounts.add_membership(conn, 'erin', '0104.C-0123', 'CoI')
    user = accounts.get_user(conn, 'erin')
    assert user.role_in('0104.C-0123(B)') == 'CoI' and user.role_in('0104.C-0124') is None


def test_tokens_are_stored_as_digests_and_can_be_revoked(conn):
    accounts.create_user(conn, 'fred', 'a-long-password')
    token = accounts.create_token(conn, 'fred', 'laptop')
    digests = [r[0] for r in conn.execute(
        "SELECT token_sha256 FROM accounts.api_tokens WHERE username = 'fred'")]
    assert token not in digests and len(digests) == 1
    assert accounts.user_for_token(conn, token).username == 'fred'
    assert accounts.user_for_token(conn, token + 'x') is None
    assert accounts.user_for_token(conn, '') is None
    assert accounts.revoke_token(conn, token)
    assert accounts.user_for_token(conn, token) is None
    expired = accounts.create_token(conn, 'fred', 'old', lifetime_days=1)
    conn.execute("UPDATE accounts.api_tokens SET expires_at = now() - interval '1 day' "
                 "WHERE label = 'old'")
    assert accounts.user_for_token(conn, expired) is None


def test_login_throttling_counts_recent_failures(conn):
    keys = ['user:gina', 'ip:192.0.2.7']
    for _ in range(accounts.MAX_FAILURES - 1):
        accounts.record_failed_login(conn, keys)
    assert not accounts.login_blocked(conn, keys)
    accounts.record_failed_login(conn, keys)
    assert accounts.login_blocked(conn, ['user:gina'])
    # An address is shared by many people (NAT): it takes more failures to block it.
    assert not accounts.login_blocked(conn, ['ip:192.0.2.7', 'user:someone-else'])
    for _ in range(accounts.MAX_FAILURES_PER_ADDRESS - accounts.MAX_FAILURES):
        accounts.record_failed_login(conn, ['ip:192.0.2.7'])
    assert accounts.login_blocked(conn, ['ip:192.0.2.7', 'user:someone-else'])
    assert not accounts.login_blocked(conn, ['user:someone-else'])
    conn.execute("UPDATE accounts.login_attempts SET at = at - interval '1 hour'")
    assert not accounts.login_blocked(conn, keys)


def test_sessions_end_at_logout_and_with_a_new_password(conn):
    accounts.create_user(conn, 'hugo', 'a-long-password')
    first = accounts.open_session(conn, 'hugo', 3600, '127.0.0.1 test')
    second = accounts.open_session(conn, 'hugo', 3600)
    assert accounts.user_for_session(conn, first).username == 'hugo'
    accounts.close_session(conn, first)
    assert accounts.user_for_session(conn, first) is None
    assert accounts.user_for_session(conn, second).username == 'hugo'
    accounts.set_password(conn, 'hugo', 'another-long-password')
    assert accounts.user_for_session(conn, second) is None
    expired = accounts.open_session(conn, 'hugo', -1)
    assert accounts.user_for_session(conn, expired) is None
    assert accounts.user_for_session(conn, None) is None


def test_release_dates_follow_the_eso_rule():
    mjd = 60000.0  # 2023-02-25
    assert default_release_date(mjd).date() == datetime.date(2024, 2, 25)
    assert default_release_date(mjd, dpr_catg='CALIB').date() == datetime.date(2023, 2, 25)
    assert default_release_date(None) is None


def test_a_programme_period_moves_every_release_date(conn):
    prog = '0111.Z-0042(A)'
    conn.execute("INSERT INTO sphere.sequences (sequence_id, arm, night, mjd_start, mjd_end, "
                 "prog_id, release_date) VALUES ('TEST.SEQ', 'IRDIS', '2023-02-24', 60000.0, "
                 "60000.1, %s, '2024-02-25')", (prog,))
    n = set_proprietary_period(conn, '0111.Z-0042', 3 * 365, 'A long one')
    assert n >= 1
    release = conn.execute("SELECT release_date FROM sphere.sequences "
                           "WHERE sequence_id = 'TEST.SEQ'").fetchone()[0]
    assert release.date() == datetime.date(2026, 2, 24)
    with pytest.raises(accounts.AccountError, match='days'):
        set_proprietary_period(conn, '0111.Z-0042', -1)
