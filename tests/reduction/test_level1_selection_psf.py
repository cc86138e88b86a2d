"""Frame selection and the off-axis PSF measurement."""
import numpy as np
import pytest

from tests.reduction.level1_synth import ANAM_Y, add_gaussian, halo
from reduction.level1.psf import measure_psf
from reduction.level1.selection import robust_zscore, select_frames


def test_select_frames_flags_outliers_with_reason():
    rng = np.random.default_rng(7)
    base = halo((81, 81), 40.0, 40.0, 100.0)
    cube = np.stack([base * rng.uniform(0.98, 1.02) + rng.normal(0, 0.5, base.shape)
                     for _ in range(30)]).astype(np.float32)
    cube[4] *= 3.0  # AO glitch: much more residual flux
    cube[11] = np.roll(cube[11], 15, axis=1)  # pattern unlike the others
    cube[20, 0, 0] = np.nan  # NaN is tolerated
    sel = select_frames(cube)
    assert sel.selected.sum() == 28
    assert not sel.selected[4] and "flux" in sel.reason[4]
    assert not sel.selected[11] and "correlation" in sel.reason[11]
    assert sel.reason[0] == ""
    with pytest.raises(ValueError):
        select_frames(cube[0])


def test_robust_zscore():
    z = robust_zscore([1.0, 1.0, 1.0, 1.0])
    assert np.all(z == 0.0)
    z = robust_zscore([0.0, 1.0, -1.0, 0.5, -0.5, 100.0])
    assert z[-1] > 50 and abs(z[0]) < 0.5


def test_measure_psf_flux_fwhm_and_stamp():
    rng = np.random.default_rng(8)
    star_adu_s, dit, nd = 3.0e6, 2.0, 0.01
    x, y = 470.4, 531.7
    frames = np.zeros((2, 1024, 1024), np.float32)
    for f in frames:
        add_gaussian(f, x, y, star_adu_s * dit * nd, sigma=1.7, half=20)
    frames += 5.0 + rng.normal(0, 2.0, frames.shape).astype(np.float32)  # residual background
    psf = measure_psf(frames, dit, "ND_2.0", guess_xy=(485, 520), search_px=40,
                      scale_xy=(1.0, ANAM_Y))
    assert psf.flux_adu_s == pytest.approx(star_adu_s, rel=0.02)
    assert psf.centre_xy == pytest.approx((x, y), abs=0.05)
    assert psf.fwhm_px == pytest.approx(1.7 * 2.3548, rel=0.05)
    assert psf.background_adu_s == pytest.approx(5.0 / (dit * nd), rel=0.1)
    c = psf.image.shape[0] // 2
    assert psf.image.shape == (65, 65) and psf.image.dtype == np.float32
    assert np.unravel_index(np.nanargmax(psf.image), psf.image.shape) == (c, c)
    assert np.nansum(psf.image) == pytest.approx(star_adu_s, rel=0.03)


def _obstructed_airy_image(wavelength_um, pixscale_arcsec, size=129, oversample=8,
                           obstruction=0.14, diameter_m=8.0):
    """A perfect PSF from the analytic obstructed Airy pattern, binned to pixels,
    normalised to the analytic total flux (1)."""
    from scipy.special import j1

    lod_arcsec = np.degrees(wavelength_um * 1e-6 / diameter_m) * 3600.0
    n = size * oversample
    c = (np.arange(n) - (n - 1) / 2) / oversample * pixscale_arcsec / lod_arcsec
    r = np.hypot(*np.meshgrid(c, c)) * np.pi
    r[r == 0] = 1e-12
    eps = obstruction
    field = (2 * j1(r) / r - eps ** 2 * 2 * j1(eps * r) / (eps * r)) / (1 - eps ** 2)
    # peak intensity per (lambda/D)^2 for unit flux: pi/4 (1 - eps^2)
    intensity = field ** 2 * np.pi / 4 * (1 - eps ** 2)
    pix_lod2 = (pixscale_arcsec / lod_arcsec) ** 2
    binned = intensity.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return binned * pix_lod2


@pytest.mark.parametrize("strehl", [1.0, 0.85, 0.5])
def test_strehl_estimate_recovers_the_strehl_of_a_psf(strehl):
    from reduction.level1.psf import strehl_estimate

    wavelength_um, pixscale = 1.593, 0.01225
    perfect = _obstructed_airy_image(wavelength_um, pixscale)
    yy, xx = np.indices(perfect.shape) - perfect.shape[0] // 2
    halo = np.exp(-(xx ** 2 + yy ** 2) / (2 * 15.0 ** 2))
    halo /= halo.sum()
    psf = strehl * perfect + (1 - strehl) * halo
    est = strehl_estimate(psf * 1e5, 1e5, wavelength_um, pixscale)
    assert est == pytest.approx(strehl, abs=0.03)
    assert np.isnan(strehl_estimate(psf, 0.0, wavelength_um, pixscale))
