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


@pytest.mark.parametrize("dx, dy", [(0.31, -0.42), (-0.18, 0.07)])
def test_symmetry_centre_of_a_coronagraphic_halo(dx, dy):
    """Without waffle spots: the speckle halo's point symmetry gives the star to 0.05 px."""
    from scipy import ndimage

    from reduction.level1.centring import centre_from_symmetry
    from reduction.level2.synthetic import speckle_cube

    halo = speckle_cube(1, 101, [0.0], speckle_level=3e-3, noise_level=0.0, rng=11)[0]
    img = ndimage.shift(halo.astype(float), (dy, dx), order=3)
    img += np.random.default_rng(3).normal(0, 2e-3 * img.max(), img.shape)
    (x, y), ok = centre_from_symmetry(img, (50.0, 50.0))
    assert ok
    assert np.hypot(x - 50 - dx, y - 50 - dy) < 0.05


def test_symmetry_centre_refuses_an_annulus_off_the_image():
    from reduction.level1.centring import centre_from_symmetry

    with pytest.raises(ValueError):
        centre_from_symmetry(np.zeros((40, 40)), (20.0, 20.0), r_out_px=30.0)
