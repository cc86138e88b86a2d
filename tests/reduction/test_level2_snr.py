"""The vectorised S/N map agrees with vip-hci's exact per-pixel S/N."""
import numpy as np
import pytest

from reduction.level2 import psfsub, snr, synthetic
from reduction.level2.exceptions import InputShapeError


def test_snr_map_agrees_with_vip_snr():
    from vip_hci.metrics import snr as vip_snr

    angles = np.linspace(0, 60, 30)
    image = psfsub.pca_adi(synthetic.speckle_cube(30, 61, angles, rng=4), angles, 3)
    fwhm = 4.1
    ours = snr.snr_map(image, fwhm)
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(ours)
    pick = rng.choice(ys.size, 60, replace=False)
    theirs = np.array([vip_snr(image.astype(float), (int(xs[i]), int(ys[i])), fwhm)
                       for i in pick])
    diff = np.abs(ours[ys[pick], xs[pick]] - theirs)
    assert diff.max() < 0.2 and np.median(diff) < 0.05
    # zone as vip: from 1 FWHM to half the frame minus half a FWHM
    assert ours[30, 30] == 0 and ours[30, 30 + 5] != 0 and ours[30, 60] == 0


def test_point_source_has_high_snr():
    yy, xx = np.indices((61, 61))
    image = np.random.default_rng(5).normal(size=(61, 61))
    image += 40 * np.exp(-((xx - 45) ** 2 + (yy - 30) ** 2) / (2 * 1.7 ** 2))
    m = snr.snr_map(image, 4.0)
    y, x = np.unravel_index(np.argmax(m), m.shape)
    assert np.hypot(x - 45, y - 30) <= 1.5
    assert m.max() > 10


def test_snr_map_needs_2d():
    with pytest.raises(InputShapeError):
        snr.snr_map(np.zeros((2, 5, 5)), 4.0)


def test_a_real_companion_does_not_count_as_noise():
    from reduction.level2.contrast import noise_per_separation

    rng = np.random.default_rng(5)
    fwhm = 4.0
    clean = rng.normal(0.0, 1.0, (101, 101)).astype(np.float32)
    yy, xx = np.indices(clean.shape)
    x0, y0 = 50 + 20.0, 50.0  # a bright source 20 px east of the centre pixel
    bright = clean + 200 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * (fwhm / 2.355) ** 2))
    sep = np.array([20.0])
    base, _ = noise_per_separation(clean, sep, fwhm)
    inflated, _ = noise_per_separation(bright, sep, fwhm)
    masked, _ = noise_per_separation(bright, sep, fwhm, exclude_xy=[(x0, y0)])
    assert inflated[0] > 3 * base[0]
    assert masked[0] == pytest.approx(base[0], rel=0.3)
