"""pg_sphere types for SQLAlchemy (the extension's ``spoint``)."""
from sqlalchemy.types import UserDefinedType


class SPoint(UserDefinedType):
    """A point on the sphere (pg_sphere ``spoint``); values are pg_sphere text."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "spoint"


def register_reflection():
    """Let SQLAlchemy recognise ``spoint`` columns when it reflects a database."""
    from sqlalchemy.dialects.postgresql.base import ischema_names

    ischema_names.setdefault("spoint", SPoint)
