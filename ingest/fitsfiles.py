"""Find candidate files and read one FITS file's header and checksum.

`read_file` is the ingest hot path (it runs once per file in worker
processes): each file is read once, in 1 MiB blocks, and the same bytes feed
the SHA-256 checksum, the decompressor (gzip, Unix compress) and a scanner that
parses the headers of its HDUs with astropy and checks that every data unit
is as long as its header says. Data are never decoded, so a plain file costs
one header parse (what `astropy.io.fits.getheader` costs) plus hashing.

Header dict key convention: see `ingest.keywords` (``'ESO DPR CATG'`` for
``HIERARCH ESO DPR CATG``). For tile-compressed files (``.fits.fz``) the
keywords come from the compressed image extension, with ``ZBITPIX``/``ZNAXISn``
reported as ``BITPIX``/``NAXISn``.
"""
import hashlib
import os
import re
import warnings
import zlib

from .exceptions import IngestPathError, UnreadableFile
from .keywords import KEPT_KEYWORDS

__all__ = ["find_files", "read_file", "sha256_of", "is_fits_name", "FITS_SUFFIXES"]

#: Names ingest recognises as FITS (compared in lower case).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.z",
                 ".fits.fz", ".fit.fz")

_READ_BYTES = 1 << 20
_BLOCK = 2880
_CARD = 80
# A header longer than this is not a SPHERE header but garbage without END.
_MAX_HEADER_BYTES = 1000 * _BLOCK
_END_CARD = b"END" + b" " * 77
# Keywords that give the size and kind of each HDU's data.
_STRUCTURAL = frozenset(["SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT",
                         "GROUPS", "ZIMAGE", "ZBITPIX", "ZNAXIS", "END"]
                        + [f"NAXIS{i}" for i in range(1, 1000)]
                        + [f"ZNAXIS{i}" for i in range(1, 1000)])

