"""Star position and sky offsets in north-up frames (SPHERE-DATA.md geometry).

The star sits on pixel ``(n // 2, n // 2)``: the central pixel of an odd
frame, and vip-hci's `frame_center` of an even one, so both agree.
A source at separation r and position angle PA (north through east) sits at
``x = xc - r sin(PA)``, ``y = yc + r cos(PA)``.
"""
import numpy as np

__all__ = ["star_center", "xy_to_sep_pa", "sep_pa_to_xy", "crop_center"]


def star_center(shape):
    """Star pixel ``(yc, xc)`` of frames of the given shape.

    Parameters
    ----------
    shape : tuple of int
        Array shape; the last two axes are (y, x).

    Returns
    -------
    yc, xc : float
        0-based pixel coordinates of the star.
    """
    return float(shape[-2] // 2), float(shape[-1] // 2)


def xy_to_sep_pa(x, y, shape):
    """Separation (pixels) and position angle (deg, north through east).

    Parameters
    ----------
    x, y : float or ndarray
        Pixel coordinates in a north-up, east-left frame.
    shape : tuple of int
        Frame shape, to locate the star.

    Returns
    -------
    sep_px : float or ndarray
    pa_deg : float or ndarray
        In [0, 360).
    """
    yc, xc = star_center(shape)
    dx, dy = np.asarray(x) - xc, np.asarray(y) - yc
    return np.hypot(dx, dy), np.mod(np.degrees(np.arctan2(-dx, dy)), 360.0)


def sep_pa_to_xy(sep_px, pa_deg, shape):
    """Pixel ``(x, y)`` of a source at a separation and position angle.

    Parameters
    ----------
    sep_px : float or ndarray
    pa_deg : float or ndarray
        North through east.
    shape : tuple of int

    Returns
    -------
    x, y : float or ndarray
    """
    yc, xc = star_center(shape)
    pa = np.radians(pa_deg)
    return xc - sep_px * np.sin(pa), yc + sep_px * np.cos(pa)


def crop_center(array, radius_px):
    """Crop the last two axes to an odd square of half-size ``radius_px``.

    Parameters
    ----------
    array : ndarray, shape (..., ny, nx)
    radius_px : int or None
        None (or a radius beyond the frame) returns the array unchanged.

    Returns
    -------
    ndarray, shape (..., 2 radius_px + 1, 2 radius_px + 1)
        A view; the star stays on the central pixel.
    """
    if radius_px is None:
        return array
    yc, xc = (int(c) for c in star_center(array.shape))
    r = int(radius_px)
    if yc - r < 0 or xc - r < 0 or yc + r >= array.shape[-2] or xc + r >= array.shape[-1]:
        return array
    return array[..., yc - r:yc + r + 1, xc - r:xc + r + 1]
