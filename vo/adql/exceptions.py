"""Errors and warnings of the ADQL translator."""

__all__ = ['ADQLError', 'ADQLSyntaxError', 'ADQLNameError',
           'ADQLTranslationError', 'ADQLWarning']


class ADQLError(Exception):
    """Base class of every error raised by `vo.adql`.

    Parameters
    ----------
    message : str
        What is wrong, in words a TAP user understands.
    position : tuple of (int, int), optional
        (line, column), both 1-based, of the offending spot in the ADQL text.
    """

    def __init__(self, message, position=None):
        self.message = message
        self.position = position
        where = f' (line {position[0]}, column {position[1]})' if position else ''
        super().__init__(message + where)


class ADQLSyntaxError(ADQLError):
    """The text is not a valid ADQL 2.1 query (grammar or typing rules)."""


class ADQLNameError(ADQLError):
    """A table, column or function name cannot be resolved against the metadata."""


class ADQLTranslationError(ADQLError):
    """Valid ADQL that this service cannot run (e.g. an unknown unit in IN_UNIT)."""


class ADQLWarning(UserWarning):
    """Something in the query was approximated or ignored (e.g. a coordinate system)."""
