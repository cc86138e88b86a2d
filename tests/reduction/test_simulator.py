"""Tests of the SPHERE night simulator (reduction/simulator), on one small night."""
import dataclasses
import datetime
import hashlib
import json
import os
import re

import numpy as np
import pytest
from astropy.io import fits

from reduction.paranal import parallactic_angle_deg
from reduction.simulator import simulate_night
from reduction.simulator.exceptions import NightFormatError, OutputDirError
from reduction.simulator.headers import build_header
from reduction.simulator.night import _rng
from reduction.simulator.plan import parse_night, plan_night
from reduction.simulator.sky import draw_skies

SEED = 7
NAME_RE = re.compile(r"^SPHER\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
                     r"(\.fits(\.gz|\.fz)?|\.sph_ifs_science_dr\.fits(\.fz)?)$")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("night")
    truth = simulate_night(outdir, SEED, small=True)
    return outdir, truth


def _header(path):
    with fits.open(path) as hdul:
        return hdul[1].header if str(path).endswith(".fz") else hdul[0].header


def _data(path):
    with fits.open(path) as hdul:
        return hdul[1 if str(path).endswith(".fz") else 0].data.astype(np.float64)


def _files(truth, **where):
    return [n for n, f in truth["files"].items() if all(f[k] == v for k, v in where.items())]


def _night_label(mjd):
    return (datetime.datetime(1858, 11, 17) + datetime.timedelta(days=mjd - 0.5)).date().isoformat()


def test_files_are_named_by_arcfile(night):
    outdir, truth = night
    on_disk = set(os.listdir(outdir))
    assert on_disk == set(truth["files"]) | {"truth.json"}
    assert any(n.endswith(".fits.gz") for n in on_disk) and any(n.endswith(".fits.fz") for n in on_disk)
    for name, entry in truth["files"].items():
        assert NAME_RE.match(name), name
        h = _header(outdir / name)
        assert h["ARCFILE"] == entry["arcfile"]
        assert entry["arcfile"] == f"SPHER.{h['DATE-OBS'][:23]}.fits"
        assert name.startswith(entry["arcfile"][:-5])
        assert h["INSTRUME"] == "SPHERE" and h["TELESCOP"] == "ESO-VLT-U3"


def test_truth_json_on_disk(night):
    outdir, truth = night
    text = (outdir / "truth.json").read_text(encoding="utf-8")
    assert json.loads(text) == truth
    assert text.startswith('{\n "generator": "spheredc simulate"')
    assert truth["seed"] == SEED and truth["small"] is True and truth["night"] == "2025-04-12"


def test_classification_matches_headers(night):
    outdir, truth = night
    for name, entry in truth["files"].items():
        h = _header(outdir / name)
        reduced = "HIERARCH ESO PRO REC1 ID" in h
        arm = h["HIERARCH ESO SEQ ARM"]
        if arm == "IFS":
            mode = h["HIERARCH ESO INS2 COMB IFS"]
            filt = {"OBS_YJ": "YJ", "OBS_H": "YJH"}.get(mode, mode)
        else:
            mode, filt = h["HIERARCH ESO INS1 MODE"], h["HIERARCH ESO INS COMB IFLT"]
        expected = {
            "dpr_catg": h["HIERARCH ESO DPR CATG"], "dpr_type": h["HIERARCH ESO DPR TYPE"],
            "dpr_tech": h["HIERARCH ESO DPR TECH"], "arm": arm, "ins_mode": mode, "filter": filt,
            "coronagraph": h["HIERARCH ESO INS COMB ICOR"], "nd_filter": h["HIERARCH ESO INS4 FILT2 NAME"],
            "derot_mode": h["HIERARCH ESO INS4 DROT2 MODE"], "dit": h["HIERARCH ESO DET SEQ1 DIT"],
            "ndit": h["HIERARCH ESO DET NDIT"], "night": _night_label(h["MJD-OBS"]),
            "level": "reduced" if reduced else "raw", "arcfile": h["ARCFILE"],
        }
        assert {k: entry[k] for k in expected} == expected, name
        assert entry["night"] == "2025-04-12"


