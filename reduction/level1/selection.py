"""Frame selection: reject frames whose residuals are outliers of the sequence.

Two metrics per frame, measured in an annulus around the star of a recentred cube:
the residual flux (AO or coronagraph glitches make it jump) and the correlation with
the median frame (a bad frame looks unlike the others). Outliers are found with a
robust z-score, ``(value - median) / MAD-std``.
"""
from dataclasses import dataclass

import numpy as np

from .params import SelectionParams

__all__ = ["FrameSelection", "robust_zscore", "select_frames"]


@dataclass(frozen=True)
class FrameSelection:
    """Result of `select_frames`.

    Attributes
    ----------
    selected : `numpy.ndarray`, shape (n,), bool
        True for frames kept.
    reason : `numpy.ndarray`, shape (n,), str
        '' for kept frames, else 'flux' and/or 'correlation' joined by '+'.
    flux : `numpy.ndarray`, shape (n,)
        Mean value in the annulus (units of the cube).
    correlation : `numpy.ndarray`, shape (n,)
        Pearson correlation with the median frame in the annulus.
    """
    selected: np.ndarray
    reason: np.ndarray
    flux: np.ndarray
    correlation: np.ndarray


def robust_zscore(values):
    """Robust z-score of values: ``(v - median) / mad_std`` (0 where the spread is 0).

    Parameters
    ----------
    values : array_like, shape (n,)

    Returns
    -------
    z : `numpy.ndarray`, shape (n,)
    """
    from astropy.stats import mad_std

    v = np.asarray(values, dtype=np.float64)
    scale = mad_std(v, ignore_nan=True)
    if not scale > 0:
        return np.zeros_like(v)
    return (v - np.nanmedian(v)) / scale


def select_frames(cube, *, params=SelectionParams()):
    """Flag outlier frames of a recentred cube.

    Parameters
    ----------
    cube : array_like, shape (n, ny, nx)
        Recentred frames, the star on the central pixel; NaN allowed.
    params : `~reduction.level1.params.SelectionParams`, optional
        Annulus and threshold.

    Returns
    -------
    selection : `FrameSelection`

    Raises
    ------
    ValueError
        If ``cube`` is not 3D or the annulus holds no pixel.
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"expected a cube (n, ny, nx), got shape {cube.shape}")
    n, ny, nx = cube.shape
    yy, xx = np.indices((ny, nx))
    r = np.hypot(xx - nx // 2, yy - ny // 2)
    ann = (r >= params.r_in_px) & (r <= params.r_out_px)
    if not ann.any():
        raise ValueError("the selection annulus holds no pixel")
    pix = np.nan_to_num(cube[:, ann].astype(np.float64))
    flux = pix.mean(axis=1)
    ref = np.median(pix, axis=0)
    a = pix - pix.mean(axis=1, keepdims=True)
    b = ref - ref.mean()
    denom = np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum()) + 1e-30
    corr = (a @ b) / denom
    if n < 3:
        # Nothing to compare with: keep everything.
        keep = np.ones(n, bool)
        return FrameSelection(keep, np.full(n, "", dtype=object), flux, corr)
    bad_flux = np.abs(robust_zscore(flux)) > params.z_max
    bad_corr = robust_zscore(corr) < -params.z_max  # only a low correlation is bad
    reason = np.array(["+".join(w for w, f in (("flux", bf), ("correlation", bc)) if f)
                       for bf, bc in zip(bad_flux, bad_corr)], dtype=object)
    return FrameSelection(~(bad_flux | bad_corr), reason, flux, corr)
