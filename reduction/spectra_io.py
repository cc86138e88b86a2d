"""Candidate spectra as VOTables, the format the SSA service serves (``vo/ssa.py``).

One table per candidate: ``wavelength`` (um), ``contrast`` (candidate over
star flux ratio), ``contrast_err`` (1 sigma), ``throughput`` and ``snr`` per
channel, with the utypes of the IVOA Spectrum data model (SpectralAxis,
FluxAxis and its StatError) so that SSA clients find their axes, and
PARAMs naming the candidate, its position and epoch. The bytes depend only on
the values (astropy writes no date), so a rerun gives the same file.
"""
import io

import numpy as np

from .products import atomic_path, sha256_file

__all__ = ["SPECTRUM_MIME", "spectrum_votable_bytes", "write_spectrum"]

#: Content type of the spectrum products.
SPECTRUM_MIME = "application/x-votable+xml"

_COLUMNS = (
    # name, unit, ucd, utype, description
    ("wavelength", "um", "em.wl", "spec:Spectrum.Data.SpectralAxis.Value",
     "Central wavelength of the IFS channel"),
    ("contrast", "", "phot.flux.density;arith.ratio", "spec:Spectrum.Data.FluxAxis.Value",
     "Candidate over star flux ratio (throughput corrected)"),
    ("contrast_err", "", "stat.error;phot.flux.density;arith.ratio",
     "spec:Spectrum.Data.FluxAxis.Accuracy.StatError", "1-sigma uncertainty of the contrast"),
    ("throughput", "", "arith.factor", None,
     "Fraction of a point source's flux kept by the speckle subtraction (fake companions)"),
    ("snr", "", "stat.snr", None, "contrast / contrast_err"),
)


def spectrum_votable_bytes(spectrum, *, params):
    """A candidate's spectrum as VOTable bytes.

    Parameters
    ----------
    spectrum : dict
        Arrays ``wavelength_um``, ``contrast``, ``contrast_err``, ``throughput``
        of equal length (`reduction.level2.postprocess.candidate_spectra`).
    params : list of (name, value, unit, ucd, description)
        Table PARAMs (candidate id, target, separation, ...); None values are
        left out.

    Returns
    -------
    bytes
    """
    from astropy.io.votable.tree import Param, VOTableFile
    from astropy.table import Table

    wl = np.asarray(spectrum["wavelength_um"], dtype=np.float64)
    contrast = np.asarray(spectrum["contrast"], dtype=np.float64)
    err = np.asarray(spectrum["contrast_err"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(err > 0, contrast / err, np.nan)
    values = {"wavelength": wl, "contrast": contrast, "contrast_err": err,
              "throughput": np.asarray(spectrum["throughput"], dtype=np.float64), "snr": snr}
    table = Table({name: values[name] for name, *_ in _COLUMNS})
    votable = VOTableFile.from_table(table)
    resource = votable.resources[0]
    resource.type = "results"
    vtable = resource.tables[0]
    vtable.name = "spectrum"
    vtable.utype = "spec:Spectrum"
    for field, (name, unit, ucd, utype, description) in zip(vtable.fields, _COLUMNS):
        field.unit = unit or None
        field.ucd = ucd
        field.utype = utype
        field.description = description
    for name, value, unit, ucd, description in params:
        if value is None:
            continue
        if isinstance(value, str):
            param = Param(votable, name=name, datatype="char", arraysize="*", value=value,
                          ucd=ucd)
        else:
            param = Param(votable, name=name, datatype="double", value=float(value),
                          unit=unit or None, ucd=ucd)
        param.description = description
        vtable.params.append(param)
    buf = io.BytesIO()
    votable.to_xml(buf, tabledata_format="tabledata")
    return buf.getvalue()


def write_spectrum(path, spectrum, *, params):
    """Write a spectrum VOTable atomically.

    Parameters
    ----------
    path : str or `pathlib.Path`
    spectrum, params
        See `spectrum_votable_bytes`.

    Returns
    -------
    checksum : str
        SHA-256 of the file.
    size_bytes : int
    """
    data = spectrum_votable_bytes(spectrum, params=params)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return sha256_file(path), len(data)
