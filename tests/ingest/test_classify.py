"""Tests of ingest.classify with synthetic header dicts."""
import pytest

from ingest.classify import classify, iso_to_mjd, mjd_to_iso, night_of
from ingest.exceptions import NotClassifiable, NotSphere


def irdis_header(**changes):
    """Header dict of an IRDIS DBI OBJECT file, keys as read_file gives them."""
    h = {
        "INSTRUME": "SPHERE", "ARCFILE": "SPHER.2025-04-12T23:59:01.123.fits",
        "OBJECT": "HD 95086", "RA": 164.5958, "DEC": -68.6678,
        "DATE-OBS": "2025-04-12T23:59:01.123", "MJD-OBS": 60777.99932,
        "EXPTIME": 256.0,
        "ESO DPR CATG": "SCIENCE", "ESO DPR TYPE": "OBJECT",
        "ESO DPR TECH": "IMAGE,DUAL,CORONOGRAPHY", "ESO SEQ ARM": "IRDIS",
        "ESO INS1 MODE": "DBI", "ESO INS COMB IFLT": "DB_H23",
        "ESO INS COMB ICOR": "N_ALC_YJH_S", "ESO INS4 FILT2 NAME": "OPEN",
        "ESO INS4 DROT2 MODE": "ELEV", "ESO INS4 DROT2 BEGIN": 101.5,
        "ESO DET SEQ1 DIT": 16.0, "ESO DET NDIT": 16,
        "ESO TEL PARANG START": 170.2, "ESO TEL PARANG END": -175.1,
        "ESO TEL ALT": 55.0, "ESO TEL AIRM START": 1.22, "ESO TEL AIRM END": 1.21,
        "ESO TEL AMBI FWHM START": 0.71, "ESO TEL AMBI FWHM END": 0.75,
        "ESO TEL AMBI TAU0": 0.0042,
        "ESO AOS HO LOOP STATE": "CLOSED_LOOP", "ESO AOS TT LOOP STATE": "CLOSED_LOOP",
        "ESO OCS WAFFLE ORIENT": "x",
        "ESO OBS PROG ID": "0101.C-0128(A)", "ESO OBS ID": 2345678,
        "ESO OBS NAME": "HD95086_DBI", "ESO OBS PI-COI NAME": "DOE/SMITH",
        "ESO TPL ID": "SPHERE_irdis_dbi_obs", "ESO TPL START": "2025-04-12T23:50:00",
        "ESO TPL EXPNO": 3, "ESO TPL NEXP": 20,
    }
    h.update(changes)
    return {k: v for k, v in h.items() if v is not None}


def test_irdis_object_row():
    row = classify(irdis_header(), "x.fits")
    assert row["arcfile"] == "SPHER.2025-04-12T23:59:01.123.fits"
    assert (row["dpr_catg"], row["dpr_type"], row["arm"]) == ("SCIENCE", "OBJECT", "IRDIS")
    assert (row["ins_mode"], row["filter"], row["coronagraph"]) == (
        "DBI", "DB_H23", "N_ALC_YJH_S")
    assert (row["nd_filter"], row["derot_mode"]) == ("OPEN", "ELEV")
    assert row["dit"] == 16.0 and row["ndit"] == 16 and row["exptime"] == 256.0
    assert row["mjd_obs"] == 60777.99932
    assert row["mjd_end"] == pytest.approx(60777.99932 + 256.0 / 86400.0)
    assert row["date_obs"] == "2025-04-12T23:59:01.123"
    assert row["night"] == "2025-04-12"
    assert (row["obs_id"], row["tpl_expno"], row["tpl_nexp"]) == (2345678, 3, 20)
    assert (row["parang_start"], row["parang_end"]) == (170.2, -175.1)
    assert row["airmass"] == 1.22 and row["seeing_arcsec"] == 0.71
    assert row["tau0_s"] == 0.0042 and row["ao_loop_closed"] is True
    assert row["level"] == "raw" and row["pro_rec_id"] is None
    assert row["target_name"] == "HD 95086" and row["waffle_orient"] == "x"
    assert row["quality_notes"] == []


def test_arcfile_defaults_to_file_name():
    row = classify(irdis_header(ARCFILE=None), "SPHER.2025-04-12T23:59:01.123.fits.gz")
    assert row["arcfile"] == "SPHER.2025-04-12T23:59:01.123.fits.gz"


@pytest.mark.parametrize("date, night", [
    ("2025-04-13T11:59:59.999", "2025-04-12"),  # before noon UTC: previous evening
    ("2025-04-13T12:00:00.000", "2025-04-13"),
    ("2025-04-12T23:59:01.123", "2025-04-12"),
    ("2025-01-01T03:00:00.000", "2024-12-31"),  # across a year
])
def test_night_noon_utc_boundary(date, night):
    row = classify(irdis_header(**{"DATE-OBS": date, "MJD-OBS": None}), "x.fits")
    assert row["night"] == night
    assert night_of(iso_to_mjd(date)) == night


