"""Configuration from the environment (DESIGN.md, public contracts).

``SPHEREDC_HOME``
    All state: the embedded database cluster, files and products (default ``./var``).
``SPHEREDC_DATABASE_URL``
    Use this PostgreSQL (>= 13, with pg_sphere) instead of the embedded cluster,
    e.g. ``postgresql://user@host:5432/dbname``.
``SPHEREDC_DASK_SCHEDULER``
    Address of an existing Dask scheduler (``tcp://host:8786``).
"""
import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where spheredc keeps its state and which database it talks to."""

    home: Path
    database_url: str | None = None
    dask_scheduler: str | None = None

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


def load_settings(environ=None):
    """Read the settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("SPHEREDC_HOME") or "var").expanduser().absolute()
    return Settings(home=home,
                    database_url=env.get("SPHEREDC_DATABASE_URL") or None,
                    dask_scheduler=env.get("SPHEREDC_DASK_SCHEDULER") or None)
