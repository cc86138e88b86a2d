"""Reduce one IFS sequence to its level-1 products: the file and database side.

The inputs are the cubes ESO's ``sph_ifs_science_dr`` made of the raw IFS
exposures (``sphere.raw_files.level`` 'reduced'): they are already
calibrated, so no calibration product of ours is made or used.
`reduce_ifs_sequence` builds the master cube with
`reduction.level1.ifs.build_ifs_master_cube`, writes the master cube, PSF
cube and previews as the IRDIS recipe does (`reduction.level1_run`), and
registers them with their provenance and the run in one transaction. Like
the IRDIS recipe it never raises for the sequence's own problems: the run is
recorded ``failed`` or ``refused`` with the reason.
"""
import time

from .exceptions import ReductionRefused
from .level1_run import run_level1
from .recipes import IFS_MASTER_CUBE
from .targets import ARCHIVE

__all__ = ["reduce_ifs_sequence", "ifs_refusal"]

_SCIENCE_TYPES = ("OBJECT", "OBJECT,CENTER", "OBJECT,FLUX")


def ifs_refusal(inputs):
    """Why an IFS sequence cannot go through the IFS master-cube recipe (None: it can).

    Parameters
    ----------
    inputs : `reduction.sequence_io.SequenceInputs`

    Returns
    -------
    reason : str or None
    """
    seq = inputs.sequence
    if seq.get("arm") != "IFS":
        return f"the IFS recipe reduces IFS sequences, not {seq.get('arm')}"
    science = [f for f in inputs.files if f["dpr_type"] in _SCIENCE_TYPES]
    raw = sorted({f["arcfile"] for f in science if f.get("level") != "reduced"})
    if raw:
        return (f"{len(raw)} IFS file(s) are raw detector frames ({raw[0]} ...): only cubes "
                "made by ESO's sph_ifs_science_dr are reduced here")
    if not inputs.files_of("OBJECT"):
        return "no OBJECT cube"
    return None


def reduce_ifs_sequence(sequence_id, settings=None, *, recipe=IFS_MASTER_CUBE, params=None,
                        target=ARCHIVE):
    """Reduce one IFS sequence to registered level-1 products.

    Parameters
    ----------
    sequence_id : str
        A ``sphere.sequences`` identifier of an IFS sequence.
    settings : `archive.config.Settings`, optional
        Database and products folder (default: from the environment).
    recipe : `~reduction.recipes.Recipe`, optional
        The IFS master-cube recipe and its `~reduction.level1.ifs.IfsCubeParams`.
    params : `~reduction.level1.ifs.IfsCubeParams`, optional
        Replace the recipe's parameters.
    target : `~reduction.targets.ProductTarget`, optional
        Where the products go (default the archive's current products).

    Returns
    -------
    result : `~reduction.level1_run.RunResult`
        ``status`` 'done', 'refused' (not reducible here, reason in ``error``)
        or 'failed' (an exception, recorded with its message).

    Raises
    ------
    archive.exceptions.DatabaseUnavailable
        If the archive cannot be reached.
    """
    def build(conn, settings, inputs, timings):
        import warnings

        from reduction.level1.exceptions import Level1Warning
        from reduction.level1.ifs import build_ifs_master_cube, ifs_wavelengths_um

        from .sequence_io import raw_file, read_cube, read_header

        reason = ifs_refusal(inputs)
        if reason:
            raise ReductionRefused(sequence_id, reason)
        header = read_header(inputs.files_of("OBJECT")[0]["archive_path"])
        wavelengths_um, from_header = ifs_wavelengths_um(
            header, int(header.get("NAXIS3") or 0), inputs.sequence.get("ins_mode"))
        flags = [] if from_header else [
            f"wavelengths:nominal {inputs.sequence.get('ins_mode')} grid (no axis in the "
            "cube header)"]
        t = time.monotonic()
        files = [raw_file(f, reader=read_cube) for f in inputs.files
                 if f["dpr_type"] in _SCIENCE_TYPES]
        with warnings.catch_warnings():
            # the flags are collected in cube.flags and recorded with the run
            warnings.simplefilter("ignore", Level1Warning)
            cube = build_ifs_master_cube(files, wavelengths_um, params=recipe.params)
        timings["master_cube"] = round(time.monotonic() - t, 3)
        # Already calibrated by ESO's pipeline: no calibration product of ours is used.
        return cube, [], flags + cube.flags

    if params is not None:
        recipe = recipe.with_params(params)
    return run_level1(sequence_id, settings, recipe, build, target=target)
