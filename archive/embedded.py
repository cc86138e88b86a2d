"""The embedded PostgreSQL cluster under ``$SPHEREDC_HOME``.

With no ``SPHEREDC_DATABASE_URL`` spheredc runs its own cluster: ``initdb`` on
first use, ``pg_ctl`` to start and stop it, a Unix socket in
``$SPHEREDC_HOME/run`` and no TCP port unless one is asked for. ``initdb`` and
the server refuse to run as root, so when invoked as root the server runs as
an unprivileged system user (``spheredc``, created if missing).
"""
import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .exceptions import DatabaseUnavailable

#: Unprivileged system user that owns the cluster when spheredc runs as root.
SERVICE_USER = "spheredc"
DATABASE_NAME = "spheredc"
#: Superuser role of the embedded cluster (local socket, trust authentication:
#: the socket directory is private to the cluster's owner).
ROLE_NAME = "spheredc"


def find_pg_bindir():
    """Directory of the PostgreSQL server programs (newest version >= 13).

    Raises
    ------
    DatabaseUnavailable
        When no PostgreSQL server is installed.
    """
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name), reverse=True)
    candidates += [p for p in [shutil.which("initdb")] if p]
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    raise DatabaseUnavailable(
        "no PostgreSQL server found (install postgresql-15 and postgresql-15-pgsphere, "
        "or set SPHEREDC_DATABASE_URL)")


