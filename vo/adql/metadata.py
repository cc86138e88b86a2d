"""Table metadata that `translate` resolves names against (plain dataclasses).

The lead fills a `Metadata` from the ``schemas/`` files, TAP_SCHEMA and the
tables uploaded with a TAP request.
"""
from dataclasses import dataclass, field

__all__ = ['Column', 'Table', 'Metadata']


@dataclass(frozen=True)
class Column:
    """One column as TAP_SCHEMA describes it.

    Attributes
    ----------
    name : str
        Column name as stored (lower case unless it must be delimited).
    datatype : str
        ADQL/VOTable type: ``double``, ``integer``, ``char``, ``point``, ...
    unit, ucd, utype, description, arraysize, xtype : str
        As in TAP_SCHEMA.columns ('' when not set).
    """
    name: str
    datatype: str = 'char'
    unit: str = ''
    ucd: str = ''
    utype: str = ''
    description: str = ''
    arraysize: str = ''
    xtype: str = ''


@dataclass(frozen=True)
class Table:
    """A table: its qualified lower-case name and its ordered columns."""
    name: str
    columns: tuple = ()

    def column(self, key):
        """Return the column whose name matches `key` (case-folded), or None.

        Parameters
        ----------
        key : str
            Lower case for regular identifiers, exact for delimited ones.

        Returns
        -------
        Column or None
        """
        for col in self.columns:
            if col.name == key or col.name.lower() == key:
                return col
        return None


@dataclass
class Metadata:
    """All tables a query may name, keyed by lower-case qualified name.

    Parameters
    ----------
    tables : dict of str to Table
        e.g. ``{'sphere.raw_files': Table(...), 'tap_upload.x': Table(...)}``.
    """
    tables: dict = field(default_factory=dict)

    @classmethod
    def from_tables(cls, tables):
        """Build from an iterable of `Table`.

        Parameters
        ----------
        tables : iterable of Table

        Returns
        -------
        Metadata
        """
        return cls({t.name.lower(): t for t in tables})

    def find(self, parts):
        """Look up a table by its name parts (schema optional when unambiguous).

        Parameters
        ----------
        parts : sequence of str
            Case-folded name parts, e.g. ``('sphere', 'raw_files')``.

        Returns
        -------
        list of Table
            Every table matching; empty when none does.
        """
        wanted = '.'.join(parts[-2:]).lower()
        if len(parts) >= 2:
            table = self.tables.get(wanted)
            return [table] if table else []
        return [t for key, t in self.tables.items()
                if key == wanted or key.rsplit('.', 1)[-1] == wanted]
