"""Synthetic IRDIS fields for the level-1 tests, following the shared contract geometry.

A source at offset (dx, dy) from the star in the anamorphism-corrected frame sits in
the raw field at (xc + dx, yc + dy / 1.0062).
"""
import numpy as np

ANAM_Y = 1.0062


def gaussian(shape, x, y, flux, sigma=1.7):
    """Gaussian of total flux ``flux`` at (x, y) (0-based pixel centres)."""
    yy, xx = np.indices(shape, dtype=np.float64)
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return (flux / (2 * np.pi * sigma ** 2) * g).astype(np.float32)


def raw_xy(xc, yc, dx, dy):
    """Raw-frame position of a corrected-frame offset (contract anamorphism)."""
    return xc + dx, yc + dy / ANAM_Y


def waffle_field(xc, yc, *, shape=(1024, 1024), radius=40.0, orient="x", spot_flux=3000.0,
                 halo=True, noise=2.0, n_bad=0, rng=None):
    """One field of a CENTER frame: halo, four waffle spots, noise, hot pixels."""
    rng = np.random.default_rng(0) if rng is None else rng
    img = np.zeros(shape, np.float32)
    base = 45.0 if orient == "x" else 0.0
    for k in range(4):
        a = np.radians(base + 90 * k)
        x, y = raw_xy(xc, yc, radius * np.cos(a), radius * np.sin(a))
        img += gaussian(shape, x, y, spot_flux)
    if halo:
        yy, xx = np.indices(shape)
        r = np.hypot(xx - xc, (yy - yc) * ANAM_Y)
        img += (200.0 * np.exp(-r / 8.0) + 20.0 * np.exp(-r / 40.0)).astype(np.float32)
        # coronagraphic residual: a few speckles closer in
        for _ in range(6):
            a, rr = rng.uniform(0, 2 * np.pi), rng.uniform(5, 25)
            img += gaussian(shape, xc + rr * np.cos(a), yc + rr * np.sin(a), 800.0)
    img += rng.normal(0, noise, shape).astype(np.float32)
    if n_bad:
        iy = rng.integers(0, shape[0], n_bad)
        ix = rng.integers(0, shape[1], n_bad)
        img[iy, ix] = 5e4
    return img


def add_gaussian(img, x, y, flux, sigma=1.7, half=12):
    """Add a Gaussian of total flux ``flux`` at (x, y) to ``img``, in place (local stamp)."""
    ix, iy = int(round(x)), int(round(y))
    ya, yb = max(iy - half, 0), min(iy + half + 1, img.shape[0])
    xa, xb = max(ix - half, 0), min(ix + half + 1, img.shape[1])
    yy, xx = np.mgrid[ya:yb, xa:xb]
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2)
    img[ya:yb, xa:xb] += (flux * g).astype(img.dtype)


def halo(shape, xc, yc, level):
    """Radially symmetric coronagraphic residual halo (corrected-frame radius)."""
    yy, xx = np.indices(shape)
    r = np.hypot(xx - xc, (yy - yc) * ANAM_Y)
    return (level * (np.exp(-r / 6.0) + 0.1 * np.exp(-r / 30.0))).astype(np.float32)
