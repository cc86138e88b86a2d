"""A framework-free HTTP reply: what the protocol functions return to the web layer."""
import dataclasses

from .votable import error_document

__all__ = ['Reply', 'error_reply']


@dataclasses.dataclass
class Reply:
    """Status, MIME type, body (bytes or an iterable of bytes) and extra headers."""

    status: int
    content_type: str
    body: object
    headers: dict = dataclasses.field(default_factory=dict)


def error_reply(exc):
    """The DALI error VOTable for a `vo.exceptions.VOError`."""
    return Reply(exc.http_status, 'application/x-votable+xml', error_document(exc.message))
