"""Master calibrations: background, flat field, bad-pixel map.

All functions take stacked frames and return float32 (or bool) images of the same
detector shape. For IRDIS the flat is normalised separately in each field (the two
halves see different filters); other shapes are normalised as a whole.
"""
from dataclasses import dataclass

import numpy as np

from .exceptions import CalibrationError
from .geometry import FIELD_SIZE, IRDIS_SHAPE, irdis_dead_zone_mask
from .params import CalibrationParams

__all__ = ["FlatFit", "master_background", "master_flat", "bad_pixel_map"]


@dataclass(frozen=True)
class FlatFit:
    """Result of `master_flat`.

    Attributes
    ----------
    flat : `numpy.ndarray`, shape (ny, nx), float32
        Per-pixel response normalised to a median of 1 in each field.
    slope_adu_s : `numpy.ndarray`, shape (ny, nx), float32
        Signal per unit of lamp level (ADU/s when levels are DITs).
    nonlinearity : `numpy.ndarray`, shape (ny, nx), float32
        RMS residual of the linear fit relative to the mean signal (0 with 2 levels).
    """
    flat: np.ndarray
    slope_adu_s: np.ndarray
    nonlinearity: np.ndarray


def _as_stack(frames):
    """Return a float32 (n, ny, nx) stack, raising on anything else."""
    stack = np.asarray(frames, dtype=np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise CalibrationError(f"expected a stack of 2D frames, got shape {stack.shape}")
    return stack


def _usable(shape):
    """Mask of pixels that enter statistics (IRDIS dead zones excluded)."""
    if tuple(shape) == IRDIS_SHAPE:
        return ~irdis_dead_zone_mask()
    return np.ones(shape, bool)


def _field_slices(shape):
    """Column slices normalised independently (the two IRDIS fields, or all)."""
    if tuple(shape) == IRDIS_SHAPE:
        return [np.s_[:, :FIELD_SIZE], np.s_[:, FIELD_SIZE:]]
    return [np.s_[:, :]]


def master_background(frames, *, params=CalibrationParams()):
    """Sigma-clipped median of background frames (SKY, DARK,BACKGROUND or DARK).

    Parameters
    ----------
    frames : array_like, shape (n, ny, nx) or (ny, nx)
        Background frames of one DIT (ADU), all NDIT frames of all files stacked.
    params : `~reduction.level1.params.CalibrationParams`, optional
        ``sigma_clip`` is the clipping threshold.

    Returns
    -------
    background : `numpy.ndarray`, shape (ny, nx), float32
        Master background (ADU per frame of that DIT).

    Raises
    ------
    CalibrationError
        If ``frames`` is not a stack of 2D frames.
    """
    from astropy.stats import sigma_clip

    stack = _as_stack(frames)
    if stack.shape[0] < 3:
        # Clipping needs a few samples; with one or two the median is all we have.
        return np.median(stack, axis=0).astype(np.float32)
    clipped = sigma_clip(stack, sigma=params.sigma_clip, axis=0, maxiters=3,
                         cenfunc="median", stdfunc="mad_std", masked=True, copy=False)
    return np.ma.median(clipped, axis=0).filled(np.nan).astype(np.float32)


def master_flat(frames_by_level, levels):
    """Per-pixel linear fit of the lamp signal against the lamp level.

    Parameters
    ----------
    frames_by_level : sequence of array_like, each shape (ny, nx) or (n, ny, nx)
        Flat frames (ADU), one entry per lamp level (averaged over its frames);
        backgrounds need not be subtracted, the fit's intercept absorbs them.
    levels : array_like, shape (n_levels,)
        Lamp level of each entry, usually the DIT (s).

    Returns
    -------
    fit : `FlatFit`
        Normalised flat, slope and non-linearity maps.

    Raises
    ------
    CalibrationError
        If fewer than two distinct levels are given, or shapes disagree.
    """
    levels = np.asarray(levels, dtype=np.float64)
    if len(frames_by_level) != levels.size:
        raise CalibrationError(f"{len(frames_by_level)} flat entries for {levels.size} levels")
    if np.unique(levels).size < 2:
        raise CalibrationError("a flat needs at least two different lamp levels")
    means = np.stack([_as_stack(f).mean(axis=0) for f in frames_by_level])
    n, ny, nx = means.shape
    y = means.reshape(n, -1)
    # Closed-form least squares, vectorised over pixels (np.polyfit would work too
    # but builds a float64 Vandermonde solve for ~2 million columns).
    lc = levels - levels.mean()
    slope = (lc @ (y - y.mean(axis=0))) / np.sum(lc ** 2)
    intercept = y.mean(axis=0) - slope * levels.mean()
    model = intercept[None] + slope[None] * levels[:, None]
    dof = max(n - 2, 1)
    rms = np.sqrt(np.sum((y - model) ** 2, axis=0) / dof) if n > 2 else np.zeros_like(slope)
    mean_signal = np.abs(y.mean(axis=0)) + 1e-6
    slope = slope.reshape(ny, nx).astype(np.float32)
    nonlin = (rms / mean_signal).reshape(ny, nx).astype(np.float32)
    usable = _usable((ny, nx))
    flat = np.ones((ny, nx), np.float32)
    for sl in _field_slices((ny, nx)):
        good = usable[sl] & np.isfinite(slope[sl]) & (slope[sl] > 0)
        if not good.any():
            raise CalibrationError("flat field has no pixel with a positive response")
        norm = np.median(slope[sl][good])
        flat[sl] = slope[sl] / norm
    flat[~usable] = 1.0  # dead zones: leave the data untouched there
    return FlatFit(flat=flat, slope_adu_s=slope, nonlinearity=nonlin)


def bad_pixel_map(dark_frames, flat, *, nonlinearity=None, params=CalibrationParams()):
    """Hot, cold, dead and non-linear pixels.

    Parameters
    ----------
    dark_frames : array_like, shape (n, ny, nx) or (ny, nx)
        Dark or background frames (ADU); their master is tested for hot/cold pixels.
    flat : array_like, shape (ny, nx)
        Normalised flat (`FlatFit.flat`): dead or over-responsive pixels.
    nonlinearity : array_like, shape (ny, nx), optional
        `FlatFit.nonlinearity`: outliers are non-linear pixels.
    params : `~reduction.level1.params.CalibrationParams`, optional
        Thresholds.

    Returns
    -------
    bad : `numpy.ndarray`, shape (ny, nx), bool
        True for bad pixels (dead zones of the detector are not included).

    Raises
    ------
    CalibrationError
        If shapes disagree.
    """
    from astropy.stats import mad_std

    dark = np.median(_as_stack(dark_frames), axis=0)
    flat = np.asarray(flat, dtype=np.float32)
    if flat.shape != dark.shape:
        raise CalibrationError(f"flat shape {flat.shape} differs from dark shape {dark.shape}")
    usable = _usable(dark.shape)
    ref = dark[usable]
    med, sig = np.median(ref), mad_std(ref)
    bad = np.abs(dark - med) > params.hot_sigma * max(sig, 1e-6)
    bad |= ~np.isfinite(dark) | ~np.isfinite(flat)
    bad |= (flat < params.flat_low) | (flat > params.flat_high)
    if nonlinearity is not None:
        nl = np.asarray(nonlinearity, dtype=np.float32)
        ref = nl[usable]
        med, sig = np.median(ref), mad_std(ref)
        bad |= nl > med + params.nonlin_sigma * max(sig, 1e-6)
    return bad & usable