def _service_account():
    """(uid, gid) the server runs as: ours, or the service user when we are root."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", SERVICE_USER],
                       check=True, capture_output=True)
        pw = pwd.getpwnam(SERVICE_USER)
    return pw.pw_uid, pw.pw_gid


def _make_traversable(path):
    """Let the service user reach ``path``: add o+x to parents that lack it.

    Only search permission is added (no listing, no reading), and only when
    running as root with a home under a private directory such as /root or a
    0700 temporary folder.
    """
    path = Path(path)
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            os.chmod(folder, mode | 0o001)


class EmbeddedCluster:
    """A PostgreSQL cluster owned by spheredc.

    Parameters
    ----------
    settings : archive.config.Settings
        Where the cluster lives (``settings.pgdata``, ``settings.socket_dir``).
    """

    def __init__(self, settings):
        self.settings = settings
        self.pgdata = settings.pgdata
        self.socket_dir = settings.socket_dir
        self.log_path = settings.home / "log" / "postgresql.log"

    # -- information -------------------------------------------------------
    @property
    def conninfo(self):
        """libpq connection string of the embedded database."""
        return (f"host={self.socket_dir} port={self.port()} dbname={DATABASE_NAME} "
                f"user={ROLE_NAME}")

    @property
    def url(self):
        """SQLAlchemy URL of the embedded database."""
        return (f"postgresql+psycopg://{ROLE_NAME}@/{DATABASE_NAME}"
                f"?host={self.socket_dir}&port={self.port()}")

    def is_initialised(self):
        return (self.pgdata / "PG_VERSION").exists()

    def _conf(self):
        conf = self.pgdata / "spheredc.conf"
        try:
            lines = conf.read_text().splitlines()
        except OSError:
            return {}
        return dict((k.strip(), v.strip().strip("'")) for k, v in
                    (line.split("=", 1) for line in lines if "=" in line))

    def port(self):
        """The port number (it also names the Unix socket)."""
        return int(self._conf().get("port", 5432))

    def tcp_port(self):
        """The TCP port on 127.0.0.1, or None when the server listens on its socket only."""
        conf = self._conf()
        return int(conf["port"]) if conf.get("listen_addresses") else None

    def is_running(self):
        """True when the server answers on its socket (cheap: no subprocess)."""
        pid_file = self.pgdata / "postmaster.pid"
        sock = self.socket_dir / f".s.PGSQL.{self.port()}"
        if not sock.exists():
            return False
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True

    # -- actions -----------------------------------------------------------
    def _run(self, args, **kw):
        uid, gid = _service_account()
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")

        def drop_root():  # initdb and postgres refuse to run as root
            os.setgid(gid)
            os.setgroups([])
            os.setuid(uid)

        return subprocess.run(args, env=env, preexec_fn=drop_root if os.geteuid() == 0 else None,
                              capture_output=True, text=True, cwd="/", **kw)

    def _prepare_dirs(self):
        uid, gid = _service_account()
        for d in (self.settings.home, self.socket_dir, self.log_path.parent):
            d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _make_traversable(self.settings.home)
            for d in (self.socket_dir, self.log_path.parent):
                os.chown(d, uid, gid)
            if self.pgdata.exists():
                os.chown(self.pgdata, uid, gid)
        os.chmod(self.socket_dir, 0o700)

    def initialise(self, port=None):
        """Create the cluster (initdb) and write its configuration."""
        bindir = find_pg_bindir()
        self._prepare_dirs()
        if not self.is_initialised():
            uid, gid = _service_account()
            self.pgdata.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(self.pgdata, uid, gid)
            proc = self._run([str(bindir / "initdb"), "-D", str(self.pgdata), "-U", ROLE_NAME,
                              "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"])
            if proc.returncode != 0:
                raise DatabaseUnavailable(f"initdb failed: {proc.stderr.strip()[-2000:]}")
            with open(self.pgdata / "postgresql.conf", "a", encoding="utf-8") as fh:
                fh.write("\ninclude_if_exists = 'spheredc.conf'\n")
        self._write_conf(port)

    def _write_conf(self, port):
        listen = "127.0.0.1" if port else ""
        text = (f"# written by spheredc; TCP only when asked (spheredc db start --port N)\n"
                f"listen_addresses = '{listen}'\nport = {port or 5432}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "unix_socket_permissions = 0700\ntimezone = 'UTC'\n"
                "max_connections = 100\nshared_buffers = '256MB'\n"
                "work_mem = '32MB'\nmaintenance_work_mem = '256MB'\n"
                "synchronous_commit = off\n")
        target = self.pgdata / "spheredc.conf"
        if os.geteuid() == 0:
            uid, gid = _service_account()
            target.write_text(text)
            os.chown(target, uid, gid)
        else:
            target.write_text(text)

    def start(self, port=None, timeout_s=60):
        """Start the server (initialising the cluster first if needed).

        Parameters
        ----------
        port : int, optional
            Also listen on 127.0.0.1 at this TCP port.
        """
        with self._lock():
            if self.is_running():
                return False
            self.initialise(port)
            bindir = find_pg_bindir()
            proc = self._run([str(bindir / "pg_ctl"), "-D", str(self.pgdata), "-l",
                              str(self.log_path), "-w", "-t", str(timeout_s), "start"])
            if proc.returncode != 0:
                tail = ""
                if self.log_path.exists():
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                raise DatabaseUnavailable(
                    f"PostgreSQL did not start: {proc.stderr.strip()} {tail}".strip())
            self._create_database()
            return True

    def _create_database(self):
        import psycopg

        base = f"host={self.socket_dir} user={ROLE_NAME} port={self.port()}"
        with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f"CREATE DATABASE {DATABASE_NAME}")

    def stop(self):
        """Stop the server (fast shutdown); True if it was running."""
        with self._lock():
            if not self.is_initialised() or not (self.pgdata / "postmaster.pid").exists():
                return False
            proc = self._run([str(find_pg_bindir() / "pg_ctl"), "-D", str(self.pgdata),
                              "-m", "fast", "-w", "stop"])
            if proc.returncode != 0:
                raise DatabaseUnavailable(f"pg_ctl stop failed: {proc.stderr.strip()}")
            return True

    def status(self):
        """A dict describing the cluster (for ``spheredc db status --json``)."""
        return {"embedded": True, "pgdata": str(self.pgdata),
                "socket_dir": str(self.socket_dir), "initialised": self.is_initialised(),
                "running": self.is_running(), "tcp_port": self.tcp_port(), "url": self.url}

    @contextlib.contextmanager
    def _lock(self):
        # Two commands starting the database at once must not race on pg_ctl.
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with open(self.settings.home / ".db.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
