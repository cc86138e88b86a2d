"""Speckle subtraction: orientation convention, agreement with vip-hci, errors."""
import numpy as np
import pytest

from reduction.level2 import contrast, geometry, psfsub, synthetic
from reduction.level2.exceptions import InputShapeError, TooFewFramesError
from reduction.level2.psf import normalize_psf

ANGLES = np.linspace(-20.0, 40.0, 24)


@pytest.fixture(scope="module")
def psf():
    return normalize_psf(synthetic.airy_psf(21))


def test_default_ncomp_rule():
    assert psfsub.default_ncomp(61) == 6
    assert psfsub.default_ncomp(5) == 1
    assert psfsub.default_ncomp(1000) == 20


@pytest.mark.parametrize("pa_deg", [0.0, 90.0, 210.0])
def test_north_up_east_left(psf, pa_deg):
    """A source at PA lands at x = xc - r sin PA, y = yc + r cos PA."""
    psf_norm, _, _ = psf
    cube = contrast.inject_companions(np.zeros((24, 61, 61)), psf_norm, ANGLES,
                                      [15.0], [pa_deg], [100.0])
    image = psfsub.stack_adi(cube, ANGLES)
    y, x = np.unravel_index(np.argmax(image), image.shape)
    x_exp, y_exp = geometry.sep_pa_to_xy(15.0, pa_deg, image.shape)
    assert abs(x - x_exp) <= 0.6 and abs(y - y_exp) <= 0.6
    assert geometry.star_center(image.shape) == (30.0, 30.0)


def test_raw_frame_sees_source_at_pa_minus_theta(psf):
    """In frame i the source sits at detector angle PA - theta_i (SPHERE-DATA.md)."""
    psf_norm, _, _ = psf
    cube = contrast.inject_companions(np.zeros((24, 61, 61)), psf_norm, ANGLES,
                                      [15.0], [90.0], [100.0])
    y, x = np.unravel_index(np.argmax(cube[0]), cube[0].shape)
    _, pa = geometry.xy_to_sep_pa(x, y, cube.shape)
    assert abs(((pa - (90.0 - ANGLES[0])) + 180) % 360 - 180) < 4.0


def test_pca_adi_matches_vip():
    import vip_hci

    cube = synthetic.speckle_cube(24, 61, ANGLES, rng=1)
    ours = psfsub.pca_adi(cube, ANGLES, 4, interpolation="bicubic")
    theirs = vip_hci.psfsub.pca(cube=cube, angle_list=ANGLES, ncomp=4, imlib="skimage",
                                interpolation="bicubic", verbose=False)
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()


def test_median_removes_static_speckles():
    cube = synthetic.speckle_cube(24, 61, ANGLES, drift=0.0, rng=2)
    assert np.std(psfsub.median_adi(cube, ANGLES)) < 0.2 * np.std(cube[0])


def test_pca_asdi_runs_on_two_bands(psf):
    cube = np.stack([synthetic.speckle_cube(12, 41, ANGLES[:12], rng=3)] * 2)
    image = psfsub.pca_asdi(cube, ANGLES[:12], [1.593, 1.667], 3)
    assert image.shape == (41, 41) and np.isfinite(image).all()


def test_errors():
    with pytest.raises(InputShapeError):
        psfsub.pca_adi(np.zeros((5, 11, 11)), np.zeros(4), 1)
    with pytest.raises(TooFewFramesError):
        psfsub.pca_adi(np.ones((5, 11, 11)), np.zeros(5), 5)
