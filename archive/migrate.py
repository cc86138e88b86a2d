"""Schema migrations with Alembic, driven from Python (no alembic.ini)."""
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database):
    """An Alembic `~alembic.config.Config` for ``database``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return cfg


def upgrade(database, revision="head"):
    """Bring ``database`` to ``revision`` (creates the extension, schema and tables)."""
    from alembic import command

    with database.engine.begin() as conn:
        cfg = alembic_config(database)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def pending_changes(database):
    """Differences between ``schemas/`` and the migrated database (empty when in sync)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from .pgsphere import register_reflection
    from .schema import metadata

    register_reflection()
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_schemas": True,
                                                     "include_object": include_object})
        return compare_metadata(ctx, metadata())


def include_object(obj, name, type_, reflected, compare_to):
    """Compare only the schemas we declare (not pg_sphere's or PostgreSQL's own)."""
    from .schema import load_tables

    if type_ == "table":
        return f"{obj.schema}.{name}" in load_tables()
    return True
