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
