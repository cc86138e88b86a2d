"""IRDIS fields, dead zones and recentring with anamorphism correction."""
import numpy as np
import pytest

from tests.reduction.level1_synth import ANAM_Y, add_gaussian
from reduction.level1.exceptions import GeometryError
from reduction.level1.geometry import irdis_dead_zone_mask, recentre, split_fields


def _centroid(img):
    img = np.nan_to_num(img)
    yy, xx = np.indices(img.shape)
    s = img.sum()
    return (img * xx).sum() / s, (img * yy).sum() / s


def test_dead_zone_mask_matches_sphere_data():
    dead = irdis_dead_zone_mask()
    assert dead.shape == (1024, 2048)
    assert dead[14, 500] and not dead[15, 500] and dead[1013, 500] and not dead[1012, 500]
    for x, expected in [(49, True), (50, False), (940, False), (941, True), (1077, True),
                        (1078, False), (1965, False), (1966, True)]:
        assert dead[500, x] == expected, x


def test_split_fields():
    frames = np.zeros((3, 1024, 2048), np.float32)
    frames[:, :, 1024:] = 1.0
    fields = split_fields(frames)
    assert fields.shape == (2, 3, 1024, 1024)
    assert fields[0].max() == 0.0 and fields[1].min() == 1.0
    with pytest.raises(GeometryError):
        split_fields(np.zeros((1024, 1024)))


@pytest.mark.parametrize("xc, yc", [(485.0, 520.0), (486.37, 507.81)])
def test_recentre_puts_star_on_central_pixel(xc, yc):
    img = np.zeros((1024, 1024), np.float32)
    add_gaussian(img, xc, yc, 1000.0)
    out = recentre(img, (xc, yc), 51)
    assert out.shape == (51, 51) and out.dtype == np.float32
    cx, cy = _centroid(out)
    assert abs(cx - 25) < 0.01 and abs(cy - 25) < 0.01
    assert np.unravel_index(np.argmax(out), out.shape) == (25, 25)


def test_recentre_corrects_anamorphism():
    xc, yc = 485.3, 520.6
    img = np.zeros((1024, 1024), np.float32)
    dy = 80.0  # a source 80 px north of the star in the corrected frame
    add_gaussian(img, xc + 30.0, yc + dy / ANAM_Y, 1000.0)
    out = recentre(img, (xc, yc), 201, scale_xy=(1.0, ANAM_Y))
    cx, cy = _centroid(out)
    assert abs(cx - (100 + 30.0)) < 0.02
    assert abs(cy - (100 + dy)) < 0.02
    # without the correction the source would be 0.5 px lower
    cx0, cy0 = _centroid(recentre(img, (xc, yc), 201))
    assert cy - cy0 > 0.4


def test_recentre_marks_invalid_and_outside_pixels():
    img = np.ones((100, 100), np.float32)
    invalid = np.zeros((100, 100), bool)
    invalid[:, 60:] = True
    out = recentre(img, (50.0, 50.0), 41, invalid=invalid)
    assert np.isnan(out[20, 35]) and np.isfinite(out[20, 5])
    assert np.allclose(out[:, :8], 1.0)
    out = recentre(img, (5.0, 50.0), 41)
    assert np.isnan(out[20, 0]) and np.isfinite(out[20, 30])
    with pytest.raises(GeometryError):
        recentre(img, (50.0, 50.0), 40)
