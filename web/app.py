"""The Flask application factory: VO services, portal, accounts, reduction requests.

``create_app()`` builds the application of the current environment (for
gunicorn: ``gunicorn 'web.app:create_app()'``); blueprints are registered in
`register_blueprints`.
"""
import dataclasses
import logging
from pathlib import Path

from flask import Flask

__all__ = ['Services', 'create_app', 'services']

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Services:
    """What the views share within one server process."""

    database: object       # archive.db.Database
    pool: object           # vo.query.QueryPool
    limits: object         # vo.query.Limits
    jobs: object = None    # vo.uws.JobManager
    owner_pool: object = None  # psycopg_pool.ConnectionPool as the owner (accounts, requests)
    requests: object = None  # the reduction-request worker (web.requests_worker), if any


def services(app=None):
    """The `Services` of ``app`` (default: the current application)."""
    from flask import current_app

    return (app or current_app).extensions['spheredc']


def create_app(database=None, limits=None, async_workers=2, cookie_secure=None,
               request_workers=1):
    """Build the application.

    Parameters
    ----------
    database : archive.db.Database, optional
        Default: the database of the environment (``SPHEREDC_*`` variables).
    limits : vo.query.Limits, optional
        Service limits (defaults of `vo.query.Limits`).
    async_workers : int, optional
        Threads running async TAP jobs in this process (0: none).
    cookie_secure : bool, optional
        Mark session cookies Secure (default: ``Settings.cookie_secure``).
    request_workers : int, optional
        Threads running accepted reduction requests in this process (0: none).

    Returns
    -------
    flask.Flask
    """
    from archive.db import Database
    from vo.query import Limits, QueryPool
    from vo.tapschema import sync_tap_schema
    from vo.uws_runner import JobManager

    database = database or Database()
    limits = limits or Limits()
    database.ensure_ready()
    with database.connect() as conn:
        sync_tap_schema(conn)
    # Templates and static files live beside this module (web/templates, web/static).
    app = Flask('spheredc', root_path=str(Path(__file__).resolve().parent))
    # Whole multipart bodies above this are refused with 413 before being read.
    app.config['MAX_CONTENT_LENGTH'] = limits.upload_bytes + 1_000_000
    pool = QueryPool(database)
    jobs = JobManager(database, pool, limits, workers=async_workers)
    app.extensions['spheredc'] = Services(database, pool, limits, jobs,
                                          owner_pool=_OwnerPool(database))
    from .auth import init_auth

    init_auth(app, database.settings, cookie_secure)
    register_blueprints(app)
    from .requests_worker import RequestWorker

    app.extensions['spheredc'].requests = RequestWorker(database, workers=request_workers)
    return app


class _OwnerPool:
    # Opened on first use, so that each gunicorn worker (after fork) has its own.
    def __init__(self, database):
        import threading

        self.database = database
        self._pool = None
        self._lock = threading.Lock()

    def connection(self):
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(self.database.conninfo, min_size=1, max_size=8,
                                            open=True, timeout=30)
        return self._pool.connection()

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def register_blueprints(app):
    """Attach every part of the site to ``app``."""
    from .auth import bp as auth_bp
    from .health import bp as health_bp
    from .portal import bp as portal_bp
    from .requests_views import bp as requests_bp
    from .vo_views import bp as vo_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(vo_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(requests_bp)
