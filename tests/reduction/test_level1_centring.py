"""Star centre from the waffle spots."""
import numpy as np
import pytest

from tests.reduction.level1_synth import waffle_field
from reduction.level1.badpix import correct_bad_pixels
from reduction.level1.centring import centre_from_waffle

GUESS = (485.0, 520.0)


@pytest.mark.parametrize("orient, xc, yc, radius", [
    ("x", 485.3, 520.7, 40.0), ("x", 488.81, 516.12, 55.0), ("+", 483.2, 521.9, 45.0)])
def test_waffle_centre_within_0p2_px(orient, xc, yc, radius):
    rng = np.random.default_rng(int(xc * 10))
    img = waffle_field(xc, yc, radius=radius, orient=orient, noise=8.0, n_bad=400, rng=rng)
    bad = img > 4e4
    img = correct_bad_pixels(img, bad)
    res = centre_from_waffle(img, GUESS)  # orientation found by itself
    assert res.success, res.reason
    assert res.orientation == orient
    assert np.hypot(res.centre_xy[0] - xc, res.centre_xy[1] - yc) < 0.2
    assert res.residual_px < 0.2
    assert abs(res.radius_px - radius) < 1.0
    assert res.spots_xy.shape == (4, 2)


def test_waffle_fallback_to_first_guess():
    rng = np.random.default_rng(5)
    img = rng.normal(0, 1.0, (1024, 1024)).astype(np.float32)
    res = centre_from_waffle(img, GUESS, orientation="x")
    assert not res.success and res.reason
    assert res.centre_xy == GUESS


def test_waffle_rejects_bad_orientation():
    with pytest.raises(ValueError):
        centre_from_waffle(np.zeros((64, 64)), (32, 32), orientation="o")
