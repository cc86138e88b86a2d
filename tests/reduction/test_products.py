"""Product writing, headers, recipes and the missing-calibration policy (no database)."""
import dataclasses

import numpy as np
import pytest
from astropy.io import fits

from reduction.fitsmeta import flatten_params, product_header
from reduction.policy import plan_calibrations
from reduction.previews import write_preview
from reduction.products import atomic_path, sha256_file, write_fits
from reduction.recipes import MASTER_CUBE, RECIPES, inputs_digest, params_json


def _hdul(date_mjd=60778.5):
    raw = fits.Header()
    raw["OBJECT"] = "SIMSTAR-1"
    raw["HIERARCH ESO DET SEQ1 DIT"] = 32.0
    raw["BZERO"] = 32768
    hdr = product_header(raw, MASTER_CUBE, raw_inputs=[("SPHER.A.fits", "OBJECT"),
                                                       ("SPHER.B.fits", "OBJECT,CENTER")],
                         calib_inputs=[("master_flat.x.fits", "master_flat")],
                         date_mjd=date_mjd)
    data = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5)
    table = fits.BinTableHDU.from_columns([fits.Column("derot_deg", "D", array=[1.0, 2.0])])
    return fits.HDUList([fits.PrimaryHDU(data, header=hdr), table])


def test_fits_products_are_byte_reproducible_and_checksummed(tmp_path):
    a, size_a = write_fits(_hdul(), tmp_path / "a.fits")
    b, size_b = write_fits(_hdul(), tmp_path / "b.fits")
    assert (a, size_a) == (b, size_b) == (sha256_file(tmp_path / "a.fits"), size_a)
    with fits.open(tmp_path / "a.fits", checksum=True) as hdul:
        assert all(h.verify_checksum() == 1 and h.verify_datasum() == 1 for h in hdul)
    c, _ = write_fits(_hdul(date_mjd=60779.0), tmp_path / "c.fits")
    assert c != a  # DATE comes from the inputs, so different inputs differ
    assert not list(tmp_path.glob(".*.part"))


def test_product_header_keeps_raw_keywords_and_adds_provenance():
    hdr = _hdul()[0].header
    assert hdr["OBJECT"] == "SIMSTAR-1" and hdr["ESO DET SEQ1 DIT"] == 32.0
    assert "BZERO" not in hdr  # describes the raw array, not the product
    assert hdr["ESO PRO REC1 ID"] == MASTER_CUBE.name
    assert hdr["ESO PRO REC1 VERS"] == MASTER_CUBE.version
    assert hdr["ESO PRO REC1 PIPE ID"].startswith("spheredc/")
    assert hdr["ESO PRO REC1 RAW2 NAME"] == "SPHER.B.fits"
    assert hdr["ESO PRO REC1 RAW2 CATG"] == "OBJECT,CENTER"
    assert hdr["ESO PRO REC1 CAL1 CATG"] == "master_flat"
    assert hdr["DATE"].startswith("2025-04-13T12:00:00")
    names = {hdr[k] for k in hdr if k.startswith("ESO PRO REC1 PARAM") and k.endswith("NAME")}
    assert set(flatten_params(MASTER_CUBE.params)) == names
    assert "psf.aperture_radius_px" in names


def test_png_previews_are_reproducible(tmp_path):
    img = np.random.default_rng(3).normal(size=(41, 41)).astype(np.float32)
    write_preview([img, img.T], tmp_path / "a.png", titles=["a", "b"])
    write_preview([img, img.T], tmp_path / "b.png", titles=["a", "b"])
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sha256_file(tmp_path / "a.png") == sha256_file(tmp_path / "b.png")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.fits") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_inputs_digest_tracks_inputs_parameters_and_versions():
    base = inputs_digest(MASTER_CUBE, ["b", "a"])
    assert base == inputs_digest(MASTER_CUBE, ["a", "b", "a"])  # order and repeats ignored
    assert base != inputs_digest(MASTER_CUBE, ["a", "c"])
    other = MASTER_CUBE.with_params(dataclasses.replace(MASTER_CUBE.params, crop_px=401))
    assert base != inputs_digest(other, ["a", "b"])
    assert base != inputs_digest(dataclasses.replace(MASTER_CUBE, version="9.9"), ["a", "b"])
    assert '"crop_px":801' in params_json(MASTER_CUBE.params)
    assert MASTER_CUBE.params.crop_px % 2 == 1
    assert set(RECIPES) == {"spheredc_ird_master_background", "spheredc_ird_master_flat",
                            "spheredc_ird_bad_pixel_map", "spheredc_ird_master_cube",
                            "spheredc_ird_level2", "spheredc_ifs_master_cube",
                            "spheredc_ifs_level2"}


# --- missing-calibration policy -------------------------------------------------------

SEQ = {"sequence_id": "S", "arm": "IRDIS", "level": "raw", "filter": "DB_H23"}
FILES = [{"dpr_type": "OBJECT", "dit": 32.0}, {"dpr_type": "OBJECT,CENTER", "dit": 32.0},
         {"dpr_type": "OBJECT,FLUX", "dit": 0.84}, {"dpr_type": "SKY", "dit": 32.0}]


def _assoc(role, key, dpr_type, checksum, dit=None, is_far=False):
    return {"role": role, "calib_key": key, "dpr_type": dpr_type, "checksum": checksum,
            "dit": float(key) if dit is None else dit, "is_far": is_far}


FLATS = [_assoc("flat", "DB_H23", "FLAT,LAMP", f"f{i}", dit=d) for i, d in enumerate((1, 3, 6))]


def test_policy_complete_sequence_prefers_sky():
    assoc = [_assoc("background", "32.00", "SKY", "s"),
             _assoc("background", "32.00", "DARK", "d"),
             _assoc("background", "0.84", "DARK,BACKGROUND", "db")] + FLATS
    plan = plan_calibrations(SEQ, FILES, assoc)
    assert plan.refused is None and plan.flags == []
    assert [r["checksum"] for r in plan.backgrounds["32.00"]] == ["s"]
    assert plan.object_dit_key == "32.00" and len(plan.flats) == 3


def test_policy_reduces_with_flags_when_acceptable():
    assoc = [_assoc("background", "32.00", "DARK,BACKGROUND", "db", is_far=True)]
    plan = plan_calibrations(SEQ, FILES, assoc)
    assert plan.refused is None and plan.flats == []
    assert plan.flags == ["background_fallback:32.00:DARK,BACKGROUND",
                          "background_missing:0.84:OBJECT,FLUX", "far:background:32.00",
                          "no_flat:DB_H23"]


@pytest.mark.parametrize("seq, files, assoc, reason", [
    (SEQ, FILES, [_assoc("background", "0.84", "DARK", "d")], "OBJECT DIT 32.00"),
    (SEQ, FILES[1:], [], "no OBJECT file"),
    (dict(SEQ, arm="IFS", level="reduced"), FILES, [], "IRDIS"),
])
def test_policy_refuses_with_a_reason(seq, files, assoc, reason):
    plan = plan_calibrations(seq, files, assoc)
    assert plan.refused and reason in plan.refused


def test_no_adi_stack_is_the_nan_aware_median():
    import warnings

    from reduction.previews import no_adi_stack

    rng = np.random.default_rng(5)
    cube = rng.normal(size=(2, 7, 30, 30)).astype(np.float32)
    cube[:, :, :4, :] = np.nan       # no data at all there
    cube[1, 2, 10:15, 10:15] = np.nan  # one frame missing a patch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of the reference
        want = np.nanmedian(cube, axis=1)
    np.testing.assert_array_equal(no_adi_stack(cube), want)
