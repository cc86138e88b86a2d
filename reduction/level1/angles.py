"""Frame times, parallactic angles and derotation angles (SPHERE-DATA.md conventions).

Time model of a file: frame i starts at ``DATE-OBS + i (DIT + overhead)`` and
``ESO DET FRAM UTC`` is the end of the last frame, which gives the overhead.
``ESO TEL PARANG START`` / ``END`` are taken at the start of the first frame and at
``DET FRAM UTC``. Between them the angle is interpolated linearly, plus the curvature
of the true parallactic angle computed with astropy (`reduction.paranal`), so that
files near the meridian of stars passing close to the zenith stay accurate.
"""
from dataclasses import dataclass

import numpy as np

from .exceptions import AngleError

__all__ = ["PUPIL_OFFSET_DEG", "SKY_PUPIL_OFFSET_DEG", "TRUE_NORTH_DEG",
           "INSTRUMENT_OFFSET_DEG", "DRIFT_FIX_MJD", "FrameTimes", "Parangs",
           "frame_times_mjd", "interpolate_parang_deg", "derotator_drift_fix_deg",
           "derotation_angle_deg", "wrap_deg"]

#: Pupil offset in pupil tracking (ELEV), degrees.
PUPIL_OFFSET_DEG = 135.99
#: In field tracking (SKY) the pupil offset is this plus ``ESO INS4 DROT2 POSANG``.
SKY_PUPIL_OFFSET_DEG = -100.48
#: True North correction, degrees.
TRUE_NORTH_DEG = -1.75
#: Instrument offset, degrees.
INSTRUMENT_OFFSET_DEG = {"IRDIS": 0.0, "IFS": -100.48}
#: 2016-07-12T00:00 UTC: data taken before need the derotator drift fix.
DRIFT_FIX_MJD = 57581.0

_S_PER_DAY = 86400.0


def wrap_deg(angle_deg):
    """Wrap angles to (-180, 180] degrees."""
    a = np.mod(np.asarray(angle_deg, dtype=np.float64) + 180.0, 360.0) - 180.0
    return np.where(a == -180.0, 180.0, a)


@dataclass(frozen=True)
class FrameTimes:
    """Frame times of one file (MJD, UTC).

    Attributes
    ----------
    start_mjd, mid_mjd : `numpy.ndarray`, shape (ndit,)
        Start and middle of each frame.
    end_mjd : float
        End of the last frame.
    overhead_s : float
        Dead time between frames.
    """
    start_mjd: np.ndarray
    mid_mjd: np.ndarray
    end_mjd: float
    overhead_s: float


def frame_times_mjd(mjd_start, dit_s, ndit, mjd_end=None):
    """Start and middle of each frame of a file.

    Parameters
    ----------
    mjd_start : float
        ``DATE-OBS`` / ``MJD-OBS`` (MJD, UTC): start of the first frame.
    dit_s : float
        ``ESO DET SEQ1 DIT`` (s).
    ndit : int
        ``ESO DET NDIT``.
    mjd_end : float, optional
        ``ESO DET FRAM UTC`` (MJD, UTC): end of the last frame. Without it the
        overhead is taken as 0.

    Returns
    -------
    times : `FrameTimes`

    Raises
    ------
    AngleError
        If ``ndit`` < 1, ``dit_s`` <= 0, or ``mjd_end`` is before the end of the
        frames without overhead (by more than 1 s: rounding of the keywords).
    """
    ndit = int(ndit)
    if ndit < 1 or not dit_s > 0:
        raise AngleError(f"invalid DIT {dit_s} s or NDIT {ndit}")
    overhead_s = 0.0
    if mjd_end is not None and ndit > 1:
        span_s = (mjd_end - mjd_start) * _S_PER_DAY
        overhead_s = (span_s - ndit * dit_s) / (ndit - 1)
        if overhead_s < -1.0 / (ndit - 1):
            raise AngleError(f"DET FRAM UTC is {-overhead_s * (ndit - 1):.2f} s before the end "
                             "of the frames")
        overhead_s = max(overhead_s, 0.0)
    start = mjd_start + np.arange(ndit) * (dit_s + overhead_s) / _S_PER_DAY
    end = float(mjd_end) if mjd_end is not None else float(start[-1] + dit_s / _S_PER_DAY)
    return FrameTimes(start, start + 0.5 * dit_s / _S_PER_DAY, end, overhead_s)


@dataclass(frozen=True)
class Parangs:
    """Parallactic angles of frames.

    Attributes
    ----------
    parang_deg : `numpy.ndarray`, shape (n,)
        From the header keywords, interpolated (continuous with ``START``).
    computed_deg : `numpy.ndarray`, shape (n,)
        Recomputed with astropy (NaN when no coordinates were given).
    disagreement_deg : `numpy.ndarray`, shape (n,)
        ``|header - computed|`` at each frame (wrapped; NaN without coordinates),
        including the keywords themselves at start and end.
    flagged : bool
        True when the disagreement exceeds the tolerance anywhere.
    """
    parang_deg: np.ndarray
    computed_deg: np.ndarray
    disagreement_deg: np.ndarray
    flagged: bool


