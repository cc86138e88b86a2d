"""TAP_SCHEMA, ADQL metadata and VOTable FIELDs, all generated from ``schemas/``.

A column is described once, in its schema file; this module turns the
`archive.schema.ColumnDef` objects into TAP_SCHEMA rows (TAP 1.1 section 4),
into `vo.adql.Column` for name resolution, and into `vo.votable.Field`.
"""
import functools

from archive.schema import load_tables

from .votable import Field

__all__ = ['PUBLISHED', 'FOREIGN_KEYS', 'votable_type', 'field_from_column', 'adql_name',
           'adql_metadata', 'published_tables', 'tap_schema_rows', 'sync_tap_schema']

#: Tables and views visible through TAP, in TAP_SCHEMA order (the read-only role of
#: migration 0002 has SELECT on exactly these).
PUBLISHED = ('ivoa.obscore', 'sphere.sequences', 'sphere.raw_files', 'sphere.calib_associations',
             'sphere.candidates', 'sphere.detection_limits', 'tap_schema.schemas',
             'tap_schema.tables', 'tap_schema.columns', 'tap_schema.keys',
             'tap_schema.key_columns')

SCHEMA_DESCRIPTIONS = {
    'ivoa': 'IVOA standard data models (ObsCore 1.1).',
    'sphere': 'The SPHERE archive: raw files, sequences, calibrations, candidates, limits.',
    'tap_schema': 'Description of the tables of this service (TAP 1.1).',
}

#: Foreign keys: (key_id, from_table, target_table, [(from_column, target_column)], text).
FOREIGN_KEYS = (
    ('raw_files_sequence', 'sphere.raw_files', 'sphere.sequences',
     [('sequence_id', 'sequence_id')], 'Sequence a raw file belongs to.'),
    ('calib_assoc_sequence', 'sphere.calib_associations', 'sphere.sequences',
     [('sequence_id', 'sequence_id')], 'Sequence a calibration is used for.'),
    ('candidates_sequence', 'sphere.candidates', 'sphere.sequences',
     [('sequence_id', 'sequence_id')], 'Sequence a candidate was found in.'),
    ('limits_sequence', 'sphere.detection_limits', 'sphere.sequences',
     [('sequence_id', 'sequence_id')], 'Sequence of a detection limit.'),
    ('tables_schema', 'tap_schema.tables', 'tap_schema.schemas',
     [('schema_name', 'schema_name')], 'Schema of a table.'),
    ('columns_table', 'tap_schema.columns', 'tap_schema.tables',
     [('table_name', 'table_name')], 'Table of a column.'),
    ('keys_from', 'tap_schema.keys', 'tap_schema.tables',
     [('from_table', 'table_name')], 'Table holding a foreign key.'),
    ('keys_target', 'tap_schema.keys', 'tap_schema.tables',
     [('target_table', 'table_name')], 'Table a foreign key points to.'),
    ('key_columns_key', 'tap_schema.key_columns', 'tap_schema.keys',
     [('key_id', 'key_id')], 'Key of a key column.'),
)


def adql_name(name):
    """The column name as ADQL queries must write it (ADQL reserved words delimited)."""
    from vo.adql.check import RESERVED

    return f'"{name}"' if name.upper() in RESERVED else name

_SIMPLE = {'smallint': 'short', 'integer': 'int', 'bigint': 'long', 'real': 'float',
           'double': 'double', 'boolean': 'boolean'}


def votable_type(coldef):
    """VOTable (datatype, arraysize, xtype) of a schema column type.

    Parameters
    ----------
    coldef : archive.schema.ColumnDef

    Returns
    -------
    tuple of str
        ``('' for no arraysize/xtype)``, e.g. ``('double', '2', 'point')`` for spoint.
    """
    if coldef.type in _SIMPLE:
        return _SIMPLE[coldef.type], '', ''
    if coldef.type == 'spoint':
        return 'double', '2', 'point'
    if coldef.type == 'spoly':
        # ObsCore 1.1 and taplint want s_region as a string (STC-S, xtype adql:REGION).
        return 'char', '*', 'adql:REGION'
    if coldef.type == 'timestamp':
        return 'char', '*', 'timestamp'
    return 'char', '*', ''


