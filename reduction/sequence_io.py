"""Read a sequence, its files and calibration associations from the archive.

The rows come from ``sphere.sequences``, ``sphere.raw_files`` and
``sphere.calib_associations``; the frames stay on disk until the science code
asks for them (`RawFile` holds a loader, so one file at a time is in memory).
"""
import dataclasses
import functools

import numpy as np

from .exceptions import ReductionError, SequenceNotFound

__all__ = ["SequenceInputs", "load_sequence", "read_frames", "read_cube", "read_header",
           "raw_file", "FILE_COLUMNS"]

#: Columns of ``sphere.raw_files`` the reduction needs.
FILE_COLUMNS = ("arcfile", "file_name", "archive_path", "checksum", "dpr_catg", "dpr_type",
                "arm", "ins_mode", "filter", "coronagraph", "nd_filter", "derot_mode", "dit",
                "ndit", "exptime", "mjd_obs", "mjd_end", "target_name", "ra", "dec", "prog_id",
                "release_date", "parang_start", "parang_end", "drot2_posang", "drot2_begin",
                "alt_deg", "seeing_arcsec", "tau0_s", "waffle_orient", "level")


@dataclasses.dataclass(frozen=True)
class SequenceInputs:
    """Everything the archive knows about one sequence.

    Attributes
    ----------
    sequence : dict
        Its ``sphere.sequences`` row.
    files : list of dict
        Its own files (``sphere.raw_files`` rows, `FILE_COLUMNS`), sorted by time.
    associations : list of dict
        Its ``sphere.calib_associations`` rows, each with the calibration file's
        ``raw_files`` columns (``archive_path``, ``dit``, ``mjd_obs``, ...) added.
    """
    sequence: dict
    files: list
    associations: list

    @property
    def sequence_id(self):
        return self.sequence["sequence_id"]

    def files_of(self, dpr_type):
        """Own files of one DPR TYPE."""
        return [f for f in self.files if f["dpr_type"] == dpr_type]

    def checksums(self):
        """Checksums of every file the reduction reads (own files and calibrations)."""
        return sorted({f["checksum"] for f in self.files}
                      | {a["checksum"] for a in self.associations})


def load_sequence(conn, sequence_id):
    """Read one sequence from the archive.

    Parameters
    ----------
    conn : `psycopg.Connection`
        A connection to the archive.
    sequence_id : str

    Returns
    -------
    inputs : `SequenceInputs`

    Raises
    ------
    SequenceNotFound
        If the sequence is not in the archive.
    """
    from psycopg.rows import dict_row

    cols = ", ".join(FILE_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        seq = cur.execute("SELECT * FROM sphere.sequences WHERE sequence_id = %s",
                          (sequence_id,)).fetchone()
        if seq is None:
            raise SequenceNotFound(sequence_id)
        files = cur.execute(f"SELECT {cols} FROM sphere.raw_files WHERE sequence_id = %s "
                            "ORDER BY mjd_obs, arcfile", (sequence_id,)).fetchall()
        rcols = ", ".join(f"r.{c} AS file_{c}" for c in FILE_COLUMNS if c != "checksum")
        assoc = cur.execute(
            f"SELECT a.*, {rcols} FROM sphere.calib_associations a "
            "JOIN sphere.raw_files r ON r.checksum = a.checksum "
            "WHERE a.sequence_id = %s ORDER BY a.role, a.calib_key, r.mjd_obs, a.arcfile",
            (sequence_id,)).fetchall()
    for a in assoc:
        for c in FILE_COLUMNS:
            if c != "checksum":
                value = a.pop(f"file_{c}")
                a.setdefault(c, value)
    return SequenceInputs(sequence=dict(seq), files=[dict(f) for f in files],
                          associations=[dict(a) for a in assoc])


def _image_hdu(hdul):
    """The first HDU holding an image (the primary, or extension 1 of a .fz file)."""
    for hdu in hdul:
        if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    raise ReductionError(f"{hdul.filename()}: no image in the file")


def read_frames(path):
    """Frames of a raw file as float32, shape (ndit, ny, nx).

    Parameters
    ----------
    path : str or `pathlib.Path`
        FITS file, plain, gzip (``.fits.gz``) or tile-compressed (``.fits.fz``).

    Returns
    -------
    frames : `numpy.ndarray`, shape (ndit, ny, nx), float32

    Raises
    ------
    ReductionError
        If the file holds no image.
    """
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(_image_hdu(hdul).data, dtype=np.float32)
    return data[None] if data.ndim == 2 else data


def read_cube(path):
    """Data of the image HDU of a file as float32, whatever its dimensions.

    For the IFS cubes of ``sph_ifs_science_dr`` ((channel, y, x), or
    (ndit, channel, y, x)), which `read_frames` would take for frames.

    Parameters
    ----------
    path : str or `pathlib.Path`
        FITS file, plain, gzip or tile-compressed.

    Returns
    -------
    data : `numpy.ndarray`, float32

    Raises
    ------
    ReductionError
        If the file holds no image.
    """
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return np.asarray(_image_hdu(hdul).data, dtype=np.float32)


def read_header(path):
    """Header of the image HDU of a raw file (astropy `~astropy.io.fits.Header`)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return _image_hdu(hdul).header.copy()


def raw_file(row, reader=read_frames):
    """A `~reduction.level1.RawFile` for a ``raw_files`` row, frames loaded lazily.

    Parameters
    ----------
    row : dict
        A ``sphere.raw_files`` row with `FILE_COLUMNS`.
    reader : callable, optional
        ``reader(path) -> array``: `read_frames` (IRDIS raw frames), or
        `read_cube` (IFS cubes).

    Returns
    -------
    raw : `reduction.level1.RawFile`
    """
    from reduction.level1 import RawFile

    meta = {"dpr_type": row["dpr_type"], "dit": row["dit"], "ndit": row["ndit"] or 1,
            "nd_filter": row.get("nd_filter") or "OPEN", "mjd_obs": row["mjd_obs"],
            "fram_utc": row.get("mjd_end"), "parang_start": row.get("parang_start"),
            "parang_end": row.get("parang_end"), "ra": row.get("ra"), "dec": row.get("dec"),
            "derot_mode": row.get("derot_mode") or "ELEV",
            "drot2_posang": row.get("drot2_posang"), "filter": row.get("filter"),
            "arcfile": row["arcfile"], "waffle_orient": row.get("waffle_orient"),
            "alt": row.get("alt_deg"), "drot2_begin": row.get("drot2_begin")}
    return RawFile(meta=meta, data=functools.partial(reader, row["archive_path"]))