def test_raw_irdis_is_uint16_with_bzero(night):
    outdir, truth = night
    for name in _files(truth, arm="IRDIS"):
        if name.endswith(".gz") or name.endswith(".fz"):
            continue
        with fits.open(outdir / name, do_not_scale_image_data=True) as hdul:
            h = hdul[0].header
            assert h["BITPIX"] == 16 and h["BZERO"] == 32768
        with fits.open(outdir / name) as hdul:
            data = hdul[0].data
        ndit = truth["files"][name]["ndit"]
        assert data.dtype == np.uint16
        assert data.shape == ((1024, 2048) if ndit == 1 else (ndit, 1024, 2048))
    gz = _files(truth, arm="IRDIS")
    gz = [n for n in gz if n.endswith(".gz")][0]
    with fits.open(outdir / gz) as hdul:
        assert hdul[0].data.dtype == np.uint16 and hdul[0].data.shape == (2, 1024, 2048)


def test_ifs_cubes_are_reduced_products(night):
    outdir, truth = night
    ifs = _files(truth, arm="IFS")
    assert len(ifs) == 5 and all(truth["files"][n]["level"] == "reduced" for n in ifs)
    lam = truth["sequences"]["ifs_main"]["wavelengths_um"]
    for name in ifs:
        h = _header(outdir / name)
        data = _data(outdir / name)
        assert data.shape == (39, 291, 291)
        assert h["HIERARCH ESO PRO REC1 ID"] == "sph_ifs_science_dr"
        assert h["HIERARCH ESO PRO CATG"] == "IFS_SCIENCE_DR"
        assert h["CTYPE3"] == "WAVE" and h["CUNIT3"] == "um"
        wave = h["CRVAL3"] + (np.arange(39) + 1 - h["CRPIX3"]) * h["CDELT3"]
        np.testing.assert_allclose(wave, lam, atol=1e-6)
        assert name.startswith(f"SPHER.{h['DATE-OBS'][:23]}.sph_ifs_science_dr.fits")


def test_science_keywords_present(night):
    outdir, truth = night
    keys = ["RA", "DEC", "OBJECT", "DATE-OBS", "MJD-OBS", "EXPTIME", "HIERARCH ESO DET FRAM UTC",
            "HIERARCH ESO TEL PARANG START", "HIERARCH ESO TEL PARANG END", "HIERARCH ESO TEL ALT",
            "HIERARCH ESO TEL AIRM START", "HIERARCH ESO TEL AIRM END", "HIERARCH ESO TEL AMBI FWHM START",
            "HIERARCH ESO TEL AMBI FWHM END", "HIERARCH ESO TEL AMBI TAU0", "HIERARCH ESO AOS HO LOOP STATE",
            "HIERARCH ESO AOS TT LOOP STATE", "HIERARCH ESO TEL GEOLAT", "HIERARCH ESO TEL GEOLON",
            "HIERARCH ESO TEL GEOELEV", "HIERARCH ESO OBS PROG ID", "HIERARCH ESO OBS ID",
            "HIERARCH ESO OBS NAME", "HIERARCH ESO OBS PI-COI NAME", "HIERARCH ESO TPL ID",
            "HIERARCH ESO TPL START", "HIERARCH ESO TPL EXPNO", "HIERARCH ESO TPL NEXP",
            "HIERARCH ESO INS4 DROT2 START"]
    main = truth["sequences"]["irdis_dbi_main"]["files"]
    obs_ids, tpl = set(), set()
    for name in main:
        h = _header(outdir / name)
        missing = [k for k in keys if k not in h]
        assert not missing, (name, missing)
        assert "HIERARCH ESO INS4 DROT2 BEGIN" not in h  # night after 2021-06-01
        assert h["EXPTIME"] == pytest.approx(h["HIERARCH ESO DET SEQ1 DIT"] * h["HIERARCH ESO DET NDIT"])
        obs_ids.add(h["HIERARCH ESO OBS ID"])
        tpl.add((h["HIERARCH ESO TPL ID"], h["HIERARCH ESO TPL START"]))
        if h["HIERARCH ESO DPR TYPE"] == "OBJECT,CENTER":
            assert h["HIERARCH ESO OCS WAFFLE ORIENT"] == "x"
    assert len(obs_ids) == 1 and len(tpl) == 1