def interpolate_parang_deg(parang_start_deg, parang_end_deg, mjd_start, mjd_end, mjd_frames,
                           *, ra_deg=None, dec_deg=None, tolerance_deg=0.1):
    """Parallactic angle of each frame from ``TEL PARANG START`` / ``END``.

    Parameters
    ----------
    parang_start_deg, parang_end_deg : float
        ``ESO TEL PARANG START`` and ``END`` (deg).
    mjd_start, mjd_end : float
        Times of those two keywords (MJD, UTC): ``DATE-OBS`` and ``DET FRAM UTC``.
    mjd_frames : array_like, shape (n,)
        Times at which the angle is wanted (frame middles).
    ra_deg, dec_deg : float, optional
        Target (ICRS, deg). When given, the angle is also computed with astropy: its
        curvature corrects the linear interpolation, and the header is cross-checked.
    tolerance_deg : float, optional
        Header versus computed disagreement above which ``flagged`` is set.

    Returns
    -------
    parangs : `Parangs`
        The angle goes continuously from ``START`` (the END keyword is unwrapped
        relative to it: a file never rotates by more than 180 deg).

    Raises
    ------
    AngleError
        If ``mjd_end`` is not after ``mjd_start``.
    """
    from reduction.paranal import parallactic_angle_deg

    t = np.atleast_1d(np.asarray(mjd_frames, dtype=np.float64))
    if not mjd_end > mjd_start:
        raise AngleError(f"PARANG END time {mjd_end} is not after START time {mjd_start}")
    frac = (t - mjd_start) / (mjd_end - mjd_start)
    delta = float(wrap_deg(parang_end_deg - parang_start_deg))
    parang = parang_start_deg + delta * frac
    if ra_deg is None or dec_deg is None:
        nan = np.full(t.shape, np.nan)
        return Parangs(parang, nan, nan, False)
    both = np.concatenate([[mjd_start, mjd_end], t])
    comp = np.unwrap(np.asarray(parallactic_angle_deg(both, ra_deg, dec_deg), float), period=360.0)
    comp_lin = comp[0] + (comp[1] - comp[0]) * frac
    parang = parang + (comp[2:] - comp_lin)
    head = np.concatenate([[parang_start_deg, parang_start_deg + delta], parang])
    disagreement = np.abs(wrap_deg(head - comp))
    computed = comp[2:]
    flagged = bool(np.nanmax(disagreement) > tolerance_deg)
    return Parangs(parang, computed, disagreement[2:], flagged)


def derotator_drift_fix_deg(mjd_utc, alt_deg, drot2_begin_deg):
    """Correction to add to the parallactic angle of data taken before 2016-07-12.

    ``pa += atan(tan(alt - 2 drot2))`` (SPHERE-DATA.md), with ``alt`` the telescope
    altitude (``ESO TEL ALT``) and ``drot2`` the derotator angle at the start
    (``ESO INS4 DROT2 BEGIN`` or ``START``).

    Parameters
    ----------
    mjd_utc : float or array_like
        Frame times (MJD, UTC).
    alt_deg, drot2_begin_deg : float or array_like
        Altitude and derotator angle (deg).

    Returns
    -------
    correction_deg : `numpy.ndarray`
        Correction in (-90, 90) deg before `DRIFT_FIX_MJD`, 0 after.
    """
    mjd = np.asarray(mjd_utc, dtype=np.float64)
    corr = np.degrees(np.arctan(np.tan(np.radians(np.asarray(alt_deg, float)
                                                  - 2.0 * np.asarray(drot2_begin_deg, float)))))
    return np.where(mjd < DRIFT_FIX_MJD, corr, 0.0)


def derotation_angle_deg(parang_deg, *, arm="IRDIS", derot_mode="ELEV", drot2_posang_deg=0.0):
    """Derotation angle theta: rotating a frame by +theta (counter-clockwise) puts north up.

    ``theta = PARANG + PUP_OFFSET + TRUE_NORTH + INSTRUMENT_OFFSET`` with PUP_OFFSET
    135.99 deg in pupil tracking (ELEV), -100.48 + DROT2 POSANG in field tracking (SKY),
    TRUE_NORTH -1.75 deg, INSTRUMENT_OFFSET 0 (IRDIS) or -100.48 deg (IFS).

    Parameters
    ----------
    parang_deg : float or array_like, shape (n,)
        Parallactic angles (deg).
    arm : {'IRDIS', 'IFS'}
        ``ESO SEQ ARM``.
    derot_mode : {'ELEV', 'SKY'}
        ``ESO INS4 DROT2 MODE``.
    drot2_posang_deg : float, optional
        ``ESO INS4 DROT2 POSANG`` (deg), used in SKY mode.

    Returns
    -------
    theta_deg : `numpy.ndarray`
        Same shape as ``parang_deg``; not wrapped (continuous where the input is).

    Raises
    ------
    AngleError
        For another arm or derotator mode.
    """
    if arm not in INSTRUMENT_OFFSET_DEG:
        raise AngleError(f"no instrument offset for arm {arm!r}")
    if derot_mode == "ELEV":
        pupil = PUPIL_OFFSET_DEG
    elif derot_mode == "SKY":
        pupil = SKY_PUPIL_OFFSET_DEG + float(drot2_posang_deg)
    else:
        raise AngleError(f"derotator mode {derot_mode!r} has no defined derotation angle")
    return np.asarray(parang_deg, dtype=np.float64) + pupil + TRUE_NORTH_DEG + \
        INSTRUMENT_OFFSET_DEG[arm]