# Magic numbers of compressions we refuse, with their names for the reason.
_UNSUPPORTED_MAGIC = (
    (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
    (b"\x1f\x1e", "pack"), (b"\x1f\xa0", "SCO compress -H"),
    (b"(\xb5/\xfd", "zstandard"),
)


def find_files(paths, *, include_non_fits=True):
    """List the files to ingest under files and folders.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        Files and folders; folders are walked recursively.
    include_non_fits : bool, optional
        Keep files whose name does not look like FITS (default), so that a
        stray file is quarantined rather than silently ignored.

    Returns
    -------
    files : list of str
        Sorted, without duplicates. Names starting with ``'.'`` found while
        walking (and hidden folders) are skipped; files given explicitly are
        always kept.

    Raises
    ------
    ingest.exceptions.IngestPathError
        If a path does not exist.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    found = set()
    for path in paths:
        path = os.fspath(path)
        if os.path.isfile(path):
            found.add(os.path.normpath(path))
            continue
        if not os.path.isdir(path):
            raise IngestPathError(f"no such file or folder: {path}")
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if name.startswith("."):
                    continue
                if include_non_fits or is_fits_name(name):
                    full = os.path.join(root, name)
                    if os.path.isfile(full):
                        found.add(os.path.normpath(full))
    return sorted(found)


def is_fits_name(name):
    """True if the file name has a FITS suffix (`FITS_SUFFIXES`)."""
    return name.lower().endswith(FITS_SUFFIXES)


def read_file(path):
    """Read the header keywords and checksum of one FITS file.

    Parameters
    ----------
    path : str or os.PathLike
        A plain, gzip (``.gz``), Unix compress (``.Z``) or tile-compressed
        (``.fz``) FITS file. The compression is recognised from the bytes,
        not the name.

    Returns
    -------
    info : dict
        ``path`` (str), ``file_name`` (str), ``size_bytes`` (int),
        ``checksum`` (SHA-256 of the file's bytes as stored, hex str),
        ``compression`` (None, ``'gzip'``, ``'lzw'`` or ``'tile'``),
        ``n_hdus`` (int), ``notes`` (list of str: oddities that do not
        prevent ingest) and ``header`` (dict keyword -> str, int, float or
        bool, restricted to `ingest.keywords.KEPT_KEYWORDS`).

    Raises
    ------
    ingest.exceptions.UnreadableFile
        With ``reason_code`` ``'not_fits'`` (empty file, text, another
        format), ``'corrupt'`` (header that cannot be parsed, data shorter
        than the header says, broken compressed stream) or ``'unreadable'``
        (unsupported compression, I/O error). The exception carries the
        checksum and size when the bytes could be read.
    """
    path = os.fspath(path)
    sha = hashlib.sha256()
    size = None
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            first = f.read(_READ_BYTES)
            sha.update(first)
            if not first:
                raise UnreadableFile(path, "the file is empty", "not_fits",
                                     sha.hexdigest(), 0)
            scanner = _HDUScanner()
            try:
                compression = _compression(first)
                if compression is None:
                    _feed_plain(f, first, sha, scanner)
                elif compression == "gzip":
                    _feed_gzip(f, first, sha, scanner)
                else:
                    _feed_lzw(f, first, sha, scanner)
                headers, notes = scanner.finish()
            except _Refused as exc:
                _drain(f, sha)
                raise UnreadableFile(path, exc.reason, exc.code, sha.hexdigest(),
                                     size) from None
    except OSError as exc:
        raise UnreadableFile(path, f"cannot read the file: {exc.strerror or exc}",
                             "unreadable", None, size) from exc
    header, tiled = _kept_keywords(headers)
    if tiled:
        compression = "tile"
    return {"path": path, "file_name": os.path.basename(path), "size_bytes": size,
            "checksum": sha.hexdigest(), "compression": compression,
            "n_hdus": len(headers), "notes": notes, "header": header}


def sha256_of(path):
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    checksum : str
        Hexadecimal digest (64 characters).

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        _drain(f, sha)
    return sha.hexdigest()


class _Refused(Exception):
    """Internal: why the bytes are not a readable FITS file."""

    def __init__(self, reason, code="corrupt"):
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _compression(first):
    """Name the compression from the magic bytes (None for plain)."""
    if first.startswith(b"\x1f\x8b"):
        return "gzip"
    if first.startswith(b"\x1f\x9d"):
        return "lzw"
    for magic, name in _UNSUPPORTED_MAGIC:
        if first.startswith(magic):
            raise _RefusedUnsupported(name)
    return None


class _RefusedUnsupported(_Refused):
    def __init__(self, name):
        super().__init__(f"unsupported compression ({name}); SPHERE files may be "
                         "plain, gzip (.gz), Unix compress (.Z) or tile-compressed "
                         "(.fz)", "unreadable")


def _drain(f, sha):
    """Hash the rest of the file so a refused file still gets its checksum."""
    for block in iter(lambda: f.read(_READ_BYTES), b""):
        sha.update(block)


def _feed_plain(f, first, sha, scanner):
    scanner.feed(first)
    for block in iter(lambda: f.read(_READ_BYTES), b""):
        sha.update(block)
        scanner.feed(block)


def _feed_gzip(f, first, sha, scanner):
    # zlib streaming rather than the gzip module: the same blocks feed the hash.
    dec = zlib.decompressobj(zlib.MAX_WBITS | 16)
    trailing = False
    block = first
    try:
        while block:
            data = block
            while data and not trailing:
                if dec.eof:
                    # Concatenated gzip members are allowed; anything else after
                    # the last member is ignored, as gzip itself does.
                    if not data.startswith(b"\x1f\x8b"):
                        trailing = True
                        break
                    dec = zlib.decompressobj(zlib.MAX_WBITS | 16)
                scanner.feed(dec.decompress(data))
                data = dec.unused_data if dec.eof else b""
            block = f.read(_READ_BYTES)
            sha.update(block)
    except zlib.error as exc:
        raise _Refused(f"the gzip stream is corrupt ({exc})") from None
    if not dec.eof:
        raise _Refused("truncated: the gzip stream is cut short")


def _feed_lzw(f, first, sha, scanner):
    import io

    try:
        import uncompresspy
    except ImportError:
        raise _Refused("Unix compress (.Z) files need the optional package "
                       "uncompresspy, which is not installed", "unreadable") from None
    chunks = [first]
    for block in iter(lambda: f.read(_READ_BYTES), b""):
        sha.update(block)
        chunks.append(block)
    raw = io.BytesIO(b"".join(chunks))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation is detected by the scanner
            lzw = uncompresspy.LZWFile(raw, warn_truncation=False)
            for block in iter(lambda: lzw.read(_READ_BYTES), b""):
                scanner.feed(block)
    except (ValueError, IndexError, KeyError) as exc:
        raise _Refused(f"the compress (.Z) stream is corrupt ({exc})") from None


class _HDUScanner:
    """Parse HDU headers from a byte stream and skip their data units.

    Bytes arrive in arbitrary chunks; only header bytes are kept.
    """

    def __init__(self):
        self.headers = []
        self.notes = []
        self._buf = bytearray()
        self._searched = 0  # bytes of _buf already searched for END
        self._skip = 0      # data bytes (with padding) still to skip
        self._pad = 0       # of which trailing padding
        self._junk = False  # bytes after the last HDU that are not an HDU

    def feed(self, data):
        view = memoryview(data)
        while len(view):
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            if self._junk:
                return
            self._buf += view
            view = memoryview(b"")
            self._parse_headers()

    def _parse_headers(self):
        while not self._skip and not self._junk:
            if len(self._buf) >= 10 and self._searched == 0:
                self._check_start()
                if self._junk:
                    return
            end = self._find_end()
            if end is None:
                if len(self._buf) > _MAX_HEADER_BYTES:
                    raise _Refused("no END card in the first "
                                   f"{_MAX_HEADER_BYTES} bytes of header")
                return
            header_bytes = bytes(self._buf[:end])
            header_len = -(-end // _BLOCK) * _BLOCK
            rest = self._buf[header_len:]
            header = _parse_header(header_bytes, len(self.headers))
            self.headers.append(header)
            data_len = _data_bytes(header)
            self._pad = -data_len % _BLOCK
            self._skip = data_len + self._pad
            self._buf = bytearray()
            self._searched = 0
            # Bytes past the header: data to skip, then maybe the next header.
            n = min(self._skip, len(rest))
            self._skip -= n
            if n < len(rest):
                self._buf = bytearray(rest[n:])

    def _check_start(self):
        head = bytes(self._buf[:10])
        if not self.headers:
            if head[:9] != b"SIMPLE  =":
                shown = head.decode("ascii", "replace").strip() or repr(head)
                raise _Refused("not a FITS file: it does not begin with the SIMPLE "
                               f"keyword (it begins with {shown!r})", "not_fits")
        elif head[:9] != b"XTENSION=":
            if self._buf.strip(b"\x00 "):
                self.notes.append("bytes after the last HDU that are not an HDU "
                                  "were ignored")
            self._junk = True

    def _find_end(self):
        """Offset just after the END card, or None (searches new cards only)."""
        buf = self._buf
        full = len(buf) - len(buf) % _CARD
        i = buf.find(_END_CARD, self._searched, full)
        while i >= 0:
            if i % _CARD == 0:
                return i + _CARD
            # Found inside a card (e.g. a comment): look again from the next card.
            i = buf.find(_END_CARD, i - i % _CARD + _CARD, full)
        self._searched = full
        return None

    def finish(self):
        """Return ``(headers, notes)``; raise `_Refused` if the stream ended early."""
        if not self.headers:
            if self._buf and bytes(self._buf[:9]) != b"SIMPLE  =":
                raise _Refused("not a FITS file: it does not begin with the SIMPLE "
                               "keyword", "not_fits")
            raise _Refused("truncated: the file ends inside its primary header "
                           "(no END card)")
        if self._skip > self._pad:
            missing = self._skip - self._pad
            raise _Refused(f"truncated: HDU {len(self.headers) - 1} is {missing} bytes "
                           "shorter than its header (BITPIX, NAXISn) says")
        if self._skip:
            self.notes.append("the last data unit lacks its padding to 2880 bytes")
        elif self._buf and not self._junk:
            if bytes(self._buf[:9]) == b"XTENSION=":
                raise _Refused(f"truncated: the file ends inside the header of HDU "
                               f"{len(self.headers)}")
            if self._buf.strip(b"\x00 "):
                self.notes.append("bytes after the last HDU that are not an HDU "
                                  "were ignored")
        return self.headers, self.notes


def _parse_header(header_bytes, index):
    """Keyword -> value of the cards we keep or need; raise `_Refused` if invalid.

    Values are read from the card images by `_card_value`: astropy's
    ``Card.value`` consults its configuration on every access (~20 us), which
    made value parsing cost more than the whole ``fits.getheader`` call that
    is the ingest benchmark's floor. A card that parser does not understand
    (complex numbers, odd formatting) goes through astropy, as before.
    """
    try:
        header = {}
        odd = []
        for keyword, value_text in _wanted_cards(header_bytes):
            value = _card_value(value_text)
            if value is _ODD:
                odd.append((keyword, value_text))
            else:
                header.setdefault(keyword, value)
        for keyword, value_text in odd:
            header.setdefault(keyword, _astropy_value(keyword, value_text))
        for key in ("BITPIX", "NAXIS"):
            if not isinstance(header.get(key), int) or isinstance(header.get(key), bool):
                raise ValueError(f"{key} is missing or not an integer")
    except ValueError as exc:
        raise _Refused(f"the header of HDU {index} cannot be parsed ({exc})") from None
    return header


_ODD = object()
_VALUE_RE = re.compile(
    r"\s*(?:'(?P<str>(?:[^']|'')*)'|(?P<bool>[TF])|"
    r"(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][+-]?\d+)?))?\s*(?:/.*)?$")


def _card_value(text):
    """Value of a card from the text after ``=`` (None when undefined, _ODD if unparsed)."""
    m = _VALUE_RE.match(text)
    if m is None:
        return _ODD
    if m.group("str") is not None:
        return m.group("str").replace("''", "'").rstrip()
    if m.group("bool") is not None:
        return m.group("bool") == "T"
    num = m.group("num")
    if num is None:
        return None
    if any(c in num for c in ".EeDd"):
        return float(num.replace("D", "E").replace("d", "e"))
    return int(num)


def _astropy_value(keyword, value_text):
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard cards are not fatal
        try:
            card = fits.Card.fromstring(f"HIERARCH {keyword} = {value_text}"[:_CARD]
                                        if len(keyword) > 8 else
                                        f"{keyword:8s}= {value_text}"[:_CARD])
            value = card.value
        except Exception:  # a garbled value of one keyword: left out
            return None
    return value if isinstance(value, (str, int, float, bool)) else None


def _wanted_cards(header_bytes):
    """(keyword, value text) of kept and structural cards, long strings joined."""
    text = header_bytes.decode("latin-1")
    cards = []
    for i in range(0, len(text), _CARD):
        card = text[i:i + _CARD]
        if card.startswith("HIERARCH "):
            # ESO writes single spaces between the words of the keyword.
            eq = card.find("=")
            if eq < 0:
                continue
            keyword, value = " ".join(card[9:eq].split()), card[eq + 1:]
        elif card[8:10] == "= ":
            keyword, value = card[:8].rstrip(), card[10:]
        elif card.startswith("CONTINUE") and cards and cards[-1][2]:
            # long-string convention: 'abc&' continued by CONTINUE  'def'
            keyword, value, _ = cards[-1]
            head, tail = value.rstrip(), card[8:].strip()
            joined = head[:head.rfind("&'")] + tail[1:] if tail.startswith("'") else head
            cards[-1] = (keyword, joined, joined.rstrip().endswith("&'"))
            continue
        else:
            continue  # COMMENT, HISTORY, blank, END
        if keyword in KEPT_KEYWORDS or keyword in _STRUCTURAL:
            cards.append((keyword, value, value.rstrip().endswith("&'")))
    return [(k, v) for k, v, _ in cards]


def _data_bytes(header):
    """Size in bytes of the data unit, without padding (FITS 4.0, eq. 1-2)."""
    naxis = header["NAXIS"]
    if naxis == 0:
        return 0
    try:
        dims = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        if header.get("GROUPS") and dims[0] == 0:
            dims = dims[1:]  # random groups: NAXIS1 = 0 is a marker
        n = 1
        for d in dims:
            n *= d
        n = int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + n)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Refused(f"the header gives no valid data size ({exc})") from None
    return abs(int(header["BITPIX"])) // 8 * n


def _kept_keywords(headers):
    """Keywords of interest from the primary (or tile-compressed) header."""
    primary = headers[0]
    kept = _select(primary)
    tiled = (len(headers) > 1 and primary["NAXIS"] == 0
             and headers[1].get("ZIMAGE") is True)
    if tiled:
        ext = headers[1]
        kept.update(_select(ext))
        kept["BITPIX"] = ext.get("ZBITPIX")
        kept["NAXIS"] = ext.get("ZNAXIS")
        for i in (1, 2, 3):
            kept.pop(f"NAXIS{i}", None)
            if f"ZNAXIS{i}" in ext:
                kept[f"NAXIS{i}"] = ext[f"ZNAXIS{i}"]
    return kept, tiled


def _select(header):
    """The kept keywords of one parsed header (undefined values left out)."""
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in header.items()
            if k in KEPT_KEYWORDS and v is not None}
