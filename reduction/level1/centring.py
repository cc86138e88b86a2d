"""Star centre behind the coronagraph from the four waffle spots of a CENTER frame.

The deformable mirror's waffle pattern puts four satellite spots symmetric about the
star. The spots are found by a coarse search that asks for four bright points at the
same radius, 90 deg apart (a single speckle cannot mimic that), then each spot is fitted
with a 2D Gaussian (`astropy.modeling`); the centre is the intersection of the two
diagonals joining opposite spots. The anamorphism does not bias this: a linear
compression keeps opposite spots symmetric about the star.

Without a CENTER frame, `centre_from_symmetry` finds the point about which the
coronagraphic image itself is most symmetric: to first order in the residual
phase, the speckle halo and the AO control ring are point-symmetric about the star
(Guyon 2005; Perrin et al. 2003 for pinned speckle pairs), whereas the default
position can be off by half a pixel (a 0.5 deg position-angle error at 0.7").

Reference: Langlois et al. 2013 (SPIE 8864), Wertz et al. 2016 (A&A 598, A83).
"""
from dataclasses import dataclass
import warnings

import numpy as np

from .params import CentringParams

__all__ = ["WaffleCentre", "centre_from_waffle", "centre_from_symmetry"]

#: Angle (deg, counter-clockwise from +x) of the first spot for each orientation.
_ORIENT_BASE_DEG = {"x": 45.0, "+": 0.0}


@dataclass(frozen=True)
class WaffleCentre:
    """Result of `centre_from_waffle`.

    Attributes
    ----------
    centre_xy : tuple of float
        Star position (x, y), 0-based, in the input image (the first guess if
        ``success`` is False).
    success : bool
        False when the fit failed and the first guess was returned.
    reason : str
        Empty on success, otherwise why the fit was rejected.
    spots_xy : `numpy.ndarray`, shape (4, 2)
        Fitted spot positions (x, y), in angular order (NaN when not found).
    radius_px : float
        Mean distance of the spots from the centre.
    residual_px : float
        Largest distance between the centre and the midpoint of either diagonal
        (0 for a perfectly symmetric pattern).
    orientation : str
        Waffle orientation used, 'x' or '+'.
    """
    centre_xy: tuple
    success: bool
    reason: str
    spots_xy: np.ndarray
    radius_px: float
    residual_px: float
    orientation: str


def _coarse_search(smooth_max, guess_xy, orientations, params):
    """Radius, angle offset and orientation maximising the weakest of four spots."""
    from scipy import ndimage

    radii = np.arange(params.r_min_px, params.r_max_px, 0.5)
    offsets = np.arange(-8.0, 8.01, 1.0)
    ring = np.radians(np.arange(0.0, 360.0, 5.0))
    # Azimuthal median of each ring: the coronagraphic halo is not a spot.
    xr = guess_xy[0] + radii[:, None] * np.cos(ring)
    yr = guess_xy[1] + radii[:, None] * np.sin(ring)
    ring_level = np.median(ndimage.map_coordinates(smooth_max, [yr, xr], order=1), axis=1)
    best = (-np.inf, None, None, None)
    for orient in orientations:
        ang = np.radians(_ORIENT_BASE_DEG[orient] + offsets[:, None] + 90.0 * np.arange(4))
        xs = guess_xy[0] + radii[:, None, None] * np.cos(ang)
        ys = guess_xy[1] + radii[:, None, None] * np.sin(ang)
        vals = ndimage.map_coordinates(smooth_max, [ys, xs], order=1)
        score = vals.min(axis=2) - ring_level[:, None]
        i, j = np.unravel_index(np.argmax(score), score.shape)
        if score[i, j] > best[0]:
            best = (score[i, j], radii[i], offsets[j], orient)
    return best


