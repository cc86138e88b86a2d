"""39-channel (IFS-like) data: candidate spectrum, annular PCA and PCA-ASDI."""
import functools

import numpy as np
import pytest

from reduction.level2 import contrast, geometry, psfsub, snr, spectrum, synthetic
from reduction.level2.exceptions import InputShapeError, TooFewFramesError
from reduction.level2.psf import normalize_psf

N_CHAN, N_FRAMES, SIZE = 39, 16, 41
WAVELENGTHS_UM = np.linspace(0.96, 1.64, N_CHAN)  # IFS YJH
ANGLES = np.linspace(-40.0, 40.0, N_FRAMES)
SEP_PX, PA_DEG = 13.0, 120.0
#: a companion with a spectrum: flat, an absorption band, rising to the red
TRUE_CONTRAST = 4e-3 * (1.0 + 0.5 * (WAVELENGTHS_UM - 0.96)
                        - 0.4 * np.exp(-0.5 * ((WAVELENGTHS_UM - 1.15) / 0.05) ** 2))


@pytest.fixture(scope="module")
def ifs():
    """Speckles that scale with wavelength, one companion of known spectrum."""
    rng = np.random.default_rng(21)
    lod = 2.5 * WAVELENGTHS_UM / WAVELENGTHS_UM[0]  # lambda/D in pixels
    psf = np.stack([synthetic.airy_psf(21, lambda_over_d_px=v) for v in lod])
    psf_norm, star_flux, fwhm = normalize_psf(psf)
    base = synthetic.speckle_cube(N_FRAMES, SIZE, ANGLES, drift=0.2, rng=rng)
    cube = np.stack([base * (1.0 - 0.2 * k / N_CHAN) for k in range(N_CHAN)])
    cube += rng.normal(scale=2e-6, size=cube.shape).astype(np.float32)
    cube = contrast.inject_companions(cube, psf_norm, ANGLES, [SEP_PX], [PA_DEG],
                                      (TRUE_CONTRAST * star_flux)[None])
    return cube, psf_norm, star_flux, fwhm


def test_candidate_spectrum_recovers_known_spectrum(ifs):
    cube, psf_norm, star_flux, fwhm = ifs
    x, y = geometry.sep_pa_to_xy(SEP_PX, PA_DEG, cube.shape)
    alg = functools.partial(psfsub.pca_adi, ncomp=2)
    c, err, thr = spectrum.candidate_spectrum(cube, ANGLES, psf_norm, star_flux, fwhm,
                                              x, y, alg, n_branches=2)
    assert c.shape == err.shape == thr.shape == (N_CHAN,)
    assert np.all(err > 0) and np.all((thr > 0.1) & (thr < 1.2))
    pull = (c - TRUE_CONTRAST) / err
    assert np.mean(np.abs(pull) < 3) >= 0.9  # within the errors
    assert abs(np.median(c / TRUE_CONTRAST) - 1) < 0.1
    # the absorption band at 1.15 um is seen
    band = np.abs(WAVELENGTHS_UM - 1.15) < 0.03
    assert c[band].mean() < 0.8 * c[~band & (WAVELENGTHS_UM < 1.35)].mean()


def test_candidate_spectrum_needs_4d(ifs):
    cube, psf_norm, star_flux, fwhm = ifs
    with pytest.raises(InputShapeError):
        spectrum.candidate_spectrum(cube[0], ANGLES, psf_norm, star_flux, fwhm, 10, 10,
                                    functools.partial(psfsub.pca_adi, ncomp=2))


def _snr_at_companion(image, fwhm_px):
    x, y = geometry.sep_pa_to_xy(SEP_PX, PA_DEG, image.shape)
    m = snr.snr_map(image, fwhm_px)
    return m[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].max()


def test_pca_asdi_on_39_channels(ifs):
    cube, _, _, fwhm = ifs
    # every other frame: the spectral rescaling (FFT) of 39 x 16 frames is the cost
    image = psfsub.pca_asdi(cube[:, ::2], ANGLES[::2], WAVELENGTHS_UM, 5)
    assert image.shape == (SIZE, SIZE) and np.isfinite(image).all()
    assert _snr_at_companion(image, float(np.mean(fwhm))) > 5
    with pytest.raises(InputShapeError):
        psfsub.pca_asdi(cube, ANGLES, WAVELENGTHS_UM[:-1], 5)


def test_pca_adi_annular_detects_companion(ifs):
    cube, _, _, fwhm = ifs
    k = N_CHAN // 2
    image = psfsub.pca_adi_annular(cube[k], ANGLES, 2, float(fwhm[k]),
                                   radius_int_px=round(2 * fwhm[k]))
    assert image.shape == (SIZE, SIZE) and np.isfinite(image).all()
    assert _snr_at_companion(image, float(fwhm[k])) > 5
    # next to the star, 16 frames leave no reference 1 FWHM of rotation away
    with pytest.raises(TooFewFramesError):
        psfsub.pca_adi_annular(cube[k], ANGLES, 2, float(fwhm[k]))
