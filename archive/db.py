"""Connections to the archive database, started and migrated on demand.

Two ways in: `connect` gives a psycopg connection (light, for hot paths such
as ``spheredc sequences`` and COPY loads); `engine` gives a SQLAlchemy Core
engine (schema, migrations, generated SQL). Both first make sure the database
is up (the embedded cluster is started when needed) and at the schema
revision this code expects.
"""
import functools

from .config import load_settings
from .exceptions import DatabaseUnavailable

#: Alembic revision this code needs; tests check it is the migrations' head.
SCHEMA_REVISION = "0005"


class Database:
    """The database of one ``Settings``: embedded cluster or external URL."""

    def __init__(self, settings=None):
        self.settings = settings or load_settings()
        self.cluster = None
        if self.settings.embedded:
            from .embedded import EmbeddedCluster

            self.cluster = EmbeddedCluster(self.settings)

    @property
    def conninfo(self):
        """libpq connection string."""
        if self.cluster:
            return self.cluster.conninfo
        return _libpq_url(self.settings.database_url)

    @property
    def url(self):
        """SQLAlchemy URL (psycopg 3 driver)."""
        if self.cluster:
            return self.cluster.url
        url = self.settings.database_url
        scheme, rest = url.split("://", 1)
        return "postgresql+psycopg://" + rest if scheme in ("postgres", "postgresql") else url

    def ensure_running(self):
        """Start the embedded cluster if it is down (no-op for an external URL)."""
        if self.cluster and not self.cluster.is_running():
            self.cluster.start()

    def connect(self, **kwargs):
        """A new psycopg connection, the database being started and migrated first."""
        import psycopg

        self.ensure_ready()
        return psycopg.connect(self.conninfo, **kwargs)

    @functools.cached_property
    def engine(self):
        import sqlalchemy as sa

        self.ensure_running()
        return sa.create_engine(self.url, pool_pre_ping=True)

    def fetch(self, sql, params=()):
        """Run one read-only query and return its rows (list of tuples).

        For commands that answer with one query (``spheredc sequences``): it
        goes through psycopg2, which imports in ~30 ms where psycopg 3 takes
        ~200 ms, a start-up cost users feel on every call.
        """
        import psycopg2

        self.ensure_ready()
        conn = psycopg2.connect(self.conninfo)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def ensure_ready(self):
        """Start the database if needed and upgrade its schema to `SCHEMA_REVISION`."""
        import psycopg2

        if getattr(self, "_ready", False):
            return
        self.ensure_running()
        try:
            conn = psycopg2.connect(self.conninfo)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
                current = None
                if cur.fetchone()[0]:
                    cur.execute("SELECT version_num FROM alembic_version")
                    got = cur.fetchone()
                    current = got[0] if got else None
        finally:
            conn.close()
        if current != SCHEMA_REVISION:
            from .migrate import upgrade

            upgrade(self)
        self._ready = True


def _libpq_url(url):
    # libpq accepts postgresql:// URLs but not SQLAlchemy's driver suffix.
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else url


@functools.cache
def default_database():
    """The `Database` of the current environment (one per process)."""
    return Database()


def connect(**kwargs):
    """Shortcut: a psycopg connection to the default database."""
    return default_database().connect(**kwargs)