def test_drot2_begin_before_june_2021(night):
    plan = plan_night(parse_night("2019-05-01"), True, _rng(SEED, "plan"))
    exp = [e for e in plan.exposures if e.kind == "object"][0]
    from reduction.simulator.headers import Pointing

    p = Pointing(10.0, 11.0, 70.0, 1.06, 1.06, 0.7, 0.7, 0.005)
    h = build_header(exp, p)
    assert "HIERARCH ESO INS4 DROT2 BEGIN" in h and "HIERARCH ESO INS4 DROT2 START" not in h
    h = build_header(dataclasses.replace(exp, start=datetime.datetime(2021, 6, 2, 3)), p)
    assert "HIERARCH ESO INS4 DROT2 START" in h


def test_sequences_and_missing_calibrations(night):
    _, truth = night
    seqs = truth["sequences"]
    assert set(seqs) == {"irdis_dbi_main", "irdis_ci_missing", "ifs_main"}
    main, ci, ifs = seqs["irdis_dbi_main"], seqs["irdis_ci_missing"], seqs["ifs_main"]
    assert (main["n_object"], main["n_center"], main["n_flux"], main["n_sky"]) == (4, 2, 2, 1)
    assert (ifs["n_object"], ifs["n_center"], ifs["n_flux"], ifs["n_sky"]) == (3, 1, 1, 0)
    assert main["missing_calibrations"] == [] and ifs["missing_calibrations"] == []
    assert ci["missing_calibrations"] == ["background:2.00", "flat:BB_Ks"]
    assert any(w.startswith("background:8.00") for w in ci["warnings"])
    assert (ci["filter"], ci["ins_mode"]) == ("BB_Ks", "CI") and (ifs["filter"], ifs["ins_mode"]) == ("YJ", "OBS_YJ")
    for label, seq in seqs.items():
        assert all(truth["files"][n]["sequence"] == label for n in seq["files"])
        assert all(truth["files"][n]["dpr_catg"] == "SCIENCE" for n in seq["files"])
    assert len(_files(truth, dpr_catg="ACQUISITION", sequence=None)) == 1
    flats = _files(truth, dpr_type="FLAT,LAMP", filter="DB_H23")
    assert len({truth["files"][n]["dit"] for n in flats}) >= 3
    assert len(main["companions"]) == 2 and len(ifs["companions"]) == 1
    for c in main["companions"]:
        assert 0.3 <= c["sep_arcsec"] <= 1.5 and all(1e-5 * 0.9 < v < 2e-4 for v in c["contrast"])
    assert np.ptp(ifs["companions"][0]["contrast"]) > 0.1 * np.mean(ifs["companions"][0]["contrast"])


def test_frames_parallactic_angles(night):
    outdir, truth = night
    main = truth["sequences"]["irdis_dbi_main"]
    objects = [f for f in main["frames"] if f["dpr_type"] == "OBJECT"]
    assert len(objects) == 4 * 2
    mjd = np.array([f["mjd_mid"] for f in objects])
    parang = np.array([f["parang_deg"] for f in objects])
    np.testing.assert_allclose(parang, parallactic_angle_deg(mjd, main["ra"], main["dec"]), atol=1e-3)
    np.testing.assert_allclose([f["derot_deg"] for f in objects], parang + 135.99 - 1.75, atol=1e-5)
    assert np.ptp(parang) > 20.0  # enough field rotation for ADI, even in the small night
    ifs = [f for f in truth["sequences"]["ifs_main"]["frames"] if f["dpr_type"] == "OBJECT"]
    np.testing.assert_allclose([f["derot_deg"] for f in ifs],
                               np.array([f["parang_deg"] for f in ifs]) + 135.99 - 1.75 - 100.48, atol=1e-5)
    # header START/END bracket the frames and agree with a recomputation
    for name in {f["file"] for f in objects}:
        h = _header(outdir / name)
        start = parallactic_angle_deg(h["MJD-OBS"], main["ra"], main["dec"])
        assert h["HIERARCH ESO TEL PARANG START"] == pytest.approx(start, abs=1e-3)
        frames = [f for f in objects if f["file"] == name]
        lo, hi = sorted([h["HIERARCH ESO TEL PARANG START"], h["HIERARCH ESO TEL PARANG END"]])
        assert all(lo <= f["parang_deg"] <= hi for f in frames)


