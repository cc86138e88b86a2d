"""Alembic environment: the target metadata is generated from ``schemas/``."""
from alembic import context

from archive.migrate import include_object
from archive.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run():
    if connection is None:
        import sqlalchemy as sa

        engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as conn:
            _run_with(conn)
    else:
        _run_with(connection)


def _run_with(conn):
    context.configure(connection=conn, target_metadata=metadata(), include_schemas=True,
                      include_object=include_object, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
