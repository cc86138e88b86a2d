"""Tests of ingest.fitsfiles: finding files, reading headers and checksums."""
import bz2
import gzip
import hashlib
import os
import subprocess

import numpy as np
import pytest
from astropy.io import fits

from ingest.classify import classify
from ingest.exceptions import IngestPathError, NotSphere, UnreadableFile
from ingest.fitsfiles import find_files, read_file


def _header(instrument="SPHERE"):
    h = fits.Header()
    h["INSTRUME"] = instrument
    h["DATE-OBS"] = "2025-04-12T23:59:01.123"
    h["MJD-OBS"] = 60777.99931855
    h["HIERARCH ESO DPR CATG"] = "SCIENCE"
    h["HIERARCH ESO DPR TYPE"] = "OBJECT"
    h["HIERARCH ESO SEQ ARM"] = "IRDIS"
    h["HIERARCH ESO DET SEQ1 DIT"] = 16.0
    h["HIERARCH ESO INS4 DROT2 START"] = 12.5
    h["HIERARCH ESO OBS ID"] = 123456
    h["COMMENT"] = "not kept"
    h["HIERARCH ESO UNKNOWN THING"] = "not kept either"
    return h


def _data():
    return np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)


def _lzw_compress(raw):
    """Unix compress (.Z) stream of literal codes only.

    Written here because no compressor is installed; literal codes make every
    code width hold 2**(n-1) codes, a multiple of 8, so the format's group
    padding never arises. Checked against gzip -d below.
    """
    out = bytearray(b"\x1f\x9d\x90")  # magic, block mode, 16 bits max
    acc = n_acc = 0
    width, max_code, free = 9, 511, 257
    for byte in raw:
        acc |= byte << n_acc
        n_acc += width
        while n_acc >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            n_acc -= 8
        if free > max_code and width < 16:
            width += 1
            max_code = 65536 if width == 16 else (1 << width) - 1
        free = min(free + 1, 65536)
    if n_acc:
        out.append(acc & 0xFF)
    return bytes(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fits")
    data = _data()
    plain = d / "SPHER.2025-04-12T23:59:01.123.fits"
    fits.PrimaryHDU(data, _header()).writeto(plain)
    raw = plain.read_bytes()
    paths = {"plain": plain, "raw": raw}
    paths["gz"] = d / "a.fits.gz"
    paths["gz"].write_bytes(gzip.compress(raw))
    paths["fz"] = d / "a.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data.astype(np.int16),
                                                       _header())]).writeto(paths["fz"])
    paths["Z"] = d / "a.fits.Z"
    paths["Z"].write_bytes(_lzw_compress(raw))
    paths["truncated"] = d / "truncated.fits"
    paths["truncated"].write_bytes(raw[:2880 + 1000])
    paths["no_end"] = d / "no_end.fits"
    paths["no_end"].write_bytes(raw[:800])
    paths["empty"] = d / "empty.fits"
    paths["empty"].write_bytes(b"")
    paths["text"] = d / "notes.txt"
    paths["text"].write_text("observing log\n")
    paths["bz2"] = d / "a.fits.bz2"
    paths["bz2"].write_bytes(bz2.compress(raw))
    paths["gz_cut"] = d / "cut.fits.gz"
    paths["gz_cut"].write_bytes(gzip.compress(raw)[:-50])
    paths["other"] = d / "naco.fits"
    fits.PrimaryHDU(data, _header("NAOS+CONICA")).writeto(paths["other"])
    paths["mef"] = d / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(header=_header()),
                  fits.ImageHDU(data.astype(np.float32))]).writeto(paths["mef"])
    paths["mef_cut"] = d / "mef_cut.fits"
    paths["mef_cut"].write_bytes(paths["mef"].read_bytes()[:-2880 - 10])
    paths["nopad"] = d / "nopad.fits"
    paths["nopad"].write_bytes(raw[:2880 + data.nbytes])
    return paths


def test_lzw_helper_is_valid_compress_format(files):
    out = subprocess.run(["gzip", "-dc", str(files["Z"])], capture_output=True)
    if out.returncode and b"not in gzip format" in out.stderr:
        pytest.skip("this gzip cannot decompress .Z")
    assert out.stdout == files["raw"]


@pytest.mark.parametrize("kind, compression", [("plain", None), ("gz", "gzip"),
                                               ("Z", "lzw"), ("fz", "tile")])