def _predicted_xy(seq, comp, derot_deg, field="left", pixscale=0.01225, anam=(1.0, 1.0062)):
    xc, yc = seq["star_center_px"][field]
    r = comp["sep_arcsec"] / pixscale
    alpha = np.radians(comp["pa_deg"] - derot_deg)
    return xc - r * np.sin(alpha) / anam[0], yc + r * np.cos(alpha) / anam[1]


def _centroid(img, x, y, half=3):
    """Peak-weighted centroid near (x, y) of a background-free image."""
    xi, yi = int(round(x)), int(round(y))
    box = img[yi - 5:yi + 6, xi - 5:xi + 6]
    py, px = np.unravel_index(np.argmax(box), box.shape)
    px, py = px + xi - 5, py + yi - 5
    sub = np.clip(img[py - half:py + half + 1, px - half:px + half + 1], 0, None)
    yy, xx = np.mgrid[py - half:py + half + 1, px - half:px + half + 1]
    return (sub * xx).sum() / sub.sum(), (sub * yy).sum() / sub.sum()


def test_companion_where_geometry_says(night):
    outdir, truth = night
    main = truth["sequences"]["irdis_dbi_main"]
    objects = [f for f in main["frames"] if f["dpr_type"] == "OBJECT"]
    first, last = objects[0], objects[-1]
    a = _data(outdir / first["file"])[first["index"]]
    b = _data(outdir / last["file"])[last["index"]]
    diff = a - b  # static speckles cancel; the companion has rotated away in b
    comp = main["companions"][0]
    for field, off in (("left", 0), ("right", 1024)):
        x, y = _predicted_xy(main, comp, first["derot_deg"], field)
        mx, my = _centroid(diff[:, off:off + 1024], x, y)
        assert np.hypot(mx - x, my - y) < 0.5, (field, mx, my, x, y)
    # the IFS cube of the same target shows the same companion, with IFS geometry
    ifs = truth["sequences"]["ifs_main"]
    frames = [f for f in ifs["frames"] if f["dpr_type"] == "OBJECT"]
    ca = _data(outdir / frames[0]["file"]).sum(axis=0)
    cb = _data(outdir / frames[-1]["file"]).sum(axis=0)
    seq = dict(ifs, star_center_px={"left": ifs["star_center_px"]["cube"]})
    x, y = _predicted_xy(seq, ifs["companions"][0], frames[0]["derot_deg"], pixscale=0.00746,
                         anam=(1.0059, 1.0011))
    mx, my = _centroid(ca - cb, x, y, half=4)
    assert np.hypot(mx - x, my - y) < 0.5


def test_waffle_spots_symmetric_about_star(night):
    outdir, truth = night
    main = truth["sequences"]["irdis_dbi_main"]
    center = [f for f in main["frames"] if f["dpr_type"] == "OBJECT,CENTER"][0]
    img = _data(outdir / center["file"])
    img = img if img.ndim == 2 else img[center["index"]]
    for field, off in (("left", 0), ("right", 1024)):
        half = img[:, off:off + 1024]
        xc, yc = main["star_center_px"][field]
        spots = []
        for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1)):  # the 'x' pattern: diagonals
            guess_r = 47.0 * (1.0 if field == "left" else 1.667 / 1.593)
            x, y = xc + sx * guess_r / np.sqrt(2), yc + sy * guess_r / np.sqrt(2)
            bg = np.median(half[int(yc) - 80:int(yc) + 80, int(xc) - 80:int(xc) + 80])
            spots.append(_centroid(half - bg, x, y, half=3))
        spots = np.array(spots)
        np.testing.assert_allclose(spots.mean(axis=0), (xc, yc), atol=0.25)
        angles = np.degrees(np.arctan2(spots[:, 1] - yc, spots[:, 0] - xc)) % 360
        np.testing.assert_allclose(angles, [45, 135, 225, 315], atol=2.0)


