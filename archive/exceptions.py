"""Errors raised by the archive layer."""


class ArchiveError(Exception):
    """Base class of the archive's errors."""


class ConfigurationError(ArchiveError):
    """The environment asks for something impossible (bad URL, unusable home)."""


class DatabaseUnavailable(ArchiveError):
    """The database cannot be started or reached; the message says why."""


class SchemaError(ArchiveError):
    """A table description in ``schemas/`` is malformed."""

    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = path


class RequestError(ArchiveError, ValueError):
    """A request that cannot be made or changed; the message says why, for the user."""


class RequestNotFound(RequestError, LookupError):
    """No such request, or not one of the user's."""


class RequestForbidden(RequestError, PermissionError):
    """The user may not do this (not staff, not a member of the programme)."""


class IllegalTransition(RequestError):
    """The request is not in a state that allows this change."""