def test_read_file_formats(files, kind, compression):
    info = read_file(files[kind])
    path = files[kind]
    assert info["compression"] == compression
    assert info["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["size_bytes"] == os.path.getsize(path)
    assert info["file_name"] == path.name
    h = info["header"]
    assert h["ESO DPR CATG"] == "SCIENCE"
    assert h["ESO DET SEQ1 DIT"] == 16.0
    assert h["ESO OBS ID"] == 123456
    assert h["DATE-OBS"] == "2025-04-12T23:59:01.123"
    assert (h["NAXIS"], h["NAXIS1"], h["NAXIS2"], h["NAXIS3"]) == (3, 30, 20, 3)
    assert "COMMENT" not in h and "ESO UNKNOWN THING" not in h
    assert info["notes"] == []


def test_read_file_agrees_with_getheader(files):
    ref = fits.getheader(files["plain"])
    info = read_file(files["plain"])
    for key, value in info["header"].items():
        assert ref[key] == value


@pytest.mark.parametrize("kind, code, words", [
    ("truncated", "corrupt", "shorter than its header"),
    ("no_end", "corrupt", "no END card"),
    ("empty", "not_fits", "empty"),
    ("text", "not_fits", "does not begin with the SIMPLE"),
    ("bz2", "unreadable", "unsupported compression (bzip2)"),
    ("gz_cut", "corrupt", "gzip"),
    ("mef_cut", "corrupt", "HDU 1"),
])
def test_read_file_refuses(files, kind, code, words):
    with pytest.raises(UnreadableFile) as err:
        read_file(files[kind])
    assert err.value.reason_code == code
    assert words in err.value.reason
    assert err.value.path == str(files[kind])
    # The quarantine needs the checksum of what could be read.
    assert err.value.checksum == hashlib.sha256(files[kind].read_bytes()).hexdigest()


def test_read_file_multi_extension_and_missing_padding(files):
    info = read_file(files["mef"])
    assert info["n_hdus"] == 2
    assert info["header"]["NAXIS"] == 0  # the primary header's keywords
    nopad = read_file(files["nopad"])
    assert nopad["notes"] == ["the last data unit lacks its padding to 2880 bytes"]


def test_read_then_classify(files):
    info = read_file(files["fz"])
    row = classify(info["header"], info["file_name"])
    assert row["arm"] == "IRDIS" and row["dit"] == 16.0
    assert row["drot2_begin"] == 12.5
    with pytest.raises(NotSphere, match="NAOS"):
        info = read_file(files["other"])
        classify(info["header"], info["file_name"])


def test_read_file_missing_path(tmp_path):
    with pytest.raises(UnreadableFile) as err:
        read_file(tmp_path / "absent.fits")
    assert err.value.reason_code == "unreadable"


def test_find_files(tmp_path):
    (tmp_path / "night" / "sub").mkdir(parents=True)
    (tmp_path / "night" / ".hidden").mkdir()
    for name in ("night/b.fits", "night/a.fits.gz", "night/sub/c.fits.Z",
                 "night/truth.json", "night/.DS_Store", "night/.hidden/d.fits",
                 "night/sub/e.FITS.fz", "single.txt"):
        (tmp_path / name).write_bytes(b"x")
    night = str(tmp_path / "night")
    found = find_files([night])
    assert found == sorted(found)
    assert [os.path.relpath(p, night) for p in found] == [
        "a.fits.gz", "b.fits", "sub/c.fits.Z", "sub/e.FITS.fz", "truth.json"]
    only_fits = find_files(night, include_non_fits=False)
    assert [os.path.basename(p) for p in only_fits] == [
        "a.fits.gz", "b.fits", "c.fits.Z", "e.FITS.fz"]
    # Explicit files are kept whatever their name, and duplicates are removed.
    explicit = find_files([tmp_path / "single.txt", night, night + "/b.fits"])
    assert len(explicit) == 6 and str(tmp_path / "single.txt") in explicit
    with pytest.raises(IngestPathError):
        find_files([tmp_path / "nowhere"])


def test_sha256_of(files):
    from ingest.fitsfiles import sha256_of

    assert sha256_of(files["text"]) == hashlib.sha256(b"observing log\n").hexdigest()
    assert sha256_of(files["plain"]) == read_file(files["plain"])["checksum"]


def test_card_values_match_astropy_for_every_value_form(tmp_path):
    """Our card-value reader (ingest's hot path) must read what astropy reads."""
    h = fits.Header()
    h["INSTRUME"] = "SPHERE"
    h["OBJECT"] = "HD 95086 'b'"          # quotes inside a string
    h["RA"] = 164.5965                     # float
    h["DEC"] = -6.8e1                      # exponent
    h["HIERARCH ESO DET NDIT"] = 12        # integer
    h["HIERARCH ESO DET SEQ1 DIT"] = 16.0
    h["HIERARCH ESO OBS PI-COI NAME"] = "A very long name of co-investigators, " * 4  # CONTINUE
    h["HIERARCH ESO INS4 DROT2 MODE"] = ("ELEV", "a comment / with a slash")
    h["HIERARCH ESO OBS ID"] = -1
    h["HIERARCH ESO TPL EXPNO"] = True     # a logical where a number is expected
    h["HIERARCH ESO TEL AMBI TAU0"] = 0.0041
    h["HIERARCH ESO OBS NAME"] = ""         # empty string
    path = tmp_path / "cards.fits"
    fits.PrimaryHDU(np.zeros((2, 2), np.int16), header=h).writeto(path)
    text = path.read_bytes().replace(b" -68.0", b"-6.8D1")  # FORTRAN D exponent
    path.write_bytes(text)
    got = read_file(path)["header"]
    ref = fits.getheader(path)
    for key, value in got.items():
        want = ref[key].strip() if isinstance(ref[key], str) else ref[key]
        assert value == want and type(value) is type(want), key
    assert got["ESO OBS PI-COI NAME"].startswith("A very long name")
    assert len(got["ESO OBS PI-COI NAME"]) > 100