def _fit_spot(image, smooth, x0, y0, params):
    """Gaussian fit of one spot near (x0, y0); returns (x, y) or None."""
    from astropy.modeling import fitting, models

    ny, nx = image.shape
    s = params.search_px
    ix, iy = int(round(x0)), int(round(y0))
    ya, yb, xa, xb = max(iy - s, 0), min(iy + s + 1, ny), max(ix - s, 0), min(ix + s + 1, nx)
    if ya >= yb or xa >= xb:
        return None
    py, px = np.unravel_index(np.argmax(smooth[ya:yb, xa:xb]), (yb - ya, xb - xa))
    px, py = px + xa, py + ya
    b = params.box_px
    ya, yb, xa, xb = max(py - b, 0), min(py + b + 1, ny), max(px - b, 0), min(px + b + 1, nx)
    stamp = image[ya:yb, xa:xb]
    if stamp.size < 9:
        return None
    yy, xx = np.mgrid[ya:yb, xa:xb]
    bg = np.median(stamp)
    model = (models.Gaussian2D(amplitude=image[py, px] - bg, x_mean=px, y_mean=py,
                               x_stddev=1.5, y_stddev=1.5)
             + models.Const2D(amplitude=bg))
    model.x_stddev_0.bounds = (0.3, b)
    model.y_stddev_0.bounds = (0.3, b)
    with warnings.catch_warnings():
        # A poor fit is judged below from its result, not from fitter warnings.
        warnings.simplefilter("ignore")
        fit = fitting.TRFLSQFitter()(model, xx, yy, stamp)
    x, y, amp = fit.x_mean_0.value, fit.y_mean_0.value, fit.amplitude_0.value
    if not (np.isfinite(x) and np.isfinite(y)) or amp <= 0:
        return None
    if abs(x - px) > b or abs(y - py) > b:
        return None
    return x, y


def _intersection(p0, p1, p2, p3):
    """Intersection of lines p0-p2 and p1-p3 (None if parallel)."""
    d1, d2 = p2 - p0, p3 - p1
    a = np.array([d1, -d2]).T
    if abs(np.linalg.det(a)) < 1e-9:
        return None
    t, _ = np.linalg.solve(a, p1 - p0)
    return p0 + t * d1


def centre_from_waffle(image, guess_xy, *, orientation=None, params=CentringParams()):
    """Star centre from the four waffle spots of a (background-subtracted) CENTER frame.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        One field of a CENTER frame, background-subtracted, bad pixels corrected
        (e.g. the median of the CENTER frames of a file).
    guess_xy : tuple of float
        First guess (x, y) of the star, 0-based (default centre or coronagraph position);
        the spots must lie within ``params.search_px`` of where this guess puts them.
    orientation : {'x', '+', None}, optional
        ``ESO OCS WAFFLE ORIENT``; None tries both.
    params : `~reduction.level1.params.CentringParams`, optional
        Search annulus, fit box, acceptance thresholds.

    Returns
    -------
    result : `WaffleCentre`
        Centre, spots and diagnostics. When the spots cannot be fitted or are not
        symmetric, ``success`` is False and ``centre_xy`` is the first guess.

    Raises
    ------
    ValueError
        If ``orientation`` is not 'x', '+' or None.
    """
    from scipy import ndimage

    if orientation is not None and orientation not in _ORIENT_BASE_DEG:
        raise ValueError(f"waffle orientation must be 'x' or '+', got {orientation!r}")
    img = np.array(image, dtype=np.float32)
    img[~np.isfinite(img)] = 0.0
    guess = (float(guess_xy[0]), float(guess_xy[1]))
    nan4 = np.full((4, 2), np.nan)

    def failed(reason, spots=nan4, orient=orientation or "x"):
        return WaffleCentre(guess, False, reason, spots, np.nan, np.nan, orient)

    smooth = ndimage.gaussian_filter(img, params.smooth_px)
    smooth_max = ndimage.maximum_filter(smooth, size=2 * params.search_px + 1)
    orientations = [orientation] if orientation else ["x", "+"]
    score, radius, offset, orient = _coarse_search(smooth_max, guess, orientations, params)
    if radius is None or not score > 0:
        return failed("no waffle spots found")
    ang = np.radians(_ORIENT_BASE_DEG[orient] + offset + 90.0 * np.arange(4))
    spots = []
    for a in ang:
        xy = _fit_spot(img, smooth, guess[0] + radius * np.cos(a), guess[1] + radius * np.sin(a),
                       params)
        if xy is None:
            return failed("a waffle spot fit failed", orient=orient)
        spots.append(xy)
    spots = np.array(spots)
    centre = _intersection(*spots)
    if centre is None:
        return failed("waffle diagonals are parallel", spots, orient)
    residual = max(np.hypot(*(0.5 * (spots[0] + spots[2]) - centre)),
                   np.hypot(*(0.5 * (spots[1] + spots[3]) - centre)))
    radii = np.hypot(*(spots - centre).T)
    if residual > params.max_residual_px:
        return failed(f"waffle spots not symmetric (residual {residual:.2f} px)", spots, orient)
    if radii.std() > params.max_radius_scatter * radii.mean():
        return failed("waffle spots at different radii", spots, orient)
    return WaffleCentre((float(centre[0]), float(centre[1])), True, "", spots,
                        float(radii.mean()), float(residual), orient)


