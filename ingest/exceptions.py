"""Errors raised by ingest.

Every error that refuses a file is an `IngestRefusal`: it carries the machine
code stored in ``sphere.quarantine.reason_code`` (``not_fits``, ``corrupt``,
``unreadable``, ``not_sphere``, ``not_classifiable``) and a reason in plain
words, so the caller can quarantine the file without parsing messages.
"""

__all__ = ["IngestError", "IngestRefusal", "UnreadableFile", "NotSphere",
           "NotClassifiable", "IngestPathError"]


class IngestError(Exception):
    """Base class of every ingest error."""


class IngestPathError(IngestError, FileNotFoundError):
    """A path given to ingest does not exist."""


class IngestRefusal(IngestError):
    """A file that ingest refuses; it goes to quarantine with `reason`.

    Parameters
    ----------
    reason : str
        Why, in words a non-specialist understands.
    reason_code : str
        Short machine code (``sphere.quarantine.reason_code``).
    """

    def __init__(self, reason, reason_code):
        super().__init__(reason)
        self.reason = reason
        self.reason_code = reason_code


class UnreadableFile(IngestRefusal):
    """A file that cannot be read as FITS.

    Parameters
    ----------
    path : str
        The file.
    reason : str
        What is wrong with it.
    reason_code : {'not_fits', 'corrupt', 'unreadable'}
        ``not_fits``: empty, text, or another format; ``corrupt``: a FITS
        file that is truncated or whose header cannot be parsed;
        ``unreadable``: unsupported compression or an I/O error.
    checksum : str or None
        SHA-256 (hex) of the bytes, when they could be read (for quarantine).
    size_bytes : int or None
        File size, when known.
    """

    def __init__(self, path, reason, reason_code="corrupt", checksum=None,
                 size_bytes=None):
        super().__init__(reason, reason_code)
        self.path = str(path)
        self.checksum = checksum
        self.size_bytes = size_bytes

    def __str__(self):
        return f"{self.path}: {self.reason}"


class NotSphere(IngestRefusal):
    """A readable FITS file from another instrument than SPHERE."""

    def __init__(self, reason):
        super().__init__(reason, "not_sphere")


class NotClassifiable(IngestRefusal):
    """A SPHERE file lacking the keywords needed to classify it.

    Parameters
    ----------
    reason : str
        The reason in words, naming the missing keywords.
    missing : list of str, optional
        The missing keywords.
    """

    def __init__(self, reason, missing=()):
        super().__init__(reason, "not_classifiable")
        self.missing = list(missing)
