"""``spheredc postprocess`` (bring your own cube), run as a command."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "naco_betapic"
if not DATA.is_dir():
    DATA = pathlib.Path("/work/shared/data/naco_betapic")
PRODUCTS = {"final_image.fits", "snr_map.fits", "contrast_curve.fits", "contrast_curve.png",
            "candidates.json", "hci.fits", "final_image.png", "snr_map.png"}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "spheredc.postprocess_cmd", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def write_fits(path, data):
    from astropy.io import fits

    fits.PrimaryHDU(np.asarray(data, dtype=np.float32)).writeto(path)
    return path


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    """A 20-frame synthetic sequence with one bright companion."""
    from reduction.level2 import contrast, synthetic
    from reduction.level2.psf import normalize_psf

    d = tmp_path_factory.mktemp("byoc")
    angles = np.linspace(-30.0, 30.0, 20)
    psf = synthetic.airy_psf(21)
    psf_norm, star_flux, _ = normalize_psf(psf)
    cube = synthetic.speckle_cube(20, 41, angles, rng=3)
    cube = contrast.inject_companions(cube, psf_norm, angles, [12.0], [30.0],
                                      [3e-3 * star_flux])
    return {"cube": write_fits(d / "cube.fits", cube),
            "angles": write_fits(d / "angles.fits", angles[:, None]),
            "psf": write_fits(d / "psf.fits", psf), "dir": d, "arrays": (cube, angles, psf)}


def test_beta_pic_b(tmp_path):
    if not (DATA / "naco_betapic_cube.fits").exists():
        pytest.skip("naco_betapic data absent")
    out = tmp_path / "out"
    proc = run_cli("--cube", DATA / "naco_betapic_cube.fits",
                   "--angles", DATA / "naco_betapic_pa.fits",
                   "--psf", DATA / "naco_betapic_psf.fits", "--pixscale", 0.02719,
                   "--ncomp", 5, "--radius", 30, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["image_origin_in_cube_px"] == [20, 20]  # 61 px crop of the 101 px frames
    best = max(doc["candidates"], key=lambda c: c["snr"])
    x, y = best["x"] + 20, best["y"] + 20
    assert np.hypot(x - 63, y - 64) <= 1.0  # in the input frames, star on (50, 50)
    assert best["snr"] >= 8.0
    assert 0.45 < best["sep_arcsec"] < 0.55 and 300 < best["pa_deg"] < 335
    assert {"x", "y", "sep_arcsec", "pa_deg", "snr", "contrast_mag"} <= set(best)
    assert PRODUCTS <= {p.name for p in out.iterdir()}
    assert json.loads((out / "candidates.json").read_text())["candidates"] == doc["candidates"]


def test_small_cube_products(small_inputs, tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    out = tmp_path / "out"
    i = small_inputs
    proc = run_cli("--cube", i["cube"], "--angles", i["angles"], "--psf", i["psf"],
                   "--pixscale", 0.01225, "--ncomp", 3, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "candidate(s) above S/N 5" in proc.stdout  # readable summary without --json
    assert PRODUCTS <= {p.name for p in out.iterdir()}
    with fits.open(out / "final_image.fits") as hdul:
        assert hdul[0].data.shape == (41, 41)
        assert hdul[0].header["CRPIX1"] == 21.0 and hdul[0].header["CDELT1"] < 0
    with fits.open(out / "hci.fits") as hdul:
        assert [h.name for h in hdul][1:] == ["DATA_INFORMATION", "REDUCED_DATA", "SNR_MAP",
                                              "SENSITIVITY_MAP", "DETECTION_LIMIT",
                                              "SOURCE_DETECTION"]
    curve = Table.read(out / "contrast_curve.fits")
    assert {"sep_arcsec", "contrast_5sigma", "contrast_mag_5sigma"} <= set(curve.colnames)
    assert (out / "contrast_curve.png").read_bytes()[:4] == b"\x89PNG"
    cands = json.loads((out / "candidates.json").read_text())["candidates"]
    assert len(cands) == 1  # the companion at 12 px, PA 30
    assert abs(cands[0]["sep_arcsec"] / 0.01225 - 12.0) < 1.0  # 3 FWHM in a 41 px frame
    assert abs(cands[0]["pa_deg"] - 30.0) < 3.0


def _bad(i, kind):
    d = i["dir"]
    cube, angles, psf = i["arrays"]
    args = {"cube": i["cube"], "angles": i["angles"], "psf": i["psf"]}
    if kind == "missing":
        args["cube"] = d / "nope.fits"
    elif kind == "not_fits":
        args["psf"] = d / "psf.txt"
        args["psf"].write_text("not a FITS file\n")
    elif kind == "angles_count":
        args["angles"] = write_fits(d / "angles19.fits", angles[:19])
    elif kind == "nan":
        bad = cube.copy()
        bad[3, 10, 10] = np.nan
        args["cube"] = write_fits(d / "nan.fits", bad)
    elif kind == "shape":
        args["cube"] = write_fits(d / "flat.fits", cube[0])
    elif kind == "no_wavelengths":
        args["cube"] = write_fits(d / "cube4d.fits", np.stack([cube, cube]))
    return args


@pytest.mark.parametrize("kind, message", [
    ("missing", "not found"), ("not_fits", "FITS"), ("angles_count", "19 angles for 20"),
    ("nan", "NaN"), ("shape", "(time, y, x)"), ("no_wavelengths", "--wavelengths")])
def test_bad_input(small_inputs, tmp_path, kind, message):
    args = _bad(small_inputs, kind)
    proc = run_cli("--cube", args["cube"], "--angles", args["angles"], "--psf", args["psf"],
                   "--pixscale", 0.01225, "--out", tmp_path / "out", "--json")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and message in proc.stderr
    assert proc.stdout == ""


def test_dual_band(tmp_path):
    """A 4-d IRDIS-DBI-like cube, wavelengths in nm, PCA-ADI band by band."""
    from reduction.level2 import contrast, synthetic
    from reduction.level2.psf import normalize_psf

    angles = np.linspace(-30.0, 30.0, 16)
    psf = np.stack([synthetic.airy_psf(21, 3.0), synthetic.airy_psf(21, 3.15)])
    psf_norm, star_flux, _ = normalize_psf(psf)
    base = synthetic.speckle_cube(16, 41, angles, rng=5)
    cube = contrast.inject_companions(np.stack([base, 0.9 * base]), psf_norm, angles,
                                      [12.0], [200.0], (2e-3 * star_flux)[None])
    proc = run_cli("--cube", write_fits(tmp_path / "c.fits", cube),
                   "--angles", write_fits(tmp_path / "a.fits", angles),
                   "--psf", write_fits(tmp_path / "p.fits", psf),
                   "--wavelengths", write_fits(tmp_path / "w.fits", [1593.0, 1667.0]),
                   "--pixscale", 0.01225, "--ncomp", 2, "--algorithm", "pca",
                   "--out", tmp_path / "out", "--json")
    assert proc.returncode == 0, proc.stderr
    (cand,) = json.loads(proc.stdout)["candidates"]
    assert abs(cand["sep_arcsec"] / 0.01225 - 12.0) < 0.5
    assert abs(cand["pa_deg"] - 200.0) < 2.0
    assert abs(cand["contrast_mag"] - 6.75) < 0.3  # 2e-3
