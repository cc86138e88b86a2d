"""Rendered pictures kept on disk, keyed on the checksums of what they show.

``$SPHEREDC_HOME/cache/pictures/<product_id>-<checksum>.png``: a
re-reduction writes a new product version with a new checksum, so a stale
picture is never served; nothing needs invalidating. Files are written to a
temporary name and renamed, so a reader never sees half a PNG (two threads
rendering the same picture at once both write it whole; the last rename wins).
"""
import os
import re
import tempfile
from pathlib import Path

__all__ = ['picture_dir', 'cache_name', 'cached']

#: Bumped when the drawing changes, so that older renderings are not served.
RENDER_VERSION = 'r1'


def picture_dir(home):
    """The picture cache of the installation at ``home``."""
    return Path(home) / 'cache' / 'pictures'


def cache_name(key, checksum, variant=''):
    """File name of a picture: ``<key>-<checksum>[-variant].png``, safe for any key.

    Parameters
    ----------
    key : str
        A product_id (or sequence_id): characters other than letters, digits,
        ``.``, ``_``, ``:`` and ``-`` become ``_``.
    checksum : str
        Hexadecimal checksum of the data drawn.
    variant : str, optional
        ``thumb``, ``snr``...
    """
    safe = re.sub(r'[^A-Za-z0-9._:-]', '_', key)[:150]
    check = re.sub(r'[^0-9a-fA-F]', '', checksum)[:64]
    suffix = f'-{variant}' if variant else ''
    return f'{safe}-{check}{suffix}-{RENDER_VERSION}.png'


def cached(directory, name, render):
    """Path of a cached picture, rendered first if absent.

    Parameters
    ----------
    directory : pathlib.Path
    name : str
        From `cache_name`.
    render : callable
        ``render() -> bytes``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(directory) / name
    if path.is_file():
        return path
    data = render()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + name, suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
