"""Flux normalisation: ADU per frame to ADU/s without neutral density."""
import numpy as np

from .exceptions import UnknownNDFilterError

__all__ = ["ND_TRANSMISSION", "nd_transmission", "normalise_flux"]

#: Transmission of the ``ESO INS4 FILT2 NAME`` neutral densities (broadband, grey).
ND_TRANSMISSION = {"OPEN": 1.0, "ND_1.0": 0.1, "ND_2.0": 0.01, "ND_3.5": 10 ** -3.5}


def nd_transmission(nd_filter):
    """Transmission of a neutral density filter.

    Parameters
    ----------
    nd_filter : str
        ``ESO INS4 FILT2 NAME`` ('OPEN', 'ND_1.0', 'ND_2.0', 'ND_3.5'); None or ''
        mean no filter.

    Returns
    -------
    transmission : float

    Raises
    ------
    UnknownNDFilterError
        For a name not in `ND_TRANSMISSION`.
    """
    name = (nd_filter or "OPEN").strip().upper()
    try:
        return ND_TRANSMISSION[name]
    except KeyError:
        raise UnknownNDFilterError(f"unknown neutral density filter {nd_filter!r}") from None


def normalise_flux(frames, dit_s, nd_filter="OPEN"):
    """Divide frames by their DIT and ND transmission.

    Parameters
    ----------
    frames : array_like, any shape
        Background-subtracted frames (ADU per frame).
    dit_s : float
        Integration time of a frame (s).
    nd_filter : str, optional
        Neutral density in the beam.

    Returns
    -------
    normalised : `numpy.ndarray`, float32
        Frames in ADU/s as if no ND were in the beam.

    Raises
    ------
    ValueError
        If ``dit_s`` is not positive.
    UnknownNDFilterError
        For an unknown ND name.
    """
    if not dit_s > 0:
        raise ValueError(f"DIT must be positive, got {dit_s}")
    scale = np.float32(1.0 / (dit_s * nd_transmission(nd_filter)))
    return np.asarray(frames, dtype=np.float32) * scale
