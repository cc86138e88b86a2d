"""The file store under ``$SPHEREDC_HOME/files``: content-addressed copies.

A file is kept at ``files/<area>/<sha[:2]>/<sha>/<name>`` so two different
files with the same name never collide, and the same bytes are stored once.
Files are hard-linked when source and store share a file system (instant, no
space), copied otherwise; the copy is written to a temporary name and renamed,
so an interrupted run never leaves a partial file under the final name.
"""
import os
import shutil
from pathlib import Path


def stored_path(files_dir, area, checksum, file_name):
    """Where a file of content ``checksum`` is (or would be) kept."""
    return Path(files_dir) / area / checksum[:2] / checksum / file_name


def store_file(src, files_dir, area, checksum, file_name=None):
    """Keep a copy of ``src`` in the store and return its path.

    Parameters
    ----------
    src : str or Path
        The file to keep.
    files_dir : Path
        ``settings.files_dir``.
    area : str
        ``raw`` or ``quarantine``.
    checksum : str
        SHA-256 of the file's bytes (names the folder).
    """
    src = Path(src)
    dest = stored_path(files_dir, area, checksum, file_name or src.name)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest
