"""The whole chain: parse, check, annotate, morph, flatten."""
from dataclasses import dataclass, field

from .flatten import flatten
from .morph import morph, use_point_columns
from .tree import parse

__all__ = ['Translation', 'translate', 'to_sql']


@dataclass(frozen=True)
class Translation:
    """The result of `translate`.

    Attributes
    ----------
    sql : str
        One PostgreSQL SELECT statement.
    columns : tuple of vo.adql.metadata.Column
        The output columns (empty without metadata).
    warnings : tuple of str
        What was approximated or ignored.
    """
    sql: str
    columns: tuple = ()
    warnings: tuple = field(default=())


def translate(adql, metadata=None, maxrec=None, points=None):
    """Translate ADQL into PostgreSQL + pg_sphere SQL.

    Parameters
    ----------
    adql : str
        One ADQL 2.1 query.
    metadata : vo.adql.metadata.Metadata, optional
        Tables the query may use; when given, every table, column and function
        name is resolved and the output columns are described.
    maxrec : int, optional
        The row limit of the service; the SQL gets LIMIT min(TOP, maxrec + 1).
    points : dict, optional
        Tables storing their position as a point: lower-case qualified name to
        ``(ra, dec, pos[, healpix])`` column names, ``pos`` being
        ``spoint(radians(ra), radians(dec))``; ``POINT('ICRS', t.ra, t.dec)`` is
        then written ``t.pos``, and constant cones also test ``healpix`` (see
        `vo.adql.morph.use_point_columns`).

    Returns
    -------
    Translation

    Raises
    ------
    ADQLSyntaxError
        If `adql` is not valid ADQL.
    ADQLNameError
        If a name does not resolve against `metadata`.
    ADQLTranslationError
        If valid ADQL cannot be expressed for this database.
    """
    tree = parse(adql)
    columns = ()
    if metadata is not None:
        from .annotate import annotate
        tree, columns = annotate(tree, metadata)
    if points:
        tree = use_point_columns(tree, points)
    morphed, warnings = morph(tree, maxrec=maxrec)
    return Translation(flatten(morphed), tuple(columns), tuple(warnings))


def to_sql(adql):
    """Translate ADQL to PostgreSQL/pg_sphere SQL without any database.

    Parameters
    ----------
    adql : str
        One ADQL 2.1 query.

    Returns
    -------
    str
        One SELECT statement.

    Raises
    ------
    ADQLSyntaxError
        If `adql` is not valid ADQL (``.position`` says where).
    ADQLTranslationError
        If valid ADQL cannot be expressed for this database.
    """
    return translate(adql).sql