def field_from_column(coldef, name=None):
    """The VOTable `Field` of a schema column."""
    datatype, arraysize, xtype = votable_type(coldef)
    return Field(name or coldef.name, datatype, arraysize, xtype, coldef.unit or '',
                 coldef.ucd or '', coldef.utype or '', coldef.description or '')


def published_tables():
    """`archive.schema.TableDef` of the published tables, in `PUBLISHED` order."""
    tables = load_tables()
    return [tables[name] for name in PUBLISHED]


@functools.cache
def _base_tables():
    from vo.adql import Column, Table

    out = []
    for tdef in published_tables():
        cols = []
        for c in tdef.columns:
            datatype, arraysize, xtype = votable_type(c)
            cols.append(Column(c.name, datatype, c.unit or '', c.ucd or '', c.utype or '',
                               c.description or '', arraysize, xtype))
        out.append(Table(tdef.qualified_name, tuple(cols)))
    return tuple(out)


def adql_metadata(uploads=()):
    """The `vo.adql.Metadata` queries are resolved against.

    Parameters
    ----------
    uploads : sequence of vo.adql.Table, optional
        Tables uploaded with the request (``tap_upload.*``).
    """
    from vo.adql import Metadata

    return Metadata.from_tables(_base_tables() + tuple(uploads))


def tap_schema_rows():
    """The content of the five TAP_SCHEMA tables.

    Returns
    -------
    dict
        Table name (``schemas``, ``tables``, ...) to a list of row dicts.
    """
    rows = {'schemas': [], 'tables': [], 'columns': [], 'keys': [], 'key_columns': []}
    schemas = []
    for t_index, tdef in enumerate(published_tables()):
        if tdef.schema not in schemas:
            schemas.append(tdef.schema)
        rows['tables'].append(dict(schema_name=tdef.schema, table_name=tdef.qualified_name,
                                   table_type=tdef.kind, utype=None,
                                   description=tdef.description, table_index=t_index))
        for c_index, c in enumerate(tdef.columns):
            datatype, arraysize, xtype = votable_type(c)
            rows['columns'].append(dict(
                table_name=tdef.qualified_name, column_name=adql_name(c.name),
                datatype=datatype, arraysize=arraysize or None, xtype=xtype or None,
                size=int(arraysize) if arraysize.isdigit() else None,
                description=c.description or None, utype=c.utype, unit=c.unit, ucd=c.ucd,
                indexed=int(bool(c.indexed) or c.name in tdef.primary_key[:1]),
                principal=int(bool(c.principal)), std=int(bool(c.std)), column_index=c_index))
    for s_index, schema in enumerate(schemas):
        rows['schemas'].append(dict(schema_name=schema, utype=None,
                                    description=SCHEMA_DESCRIPTIONS.get(schema),
                                    schema_index=s_index))
    for key_id, from_table, target_table, pairs, text in FOREIGN_KEYS:
        rows['keys'].append(dict(key_id=key_id, from_table=from_table,
                                 target_table=target_table, description=text, utype=None))
        rows['key_columns'].extend(dict(key_id=key_id, from_column=adql_name(a),
                                        target_column=adql_name(b))
                                   for a, b in pairs)
    return rows


def sync_tap_schema(conn):
    """Rewrite TAP_SCHEMA from ``schemas/`` in one transaction (idempotent).

    Parameters
    ----------
    conn : psycopg.Connection
        A connection allowed to write tap_schema (the owner's).
    """
    rows = tap_schema_rows()
    with conn.transaction():
        with conn.cursor() as cur:
            for table in ('key_columns', 'keys', 'columns', 'tables', 'schemas'):
                cur.execute(f'DELETE FROM tap_schema.{table}')
            for table in ('schemas', 'tables', 'columns', 'keys', 'key_columns'):
                if not rows[table]:
                    continue
                names = list(rows[table][0])
                cur.executemany(
                    f'INSERT INTO tap_schema.{table} ({", ".join(f"{n!s}" for n in names)}) '
                    f'VALUES ({", ".join(["%s"] * len(names))})',
                    [tuple(r[n] for n in names) for r in rows[table]])