def test_flux_frame_total_matches_truth(night):
    outdir, truth = night
    main = truth["sequences"]["irdis_dbi_main"]
    flux_name = [n for n in main["files"] if truth["files"][n]["dpr_type"] == "OBJECT,FLUX"][0]
    dit = truth["files"][flux_name]["dit"]
    bkg = [n for n in _files(truth, dpr_type="DARK,BACKGROUND") if abs(truth["files"][n]["dit"] - dit) < 0.01]
    flats = sorted(_files(truth, dpr_type="FLAT,LAMP"), key=lambda n: truth["files"][n]["dit"])
    f_lo, f_hi = (_data(outdir / n) for n in (flats[0], flats[-1]))
    lamp = f_hi - f_lo  # bias and most dark cancel: lamp x pixel response
    assert np.median(lamp[100:900, 100:900]) / np.median(f_lo[100:900, 100:900] - 1000) == pytest.approx(
        (truth["files"][flats[-1]]["dit"] - truth["files"][flats[0]]["dit"]) / truth["files"][flats[0]]["dit"],
        rel=0.05)
    star = _data(outdir / flux_name) - _data(outdir / bkg[0])
    star = star if star.ndim == 2 else star.mean(axis=0)
    for field, off in (("left", 0), ("right", 1024)):
        xc, yc = main["star_center_px"][field]
        xi, yi = int(xc) + off, int(yc)
        flat = lamp[:, off:off + 1024] / np.median(lamp[100:900, off + 100:off + 900])
        box = (slice(yi - 300, yi + 300), slice(xi - 300, xi + 300))
        calibrated = star[box] / np.clip(flat[box[0], slice(xi - off - 300, xi - off + 300)], 0.5, None)
        expected = main["star_flux_adu_s"][field] * main["nd_transmission"] * dit
        assert calibrated.sum() == pytest.approx(expected, rel=0.04), field


def test_vignetted_zones_get_no_light(night):
    outdir, truth = night
    obj = [n for n in truth["sequences"]["irdis_dbi_main"]["files"]
           if truth["files"][n]["dpr_type"] == "OBJECT" and n.endswith(".fits")][0]
    dark = _files(truth, dpr_type="DARK")[0]
    frame, d = _data(outdir / obj)[0], _data(outdir / dark)
    assert abs(np.median(frame[100:900, 950:1070]) - np.median(d[100:900, 950:1070])) < 2.0
    assert np.median(frame[100:900, 100:900]) - np.median(d[100:900, 100:900]) > 30.0


def test_determinism(night, tmp_path):
    outdir, truth = night
    again = simulate_night(tmp_path, SEED, small=True)
    assert again == truth
    for name in list(truth["files"]) + ["truth.json"]:
        h1 = hashlib.sha256((outdir / name).read_bytes()).hexdigest()
        assert h1 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest(), name
    # another seed draws another sky and another night's OB identifiers
    other_sky = draw_skies(_rng(SEED + 1, "sky"))["irdis_dbi_main"]
    assert other_sky != draw_skies(_rng(SEED, "sky"))["irdis_dbi_main"]
    assert other_sky.companions[0].sep_arcsec != truth["sequences"]["irdis_dbi_main"]["companions"][0]["sep_arcsec"]


def test_bad_arguments(tmp_path):
    with pytest.raises(NightFormatError):
        simulate_night(tmp_path, 1, night="12/04/2025")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError):
        simulate_night(tmp_path / "file", 1)
