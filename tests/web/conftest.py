"""Portal fixtures: a reduced archive with a proprietary programme, users, a real server.

The small simulated night (seed 1) is ingested and reduced through levels 1 and 2
by the real engine, in its own embedded cluster. Programme 0115.C-0456 (SIMSTAR-2)
is made proprietary (release date in the future); everything else is public.
alice is PI of that programme, bob PI of another one, carol is staff.
"""
import dataclasses
import datetime
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli, served

PRIVATE_PROG = '0115.C-0456'
OTHER_PROG = '0999.Z-0001'
PASSWORD = {'pi': 'alice-password-1', 'other': 'bob-password-22', 'staff': 'carol-password-333'}
USERS = {'pi': 'alice', 'other': 'bob', 'staff': 'carol'}
PROPRIETARY_TABLES = ('raw_files', 'sequences', 'products', 'candidates', 'detection_limits')


@dataclasses.dataclass
class PortalArchive:
    database: object
    private_prog_id: str
    private_sequence_ids: list
    public_sequence_ids: list
    users: dict
    tokens: dict
    env: dict

    def query(self, sql, args=()):
        """Rows of ``sql`` as the owner (unfiltered: the truth tests compare with)."""
        with self.database.connect(autocommit=True) as conn:
            return conn.execute(sql, args).fetchall()

    def set_release(self, prog_id, when):
        """Set the release date of every row of ``prog_id`` (a programme or run)."""
        with self.database.connect() as conn:
            for table in PROPRIETARY_TABLES:
                conn.execute(f"UPDATE sphere.{table} SET release_date = %s "
                             "WHERE split_part(prog_id, '(', 1) = %s", (when, prog_id))
            conn.commit()




@pytest.fixture(scope='session')
def portal_archive(tmp_path_factory, small_night):
    """The reduced small night with one proprietary programme, and three users."""
    from archive import accounts
    from archive.config import Settings
    from archive.db import Database

    home = tmp_path_factory.mktemp('portal_home')
    env = dict(os.environ, SPHEREDC_HOME=str(home))
    for name in ('SPHEREDC_DATABASE_URL', 'SPHEREDC_DASK_SCHEDULER'):
        env.pop(name, None)
    db = Database(Settings(home=home))
    db.ensure_ready()
    proc = run_cli('ingest', small_night[0], '--json', env=env)
    assert proc.returncode in (0, 3), proc.stderr
    proc = subprocess.run([sys.executable, '-m', 'spheredc.reduce_cmd', '--pending',
                           '--workers', '2'], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    archive = PortalArchive(db, PRIVATE_PROG, [], [], {}, {}, env)
    past = datetime.datetime(2020, 1, 1)
    future = datetime.datetime.utcnow() + datetime.timedelta(days=400)
    with db.connect() as conn:
        for table in PROPRIETARY_TABLES:
            conn.execute(f'UPDATE sphere.{table} SET release_date = %s', (past,))
        conn.commit()
    archive.set_release(PRIVATE_PROG, future)
    for seq, prog in archive.query('SELECT sequence_id, prog_id FROM sphere.sequences '
                                   'ORDER BY sequence_id'):
        (archive.private_sequence_ids if prog.split('(')[0] == PRIVATE_PROG
         else archive.public_sequence_ids).append(seq)
    assert archive.private_sequence_ids and archive.public_sequence_ids
    with db.connect() as conn:
        for who, name in USERS.items():
            accounts.create_user(conn, name, PASSWORD[who], full_name=name.title(),
                                 email=f'{name}@example.org', is_staff=(who == 'staff'))
            archive.users[who] = (name, PASSWORD[who])
            archive.tokens[who] = accounts.create_token(conn, name, 'tests')
        accounts.add_membership(conn, 'alice', PRIVATE_PROG, 'PI')
        accounts.add_membership(conn, 'bob', OTHER_PROG, 'PI')
        conn.commit()
    yield archive
    db.engine.dispose()
    db.cluster.stop()


@pytest.fixture(scope='session')
def portal_server(portal_archive):
    """Base URL of ``spheredc serve`` (gunicorn, loopback) over the portal archive."""
    home = portal_archive.database.settings.home
    with served(portal_archive.env, os.path.join(home, 'serve.log'), '--workers', '2',
                '--async-workers', '1') as url:
        yield url


def login(session, base_url, who, archive):
    """Log ``session`` (a requests.Session) in as ``who`` ('pi', 'other', 'staff') via the form."""
    import re

    page = session.get(base_url + '/login')
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    name, password = archive.users[who]
    resp = session.post(base_url + '/login', data={'username': name, 'password': password,
                                                    'csrf_token': token},
                        allow_redirects=False)
    assert resp.status_code == 303, resp.text[:500]
    return session


def csrf_token(session, base_url, path='/account'):
    """A CSRF token of ``session`` read from one of its pages."""
    import re

    page = session.get(base_url + path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
