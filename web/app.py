"""The Flask application factory: VO services and health now, portal blueprints later.

``create_app()`` builds the application of the current environment (for
gunicorn: ``gunicorn 'web.app:create_app()'``); blueprints are registered in
`register_blueprints`, where the portal's will join the VO ones.
"""
import dataclasses
import logging

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


def services(app=None):
    """The `Services` of ``app`` (default: the current application)."""
    from flask import current_app

    return (app or current_app).extensions['spheredc']


def create_app(database=None, limits=None, async_workers=2):
    """Build the application.

    Parameters
    ----------
    database : archive.db.Database, optional
        Default: the database of the environment (``SPHEREDC_*`` variables).
    limits : vo.query.Limits, optional
        Service limits (defaults of `vo.query.Limits`).
    async_workers : int, optional
        Threads running async TAP jobs in this process (0: none).

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
    app = Flask('spheredc')
    # Whole multipart bodies above this are refused with 413 before being read.
    app.config['MAX_CONTENT_LENGTH'] = limits.upload_bytes + 1_000_000
    pool = QueryPool(database)
    jobs = JobManager(database, pool, limits, workers=async_workers)
    app.extensions['spheredc'] = Services(database, pool, limits, jobs)
    register_blueprints(app)
    return app


def register_blueprints(app):
    """Attach every part of the site to ``app``."""
    from .health import bp as health_bp
    from .vo_views import bp as vo_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(vo_bp)