def test_mjd_only_and_iso_round_trip():
    mjd = iso_to_mjd("2025-04-12T23:59:01.123")
    row = classify(irdis_header(**{"DATE-OBS": None, "MJD-OBS": mjd}), "x.fits")
    assert row["date_obs"] == "2025-04-12T23:59:01.123"
    assert mjd_to_iso(mjd) == "2025-04-12T23:59:01.123"
    assert iso_to_mjd("1858-11-17T00:00:00") == 0.0


def test_date_disagreement_is_noted():
    row = classify(irdis_header(**{"MJD-OBS": 60777.99932 + 10 / 86400}), "x.fits")
    assert any("DATE-OBS and MJD-OBS differ" in n for n in row["quality_notes"])


def test_fram_utc_extends_end():
    row = classify(irdis_header(**{"ESO DET FRAM UTC": "2025-04-13T00:05:00.000"}), "x")
    assert row["mjd_end"] == pytest.approx(iso_to_mjd("2025-04-13T00:05:00.000"))


@pytest.mark.parametrize("key", ["ESO INS4 DROT2 BEGIN", "ESO INS4 DROT2 START"])
def test_drot2_begin_or_start(key):
    h = irdis_header(**{"ESO INS4 DROT2 BEGIN": None, key: -33.25})
    assert classify(h, "x")["drot2_begin"] == -33.25


def test_ifs_reduced_cube():
    h = irdis_header(**{"ESO SEQ ARM": "IFS", "ESO INS2 COMB IFS": "OBS_YJ",
                        "ESO INS1 MODE": None, "ESO DPR TECH": "IFU",
                        "ESO PRO REC1 ID": "sph_ifs_science_dr",
                        "ESO PRO CATG": "IFS_SCIENCE_DR"})
    row = classify(h, "x")
    assert (row["arm"], row["ins_mode"], row["filter"]) == ("IFS", "OBS_YJ", "YJ")
    assert row["level"] == "reduced" and row["pro_rec_id"] == "sph_ifs_science_dr"
    assert row["pro_catg"] == "IFS_SCIENCE_DR"
    assert classify(dict(h, **{"ESO INS2 COMB IFS": "OBS_H"}), "x")["filter"] == "YJH"
    cal = dict(h, **{"ESO INS2 COMB IFS": "CAL_BB_2_YJ"})
    assert classify(cal, "x")["filter"] == "CAL_BB_2_YJ"


def test_conditions_not_measured_and_open_loop():
    h = irdis_header(**{"ESO TEL AMBI FWHM START": -1.0, "ESO AOS TT LOOP STATE": "OPEN_LOOP"})
    row = classify(h, "x")
    assert row["seeing_arcsec"] is None
    assert row["ao_loop_closed"] is False
    assert "seeing not measured (header value -1)" in row["quality_notes"]
    none = irdis_header(**{"ESO AOS HO LOOP STATE": None, "ESO AOS TT LOOP STATE": None})
    assert classify(none, "x")["ao_loop_closed"] is None


def test_not_sphere():
    with pytest.raises(NotSphere, match="NAOS"):
        classify(irdis_header(INSTRUME="NAOS+CONICA"), "x")


@pytest.mark.parametrize("drop, named", [
    (["ESO DPR CATG"], "ESO DPR CATG"),
    (["ESO SEQ ARM", "ESO DPR TYPE"], "ESO DPR TYPE, ESO SEQ ARM"),
    (["DATE-OBS", "MJD-OBS"], "DATE-OBS (or MJD-OBS)"),
    (["ESO DET SEQ1 DIT"], "ESO DET SEQ1 DIT"),
])
def test_missing_keywords_are_named(drop, named):
    with pytest.raises(NotClassifiable) as err:
        classify(irdis_header(**{k: None for k in drop}), "x")
    assert named in err.value.reason
    assert err.value.reason_code == "not_classifiable"
    assert set(err.value.missing) >= {k for k in drop if k not in ("DATE-OBS", "MJD-OBS")}


def test_bad_date_without_mjd():
    with pytest.raises(NotClassifiable, match="MJD-OBS"):
        classify(irdis_header(**{"DATE-OBS": "yesterday", "MJD-OBS": None}), "x")


def test_calibration_row():
    h = irdis_header(**{"ESO DPR CATG": "CALIB", "ESO DPR TYPE": "FLAT,LAMP",
                        "ESO DPR TECH": "IMAGE", "ESO DET SEQ1 DIT": 1.65,
                        "EXPTIME": None, "ESO DET NDIT": 4, "RA": None, "DEC": None})
    row = classify(h, "x")
    assert row["dpr_type"] == "FLAT,LAMP" and row["exptime"] == pytest.approx(6.6)
    assert row["ra"] is None and row["quality_notes"] == []
