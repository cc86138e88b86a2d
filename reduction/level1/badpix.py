"""Bad-pixel correction by interpolation from good neighbours.

Each bad pixel is replaced by the Gaussian-weighted mean of the good pixels around
it (normalised convolution, as `astropy.convolution.interpolate_replace_nans` does).
It is written with `scipy.ndimage.gaussian_filter` because that filter is separable:
linear in the kernel size and applied to a whole cube at once, where astropy's
direct convolution of a 2048 x 1024 frame is orders of magnitude slower.
"""
import numpy as np

from .exceptions import GeometryError

__all__ = ["correct_bad_pixels"]


def correct_bad_pixels(frames, bad, *, invalid=None, sigma_px=1.0, max_iter=4):
    """Replace bad pixels by an interpolation of their good neighbours.

    Parameters
    ----------
    frames : array_like, shape (ny, nx) or (n, ny, nx)
        Frames to correct; non-finite values are treated as bad too.
    bad : array_like, shape (ny, nx), bool
        Bad-pixel map shared by all frames.
    invalid : array_like, shape (ny, nx), bool, optional
        Pixels neither used nor corrected (detector dead zones): left as they are.
    sigma_px : float, optional
        Gaussian weight width (pixels). Clusters with no good pixel within reach are
        filled on later iterations with a doubled width.
    max_iter : int, optional
        Number of width doublings tried before leaving a pixel at 0.

    Returns
    -------
    corrected : `numpy.ndarray`, same shape as ``frames``, float32
        A new array; good pixels are unchanged.

    Raises
    ------
    GeometryError
        If ``bad`` does not match the frame shape.
    """
    from scipy import ndimage

    data = np.array(frames, dtype=np.float32)  # copy: the input is not modified
    squeeze = data.ndim == 2
    if squeeze:
        data = data[None]
    bad = np.asarray(bad, bool)
    if bad.shape != data.shape[1:]:
        raise GeometryError(f"bad-pixel map shape {bad.shape} differs from frames {data.shape[1:]}")
    ignore = np.zeros(bad.shape, bool) if invalid is None else np.asarray(invalid, bool)
    bad = (bad[None] | ~np.isfinite(data)) & ~ignore[None]
    shared = bool(np.all(bad == bad[:1]))
    kept = data[..., ignore]  # restored at the end
    data[bad] = 0.0
    data[..., ignore] = 0.0
    todo = bad.copy()
    sigma = float(sigma_px)
    for _ in range(max_iter):
        if not todo.any():
            break
        good = (~todo & ~ignore[None]).astype(np.float32)
        if shared:
            # Same mask for every frame: its weight map is computed once.
            weight = ndimage.gaussian_filter(good[0], sigma, truncate=3.0)[None]
        else:
            weight = ndimage.gaussian_filter(good, (0, sigma, sigma), truncate=3.0)
        summed = ndimage.gaussian_filter(data * good, (0, sigma, sigma), truncate=3.0)
        fillable = todo & (weight > 1e-3)
        interp = summed / np.where(weight > 1e-3, weight, 1.0)
        data[fillable] = np.broadcast_to(interp, data.shape)[fillable]
        todo &= ~fillable
        sigma *= 2.0
    data[..., ignore] = kept
    return data[0] if squeeze else data
