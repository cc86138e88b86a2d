"""Table metadata from ``schemas/``: read once, turned into SQLAlchemy tables.

Each YAML file in ``schemas/`` declares one table (see ``schemas/README.md``).
This module reads them into `TableDef`/`ColumnDef` objects and generates the
SQLAlchemy Core `~sqlalchemy.MetaData` from which the DDL and the Alembic
migrations come; TAP_SCHEMA and VOTable FIELDs are generated from the same
objects (DaCHS' resource descriptors are the model).
"""
import dataclasses
import functools
from pathlib import Path

from .exceptions import SchemaError

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

#: Column types a schema file may use.
COLUMN_TYPES = ("smallint", "integer", "bigint", "real", "double", "text", "boolean",
                "timestamp", "spoint", "spoly", "text[]", "json")

#: Table kinds: a ``view`` is described here (TAP_SCHEMA, VOTable FIELDs) but its SQL
#: definition lives in its migration, so no table is generated for it.
TABLE_KINDS = ("table", "view")

_COLUMN_KEYS = {"name", "type", "unit", "ucd", "utype", "description", "nullable", "indexed",
                "principal", "identity", "computed", "std", "default"}
_TABLE_KEYS = {"schema", "name", "kind", "description", "primary_key", "unique",
               "sky_position", "columns"}


@dataclasses.dataclass(frozen=True)
class ColumnDef:
    """One column, as declared in a schema file."""

    name: str
    type: str
    description: str = ""
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    nullable: bool = True
    indexed: bool = False
    principal: bool = False
    identity: bool = False
    computed: str | None = None
    std: bool = False
    default: str | None = None


@dataclasses.dataclass(frozen=True)
class TableDef:
    """One table, as declared in a schema file."""

    schema: str
    name: str
    description: str
    columns: tuple
    primary_key: tuple = ()
    unique: tuple = ()
    sky_position: dict | None = None
    path: str = ""
    kind: str = "table"

    @property
    def qualified_name(self):
        return f"{self.schema}.{self.name}"

    def column(self, name):
        """Return the `ColumnDef` called ``name``; raise KeyError if absent."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified_name} has no column {name!r}")

    @property
    def insertable_columns(self):
        """Names of the columns a loader writes (not identity, not computed)."""
        return [c.name for c in self.columns if not c.identity and not c.computed]


def _parse_table(path, doc):
    if not isinstance(doc, dict):
        raise SchemaError(path, "a table file must be a mapping")
    unknown = set(doc) - _TABLE_KEYS
    if unknown:
        raise SchemaError(path, f"unknown table keys {sorted(unknown)}")
    columns = []
    for raw in doc.get("columns") or ():
        unknown = set(raw) - _COLUMN_KEYS
        if unknown:
            raise SchemaError(path, f"column {raw.get('name')}: unknown keys {sorted(unknown)}")
        if raw.get("type") not in COLUMN_TYPES:
            raise SchemaError(path, f"column {raw.get('name')}: type must be one of {COLUMN_TYPES}")
        columns.append(ColumnDef(**{k: (str(v) if k == "default" else v) for k, v in raw.items()}))
    kind = doc.get("kind", "table")
    if kind not in TABLE_KINDS:
        raise SchemaError(path, f"kind must be one of {TABLE_KINDS}")
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise SchemaError(path, "duplicate column names")
    for key in list(doc.get("primary_key") or ()) + [c for u in doc.get("unique") or () for c in u]:
        if key not in names:
            raise SchemaError(path, f"key column {key!r} is not declared")
    return TableDef(schema=doc["schema"], name=doc["name"],
                    description=" ".join(str(doc.get("description", "")).split()),
                    columns=tuple(columns), primary_key=tuple(doc.get("primary_key") or ()),
                    unique=tuple(tuple(u) for u in doc.get("unique") or ()),
                    sky_position=doc.get("sky_position"), path=str(path), kind=kind)


@functools.cache
def load_tables(directory=None):
    """Read every table file of ``schemas/``.

    Returns
    -------
    tables : dict
        `TableDef` by qualified name (``schema.table``), in file-name order.

    Raises
    ------
    SchemaError
        When a file is malformed.
    """
    import yaml

    directory = Path(directory) if directory else SCHEMAS_DIR
    tables = {}
    for path in sorted(directory.glob("*.yaml")):
        with open(path, encoding="utf-8") as fh:
            # libyaml's loader when present: ten times faster than pure Python
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            table = _parse_table(path, yaml.load(fh, Loader=loader))
        tables[table.qualified_name] = table
    return tables


def table_def(qualified_name):
    """Return the `TableDef` of ``schema.table``."""
    return load_tables()[qualified_name]


def _sqlalchemy_type(col):
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg

    from .pgsphere import SPoint

    return {"smallint": sa.SmallInteger, "integer": sa.Integer, "bigint": sa.BigInteger,
            "real": sa.REAL, "double": pg.DOUBLE_PRECISION, "text": sa.Text,
            "boolean": sa.Boolean, "timestamp": sa.DateTime, "spoint": SPoint,
            "text[]": lambda: pg.ARRAY(sa.Text), "json": pg.JSONB}[col.type]()


@functools.cache
def metadata():
    """The SQLAlchemy `~sqlalchemy.MetaData` of all tables in ``schemas/``."""
    import sqlalchemy as sa

    md = sa.MetaData()
    for tdef in load_tables().values():
        if tdef.kind == "view":
            continue
        cols = []
        for c in tdef.columns:
            extra = []
            if c.identity:
                extra.append(sa.Identity(always=True))
            if c.computed:
                extra.append(sa.Computed(c.computed, persisted=True))
            cols.append(sa.Column(c.name, _sqlalchemy_type(c), *extra, nullable=c.nullable,
                                  server_default=sa.text(c.default) if c.default else None,
                                  comment=c.description or None))
        constraints = []
        if tdef.primary_key:
            constraints.append(sa.PrimaryKeyConstraint(*tdef.primary_key,
                                                       name=f"{tdef.name}_pkey"))
        for i, cols_u in enumerate(tdef.unique):
            constraints.append(sa.UniqueConstraint(*cols_u, name=f"{tdef.name}_uniq{i}"))
        # ADQL's POINT('ICRS', t.ra, t.dec) on a sky table becomes its indexed `pos`
        # column (vo/adql/morph.py): no expression index is needed (migration 0004).
        table = sa.Table(tdef.name, md, *cols, *constraints, schema=tdef.schema,
                         comment=tdef.description)
        for c in tdef.columns:
            if c.indexed and c.name not in tdef.primary_key[:1]:
                using = {"postgresql_using": "gist"} if c.type == "spoint" else {}
                sa.Index(f"ix_{tdef.name}_{c.name}", table.c[c.name], **using)
    return md
