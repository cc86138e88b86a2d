"""HCI-FITS writer: extensions, orientation keywords, tables."""
import numpy as np
import pytest

from reduction.level2 import Level2Params, run_postprocess, synthetic
from reduction.level2.hcifits import write_hci_fits


@pytest.fixture(scope="module")
def result():
    angles = np.linspace(-30, 30, 20)
    cube = synthetic.speckle_cube(20, 41, angles, rng=11)
    return run_postprocess(cube, angles, synthetic.airy_psf(21), 0.01225,
                           params=Level2Params(ncomp=3, n_branches=1))


def test_write_hci_fits(tmp_path, result):
    from astropy.io import fits

    path = tmp_path / "hci.fits"
    write_hci_fits(path, result, target_name="HD 1", ra_deg=10.0, dec_deg=-20.0,
                   filter_name="B_H", epoch_mjd=59000.5)
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        assert names == ["PRIMARY", "DATA_INFORMATION", "REDUCED_DATA", "SNR_MAP",
                         "SENSITIVITY_MAP", "DETECTION_LIMIT", "SOURCE_DETECTION"]
        img = hdul["REDUCED_DATA"]
        assert img.data.shape == (41, 41)
        assert img.header["CRPIX1"] == 21.0 and img.header["STARX"] == 20.0
        assert img.header["CDELT1"] < 0 < img.header["CDELT2"]  # east left
        assert hdul["DETECTION_LIMIT"].columns["SEPARATION"].unit == "arcsec"
        assert len(hdul["DETECTION_LIMIT"].data) == len(result.contrast)
        assert len(hdul["SOURCE_DETECTION"].data) == len(result.candidates)
        assert hdul[0].header["OBJECT"] == "HD 1"
        sens = hdul["SENSITIVITY_MAP"].data
        assert np.isnan(sens[20, 20]) and np.isfinite(sens[20, 30])
    with pytest.raises(OSError):
        write_hci_fits(path, result)
