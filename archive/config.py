"""Configuration from the environment (DESIGN.md, public contracts).

``SPHEREDC_HOME``
    All state: the embedded database cluster, files and products (default ``./var``).
``SPHEREDC_DATABASE_URL``
    Use this PostgreSQL (>= 13, with pg_sphere) instead of the embedded cluster,
    e.g. ``postgresql://user@host:5432/dbname``.
``SPHEREDC_DASK_SCHEDULER``
    Address of an existing Dask scheduler (``tcp://host:8786``).
``SPHEREDC_SECRET_KEY``
    Key signing the portal's session cookies (default: a random key kept in
    ``$SPHEREDC_HOME/secret_key``, readable by its owner only).
``SPHEREDC_COOKIE_SECURE``
    ``1`` (default) marks session cookies Secure (sent over HTTPS only); ``0``
    for plain HTTP. ``spheredc serve`` on a loopback address turns it off.
``SPHEREDC_SMTP``
    ``host[:port]`` of an SMTP relay for notifications (default: none; the
    messages stay in the outbox, readable on the portal).
``SPHEREDC_MAIL_FROM``
    Sender of notifications (default ``spheredc@localhost``).
``SPHEREDC_UPLOAD_MAX_BYTES``
    Largest upload of raw files by a PI, in bytes (default 2 GiB).
"""
import dataclasses
import os
from pathlib import Path

from .exceptions import ConfigurationError


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where spheredc keeps its state and which database it talks to."""

    home: Path
    database_url: str | None = None
    dask_scheduler: str | None = None
    secret_key: str | None = None
    cookie_secure: bool = True
    smtp: str | None = None
    mail_from: str = "spheredc@localhost"
    upload_max_bytes: int = 2 << 30

    @property
    def embedded(self):
        """True when the project runs its own PostgreSQL cluster."""
        return not self.database_url

    @property
    def pgdata(self):
        return self.home / "pgdata"

    @property
    def socket_dir(self):
        return self.home / "run"

    @property
    def files_dir(self):
        return self.home / "files"

    @property
    def products_dir(self):
        return self.home / "products"

    @property
    def uploads_dir(self):
        return self.home / "uploads"


def load_settings(environ=None):
    """Read the settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("SPHEREDC_HOME") or "var").expanduser().absolute()
    try:
        upload_max = int(env.get("SPHEREDC_UPLOAD_MAX_BYTES") or 2 << 30)
    except ValueError:
        raise ConfigurationError("SPHEREDC_UPLOAD_MAX_BYTES must be a number of bytes") from None
    return Settings(home=home,
                    database_url=env.get("SPHEREDC_DATABASE_URL") or None,
                    dask_scheduler=env.get("SPHEREDC_DASK_SCHEDULER") or None,
                    secret_key=env.get("SPHEREDC_SECRET_KEY") or None,
                    cookie_secure=(env.get("SPHEREDC_COOKIE_SECURE") or "1") not in ("0", "no",
                                                                                   "false"),
                    smtp=env.get("SPHEREDC_SMTP") or None,
                    mail_from=env.get("SPHEREDC_MAIL_FROM") or "spheredc@localhost",
                    upload_max_bytes=upload_max)
