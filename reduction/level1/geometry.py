"""Detector geometry: IRDIS fields, dead zones, recentring with anamorphism correction.

Conventions (SPHERE-DATA.md): pixel coordinates are 0-based ``(x, y)`` with x the
column; raw images are compressed along y, and the correction scales the offsets
from the star by ``ANAMORPHISM_XY[arm]``. Outputs have an odd side with the star on
the central pixel ``(size // 2, size // 2)``.

Recentring uses one `scipy.ndimage.affine_transform` (cubic spline by default):
the sub-pixel shift and the anamorphic scaling are done in a single interpolation,
which a Fourier shift cannot do (it does not scale one axis, and it wraps bright
edges and residual bad pixels around the frame).
"""
import numpy as np

from .exceptions import GeometryError

__all__ = ["IRDIS_SHAPE", "FIELD_SIZE", "FIELDS", "DEFAULT_CENTRE_XY", "PIXSCALE_ARCSEC",
           "ANAMORPHISM_XY", "irdis_dead_zone_mask", "split_fields", "recentre",
           "centre_index"]

#: Raw IRDIS frame shape (ny, nx).
IRDIS_SHAPE = (1024, 2048)
#: Side of one IRDIS field (pixels).
FIELD_SIZE = 1024
#: Field names, in the order of the first axis of `split_fields`.
FIELDS = ("left", "right")
#: Default star position (x, y), 0-based inside each 1024 x 1024 half.
DEFAULT_CENTRE_XY = {"left": (485.0, 520.0), "right": (486.0, 508.0)}
#: Pixel scales (arcsec / pixel).
PIXSCALE_ARCSEC = {"IRDIS": 0.01225, "IFS": 0.00746}
#: Anamorphism correction factors (x, y): corrected offset = raw offset * factor.
ANAMORPHISM_XY = {"IRDIS": (1.0, 1.0062), "IFS": (1.0059, 1.0011)}


def irdis_dead_zone_mask():
    """Unusable IRDIS pixels (vignetted rows and columns, the gap between fields).

    Returns
    -------
    mask : `numpy.ndarray`, shape (1024, 2048), bool
        True where the raw frame is unusable: rows y < 15 and y >= 1013, columns
        x < 50, 941 <= x <= 1077 and x >= 1966.
    """
    ny, nx = IRDIS_SHAPE
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    rows = (y < 15) | (y >= 1013)
    cols = (x < 50) | ((x >= 941) & (x <= 1077)) | (x >= 1966)
    return rows | cols


def split_fields(frames):
    """Split raw IRDIS frames into their left and right fields.

    Parameters
    ----------
    frames : `numpy.ndarray`, shape (..., 1024, 2048)
        Raw frame(s).

    Returns
    -------
    fields : `numpy.ndarray`, shape (2, ..., 1024, 1024)
        ``fields[0]`` is the left field (x < 1024), ``fields[1]`` the right one.
        A view when possible (no copy).

    Raises
    ------
    GeometryError
        If the last two axes are not (1024, 2048).
    """
    frames = np.asarray(frames)
    if frames.shape[-2:] != IRDIS_SHAPE:
        raise GeometryError(f"expected IRDIS frames of shape (..., 1024, 2048), got {frames.shape}")
    return np.stack([frames[..., :FIELD_SIZE], frames[..., FIELD_SIZE:]])


def centre_index(size_px):
    """Index of the central pixel of an odd-sized image (the star's pixel)."""
    return size_px // 2


def recentre(image, centre_xy, size_px, *, scale_xy=(1.0, 1.0), invalid=None, order=3):
    """Put the star on the central pixel, correct the anamorphism, crop.

    Parameters
    ----------
    image : `numpy.ndarray`, shape (ny, nx)
        Calibrated frame (finite values; bad pixels already corrected).
    centre_xy : tuple of float
        Star position (x, y), 0-based, in ``image``.
    size_px : int
        Odd side of the output.
    scale_xy : tuple of float, optional
        Anamorphism correction: offsets from the star are multiplied by these factors
        (``ANAMORPHISM_XY['IRDIS']`` = (1, 1.0062)).
    invalid : `numpy.ndarray`, shape (ny, nx), bool, optional
        Pixels whose value must not be used (dead zones); output pixels that depend on
        them are NaN.
    order : int, optional
        Spline order of the interpolation.

    Returns
    -------
    out : `numpy.ndarray`, shape (size_px, size_px), float32
        The star sits exactly on pixel ``(size_px // 2, size_px // 2)``; pixels mapping
        outside ``image`` or onto ``invalid`` pixels are NaN.

    Raises
    ------
    GeometryError
        If ``size_px`` is not a positive odd integer or ``image`` is not 2D.
    """
    from scipy import ndimage

    image = np.asarray(image)
    if image.ndim != 2:
        raise GeometryError(f"recentre expects a 2D image, got shape {image.shape}")
    if size_px <= 0 or size_px % 2 != 1:
        raise GeometryError(f"output size must be a positive odd integer, got {size_px}")
    xc, yc = float(centre_xy[0]), float(centre_xy[1])
    sx, sy = float(scale_xy[0]), float(scale_xy[1])
    c = centre_index(size_px)
    ny, nx = image.shape
    # Interpolate inside a window around the star only: the spline prefilter then
    # costs the size of the output, not of the whole detector.
    margin = 4
    x0 = max(int(np.floor(xc - c / sx)) - margin, 0)
    x1 = min(int(np.ceil(xc + c / sx)) + margin + 1, nx)
    y0 = max(int(np.floor(yc - c / sy)) - margin, 0)
    y1 = min(int(np.ceil(yc + c / sy)) + margin + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return np.full((size_px, size_px), np.nan, dtype=np.float32)
    window = np.asarray(image[y0:y1, x0:x1], dtype=np.float32)
    matrix = np.array([1.0 / sy, 1.0 / sx])
    offset = np.array([yc - y0 - c / sy, xc - x0 - c / sx])
    out = ndimage.affine_transform(window, matrix, offset=offset, output_shape=(size_px, size_px),
                                   order=order, mode="constant", cval=np.nan)
    # Pixels outside the window and edge effects: mark by mapping coordinates directly.
    yy = (np.arange(size_px) - c) / sy + yc
    xx = (np.arange(size_px) - c) / sx + xc
    outside = ((yy < 0) | (yy > ny - 1))[:, None] | ((xx < 0) | (xx > nx - 1))[None, :]
    if invalid is not None:
        bad = ndimage.binary_dilation(np.asarray(invalid[y0:y1, x0:x1], bool), iterations=1)
        bad = ndimage.affine_transform(bad.astype(np.uint8), matrix, offset=offset,
                                       output_shape=(size_px, size_px), order=0,
                                       mode="constant", cval=1).astype(bool)
        outside |= bad
    out[outside] = np.nan
    return out.astype(np.float32, copy=False)
