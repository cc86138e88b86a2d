"""Errors of the VO services, each with the HTTP status it is answered with.

Protocol code raises these; the web layer turns them into error VOTables
(DALI 1.1 section 4.4) or UWS error documents, never stack traces.
"""

__all__ = ['VOError', 'UsageError', 'QueryError', 'UploadError', 'ServiceUnavailable',
           'JobNotFound', 'JobStateError']


class VOError(Exception):
    """Base class: a request the service answers with an error document.

    Parameters
    ----------
    message : str
        What went wrong, for the user.
    http_status : int, optional
        HTTP status of the answer (default 400).
    """

    http_status = 400

    def __init__(self, message, http_status=None):
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status


class UsageError(VOError):
    """A parameter is missing, unknown in value or of the wrong type."""


class QueryError(VOError):
    """The query is not valid (ADQL syntax, unknown name) or failed in the database."""


class UploadError(VOError):
    """A table upload is malformed, too large or points at a forbidden URL."""


class ServiceUnavailable(VOError):
    """The database cannot be reached."""

    http_status = 503


class JobNotFound(VOError):
    """No UWS job of this identifier (it may have been destroyed)."""

    http_status = 404


class JobStateError(VOError):
    """The requested phase change is not allowed in the job's current phase."""

    http_status = 400
