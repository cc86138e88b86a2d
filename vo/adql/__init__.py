"""ADQL 2.1 to PostgreSQL + pg_sphere.

The translation runs in separate passes, one module each:

1. `grammar`: the lark LALR grammar;
2. `tree` (with `nodes` and `check`): the node tree and the ADQL rules the
   grammar leaves open;
3. `annotate`: name resolution against table metadata (optional);
4. `morph`: ADQL constructs to PostgreSQL/pg_sphere ones;
5. `flatten`: the SQL text.
"""
from .exceptions import (ADQLError, ADQLNameError, ADQLSyntaxError,
                         ADQLTranslationError, ADQLWarning)
from .metadata import Column, Metadata, Table
from .translate import Translation, to_sql, translate

__all__ = ['to_sql', 'translate', 'Translation', 'ADQLError', 'ADQLSyntaxError',
           'ADQLNameError', 'ADQLTranslationError', 'ADQLWarning', 'Column', 'Table',
           'Metadata']
