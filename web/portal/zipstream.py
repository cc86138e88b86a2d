"""A zip archive of many files, written as it is sent: constant memory, no temporary file.

Python's `zipfile` writes to an unseekable stream by putting each member's
sizes and CRC in a data descriptor after its data; `stream_zip` gives it a
sink that only collects bytes, and yields them between chunks. Members are
stored, not compressed: FITS data compress poorly and the CPU is better spent
serving other requests.
"""
import time
import zipfile

__all__ = ['stream_zip', 'CHUNK_BYTES']

CHUNK_BYTES = 1 << 20


class _Sink:
    """A write-only, unseekable file that hands its bytes over when asked."""

    def __init__(self):
        self._parts = []
        self._offset = 0

    def write(self, data):
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self):
        # zipfile asks for the offset of each member's header; no seek is ever needed.
        return self._offset

    def flush(self):
        pass

    def take(self):
        data = b''.join(self._parts)
        self._parts.clear()
        return data


def stream_zip(members, chunk_bytes=CHUNK_BYTES):
    """Yield a zip archive of files and texts, chunk by chunk.

    Parameters
    ----------
    members : iterable of (arcname, source)
        ``source`` is a `pathlib.Path` (read in chunks) or `bytes` (a small
        generated member, such as a manifest).
    chunk_bytes : int
        Size of the reads (and about the size of each chunk yielded).

    Yields
    ------
    bytes

    Raises
    ------
    OSError
        If a file cannot be read (the archive is then incomplete: callers
        check that the files exist before streaming).
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode='w', compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for arcname, source in members:
            info = zipfile.ZipInfo(arcname, date_time=time.gmtime()[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if isinstance(source, bytes):
                info.file_size = len(source)
                with zf.open(info, 'w') as out:
                    out.write(source)
                yield sink.take()
                continue
            info.file_size = source.stat().st_size  # decides whether zip64 is needed
            with open(source, 'rb') as fh, zf.open(info, 'w') as out:
                while block := fh.read(chunk_bytes):
                    out.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
