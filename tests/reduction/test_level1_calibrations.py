"""Master background, flat, bad-pixel map, bad-pixel correction, flux normalisation."""
import numpy as np
import pytest

from reduction.level1.badpix import correct_bad_pixels
from reduction.level1.calibrations import bad_pixel_map, master_background, master_flat
from reduction.level1.exceptions import CalibrationError, GeometryError, UnknownNDFilterError
from reduction.level1.geometry import irdis_dead_zone_mask
from reduction.level1.normalise import nd_transmission, normalise_flux


def test_master_background_rejects_cosmic_rays():
    rng = np.random.default_rng(1)
    frames = 100.0 + rng.normal(0, 1.0, (7, 64, 64)).astype(np.float32)
    frames[3, 10, 20] = 5000.0  # cosmic ray in one frame
    bkg = master_background(frames)
    assert bkg.dtype == np.float32 and bkg.shape == (64, 64)
    assert abs(bkg[10, 20] - 100.0) < 3.0
    assert abs(np.median(bkg) - 100.0) < 0.2


def test_master_background_rejects_bad_input():
    with pytest.raises(CalibrationError):
        master_background(np.zeros(5))


def test_master_flat_per_field_normalisation_and_nonlinearity():
    rng = np.random.default_rng(2)
    ny, nx = 1024, 2048
    response = rng.uniform(0.8, 1.2, (ny, nx)).astype(np.float32)
    response[:, 1024:] *= 3.0  # the right field is brighter: normalised separately
    levels = np.array([1.0, 2.0, 4.0])
    frames = [response * 1000.0 * lev + 50.0 for lev in levels]
    frames[2] = frames[2].copy()
    frames[2][500, 300] -= 2000.0  # a saturating / non-linear pixel
    fit = master_flat(frames, levels)
    usable = ~irdis_dead_zone_mask()
    for sl in (np.s_[:, :1024], np.s_[:, 1024:]):
        assert abs(np.median(fit.flat[sl][usable[sl]]) - 1.0) < 1e-3
    ratio = fit.flat[usable] / response[usable]
    ratio_l = fit.flat[100, 200] / response[100, 200]
    assert np.allclose(fit.flat[100, 50:900] / response[100, 50:900], ratio_l, rtol=1e-4)
    assert np.isfinite(ratio).all()
    assert np.all(fit.flat[~usable] == 1.0)
    bad = bad_pixel_map(np.full((ny, nx), 10.0, np.float32), fit.flat,
                        nonlinearity=fit.nonlinearity)
    assert bad[500, 300]
    assert bad.sum() < 10


def test_master_flat_needs_two_levels():
    with pytest.raises(CalibrationError):
        master_flat([np.ones((8, 8)), np.ones((8, 8))], [1.0, 1.0])


def test_bad_pixel_map_hot_and_dead():
    rng = np.random.default_rng(3)
    dark = rng.normal(20.0, 1.0, (3, 128, 128)).astype(np.float32)
    dark[:, 5, 7] = 500.0
    flat = np.ones((128, 128), np.float32)
    flat[40, 41] = 0.05
    bad = bad_pixel_map(dark, flat)
    assert bad[5, 7] and bad[40, 41]
    assert bad.sum() == 2


def test_correct_bad_pixels_interpolates_smooth_signal():
    yy, xx = np.indices((64, 64))
    truth = (100.0 + 0.5 * xx + 0.3 * yy).astype(np.float32)
    frames = np.stack([truth, 2 * truth])
    bad = np.zeros((64, 64), bool)
    bad[20, 30] = bad[21, 30] = bad[40:43, 10:13] = True
    frames[:, bad] = 1e5
    frames[1, 5, 5] = np.nan  # non-finite pixels are corrected too
    out = correct_bad_pixels(frames, bad)
    assert out.shape == frames.shape and np.isfinite(out).all()
    assert np.allclose(out[0][bad], truth[bad], rtol=0.01)
    assert np.allclose(out[1][bad], 2 * truth[bad], rtol=0.01)
    assert abs(out[1, 5, 5] - 2 * truth[5, 5]) < 2.0
    assert np.array_equal(out[0][~bad], truth[~bad])  # good pixels untouched


def test_correct_bad_pixels_leaves_invalid_zone_alone():
    img = np.full((32, 32), 7.0, np.float32)
    invalid = np.zeros((32, 32), bool)
    invalid[:, :5] = True
    img[:, :5] = 0.0
    bad = np.zeros((32, 32), bool)
    bad[10, 5] = True
    img[10, 5] = 1e4
    out = correct_bad_pixels(img, bad, invalid=invalid)
    assert np.all(out[:, :5] == 0.0)
    assert abs(out[10, 5] - 7.0) < 1e-4  # the zero-valued zone did not leak in
    with pytest.raises(GeometryError):
        correct_bad_pixels(img, bad[:10])


def test_nd_normalisation():
    assert nd_transmission("ND_3.5") == pytest.approx(10 ** -3.5)
    assert nd_transmission(None) == 1.0
    out = normalise_flux(np.full(3, 50.0), 2.0, "ND_1.0")
    assert out.dtype == np.float32 and np.allclose(out, 250.0)
    with pytest.raises(UnknownNDFilterError):
        nd_transmission("ND_9")
    with pytest.raises(ValueError):
        normalise_flux(np.ones(2), 0.0)