def centre_from_symmetry(image, guess_xy, *, r_in_px=3.0, r_out_px=15.0, max_shift_px=3.0):
    """Star centre as the point of best point symmetry of a coronagraphic image.

    Minimises ``sum (I(x) - I(2 c - x))^2`` over an annulus around the guess:
    the image against itself rotated by 180 deg about the trial centre ``c``.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        Coronagraphic image of one field, background-subtracted, bad pixels
        corrected (e.g. the median of a sequence's OBJECT frames, so that the
        companions, faint anyway, are diluted).
    guess_xy : tuple of float
        First guess (x, y), 0-based (default star position).
    r_in_px, r_out_px : float
        Annulus (pixels from the guess) compared. The bright inner halo and the
        edge of the focal mask carry most of the signal: on the simulator's
        Ks sequences (seeds 1-5, both fields), 3-15 px finds the centre to
        0.06 px rms (0.08 at most), 4-30 px to 0.10, 10-80 px to 0.25 (the
        default position: 0.2-0.5 px off).
    max_shift_px : float
        The centre is searched within this distance of the guess.

    Returns
    -------
    centre_xy : tuple of float
        Fitted (x, y); the guess when the fit fails or leaves the search box.
    success : bool

    Raises
    ------
    ValueError
        If the annulus is empty or does not fit in the image.
    """
    from scipy import ndimage, optimize

    img = np.array(image, dtype=np.float64)
    img[~np.isfinite(img)] = 0.0
    gx, gy = float(guess_xy[0]), float(guess_xy[1])
    ny, nx = img.shape
    reach = r_out_px + max_shift_px + 3
    if not (0 < r_in_px < r_out_px) or gx - reach < 0 or gy - reach < 0 \
            or gx + reach >= nx or gy + reach >= ny:
        raise ValueError(f"annulus {r_in_px}-{r_out_px} px around {guess_xy} does not fit "
                         f"in an image of shape {img.shape}")
    yy, xx = np.mgrid[int(gy - r_out_px):int(gy + r_out_px) + 2,
                      int(gx - r_out_px):int(gx + r_out_px) + 2]
    rad = np.hypot(xx - gx, yy - gy)
    sel = (rad >= r_in_px) & (rad <= r_out_px)
    xs, ys = xx[sel].astype(float), yy[sel].astype(float)
    values = img[yy[sel], xx[sel]]
    coeffs = ndimage.spline_filter(img, order=3)

    def cost(c):
        mirrored = ndimage.map_coordinates(coeffs, [2 * c[1] - ys, 2 * c[0] - xs], order=3,
                                           prefilter=False)
        return float(np.sum((values - mirrored) ** 2))

    # a smooth 2-parameter cost without gradient: a simplex is enough
    best = optimize.minimize(cost, [gx, gy], method="Nelder-Mead",
                             options={"xatol": 1e-3, "fatol": 1e-9 * cost([gx, gy]),
                                      "initial_simplex": [[gx, gy], [gx + 0.5, gy],
                                                          [gx, gy + 0.5]]})
    x, y = (float(v) for v in best.x)
    if not (np.isfinite([x, y]).all() and np.hypot(x - gx, y - gy) <= max_shift_px):
        return (gx, gy), False
    return (x, y), True
