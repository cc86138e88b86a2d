"""IRDIS detector: flat field, bad pixels, dark, bias, noise, 16-bit readout.

The detector is fixed for the night (drawn once from the seed): a pixel
response of 1 +/- 2 % times a low-order illumination pattern, vignetted zones
that receive no light, a few hundred hot and dead pixels, a bias pattern and a
dark current. Each frame draws photon (Poisson, in electrons) and read noise
(Gaussian), and is digitised to unsigned 16 bits with saturation.
"""
import dataclasses

import numpy as np

from . import instrument as ins

#: Thermal + sky background (ADU/s/pixel) per filter combination.
BACKGROUND_ADU_S = {"DB_H23": 1.5, "BB_Ks": 60.0}


@dataclasses.dataclass(frozen=True)
class Detector:
    """One night's IRDIS detector.

    Attributes
    ----------
    flat : `numpy.ndarray`, shape (1024, 2048), float32
        Relative response to light (0 in vignetted zones and dead pixels).
    dark_adu_s : `numpy.ndarray`, shape (1024, 2048), float32
        Dark current (hot pixels included).
    bias_adu : `numpy.ndarray`, shape (1024, 2048), float32
    bad_pixels : `numpy.ndarray`, shape (1024, 2048), bool
        Hot or dead pixels (truth, not written in headers).
    gain_e_adu : float
    read_noise_adu : float
    """

    flat: np.ndarray
    dark_adu_s: np.ndarray
    bias_adu: np.ndarray
    bad_pixels: np.ndarray
    gain_e_adu: float = 1.75
    read_noise_adu: float = 3.5


def usable_mask():
    """Pixels outside the dead/vignetted zones of SPHERE-DATA.md.

    Returns
    -------
    mask : `numpy.ndarray`, shape (1024, 2048), bool
    """
    mask = np.ones(ins.IRDIS_SHAPE, dtype=bool)
    for a, b in ins.DEAD_ROWS:
        mask[a:b + 1, :] = False
    for a, b in ins.DEAD_COLUMNS:
        mask[:, a:b + 1] = False
    return mask


def make_detector(rng, n_hot=300, n_dead=200):
    """Draw the night's detector.

    Parameters
    ----------
    rng : `numpy.random.Generator`
    n_hot, n_dead : int
        Numbers of hot and dead pixels.

    Returns
    -------
    detector : `Detector`
    """
    ny, nx = ins.IRDIS_SHAPE
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
    # low-order illumination per field: a gentle tilt and curvature (+/- ~3 %)
    u = (x % ins.FIELD_SIZE) / ins.FIELD_SIZE - 0.5
    v = y / ny - 0.5
    c = rng.normal(0.0, 0.02, 4).astype(np.float32)
    illum = 1.0 + c[0] * u + c[1] * v - 0.06 * (u ** 2 + v ** 2) + c[2] * u * v
    flat = illum * (1.0 + rng.normal(0.0, 0.02, (ny, nx)).astype(np.float32))
    flat *= usable_mask()
    flat /= np.mean(flat[usable_mask()])
    dark = np.full((ny, nx), 0.05, dtype=np.float32)
    idx = rng.choice(ny * nx, n_hot + n_dead, replace=False)
    hot, dead = idx[:n_hot], idx[n_hot:]
    dark.flat[hot] = 10 ** rng.uniform(1.0, 3.0, n_hot)
    flat.flat[dead] = 0.02
    bad = np.zeros((ny, nx), dtype=bool)
    bad.flat[idx] = True
    bias = (1000.0 + rng.normal(0.0, 8.0, (ny, nx)) + rng.normal(0.0, 3.0, nx)[None, :]).astype(np.float32)
    return Detector(flat=flat.astype(np.float32), dark_adu_s=dark, bias_adu=bias, bad_pixels=bad)


def read_out(detector, light_adu_s, dit_s, rng):
    """One raw frame.

    Parameters
    ----------
    detector : `Detector`
    light_adu_s : `numpy.ndarray`, shape (1024, 2048), or float
        Light reaching the detector (ADU/s), before the flat field; 0 for a dark.
    dit_s : float
        Integration time (s).
    rng : `numpy.random.Generator`

    Returns
    -------
    frame : `numpy.ndarray`, shape (1024, 2048), uint16
    """
    g = detector.gain_e_adu
    expected_e = np.maximum((detector.flat * light_adu_s + detector.dark_adu_s) * np.float32(g * dit_s), 0.0)
    expected_e = np.broadcast_to(expected_e, ins.IRDIS_SHAPE).astype(np.float32)
    # Poisson below 30 e-, its Gaussian limit above: 4x faster and indistinguishable there
    low = expected_e < 30.0
    electrons = expected_e + np.sqrt(expected_e) * rng.standard_normal(expected_e.shape, dtype=np.float32)
    electrons[low] = rng.poisson(expected_e[low].astype(np.float64))
    adu = electrons / np.float32(g) + detector.bias_adu
    adu += rng.standard_normal(adu.shape, dtype=np.float32) * np.float32(detector.read_noise_adu)
    return np.clip(np.rint(adu), 0, ins.SATURATION_ADU).astype(np.uint16)
