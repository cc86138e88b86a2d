"""Tests of ingest.sequences.group_sequences with synthetic rows."""
import time

import pytest

from ingest.classify import iso_to_mjd
from ingest.sequences import group_sequences, min_field_rotation_deg
from ingest.words import describe_flag
from tests.ingest.rows import T0, dbi_sequence, row



def test_one_dbi_sequence():
    rows = dbi_sequence()
    calib = row(30, "FLAT,LAMP", dpr_catg="CALIB")
    seqs = group_sequences(rows[::-1] + [calib])
    assert len(seqs) == 1
    s = seqs[0]
    assert s["sequence_id"] == "IRDIS.2025-04-12T23:59:01.123"
    assert (s["n_object"], s["n_center"], s["n_flux"], s["n_sky"], s["n_files"]) == (4, 2, 2, 1, 9)
    assert s["mjd_start"] == rows[0]["mjd_obs"]
    assert s["mjd_end"] == pytest.approx(rows[-1]["mjd_end"])
    assert s["field_rotation_deg"] == pytest.approx(60.0)
    assert s["exptime_object"] == 4 * 64.0
    assert (s["ins_mode"], s["filter"], s["coronagraph"], s["derot_mode"]) == (
        "DBI", "DB_H23", "N_ALC_YJH_S", "ELEV")
    assert s["ra"] == pytest.approx(164.6) and s["dec"] == pytest.approx(-68.7)
    assert s["night"] == "2025-04-12" and s["obs_id"] == 1 and s["level"] == "raw"
    assert [f["arcfile"] for f in s["files"]] == [r["arcfile"] for r in rows]
    assert s["files"][0]["dit"] == 0.84 and s["files"][0]["checksum"] == "c0.0"
    assert s["quality_flags"] == []


def test_gap_over_one_hour_splits():
    first = dbi_sequence(0)
    end_first = max(r["mjd_end"] for r in first)
    # 59 min after the end of the last file: same sequence; 61 min: a new one.
    near = row((end_first - T0) * 1440 + 59)
    assert len(group_sequences(first + [near])) == 1
    far = row((end_first - T0) * 1440 + 61)
    seqs = group_sequences(first + [far])
    assert len(seqs) == 2
    assert seqs[1]["sequence_id"] == f"IRDIS.{far['date_obs']}"
    assert seqs[1]["n_files"] == 1


@pytest.mark.parametrize("field, value", [("obs_id", 2), ("tpl_id", "other_tpl"),
                                          ("filter", "DB_K12"), ("arm", "IFS")])
def test_group_key_splits(field, value):
    rows = dbi_sequence(0) + dbi_sequence(20, **{field: value})
    assert len(group_sequences(rows)) == 2


def test_noon_boundary_splits_nights():
    # Files 30 min apart across 12:00 UTC belong to two nights.
    t = iso_to_mjd("2025-04-13T11:45:00") - T0
    rows = [row(t * 1440), row(t * 1440 + 30)]
    seqs = group_sequences(rows)
    assert [s["night"] for s in seqs] == ["2025-04-12", "2025-04-13"]


def test_field_rotation_unwraps_across_180():
    rows = dbi_sequence(parang=(170.0, 190.0))
    for r in rows:  # header angles live in (-180, 180]
        for k in ("parang_start", "parang_end"):
            if r[k] is not None and r[k] > 180:
                r[k] -= 360.0
    s = group_sequences(rows)[0]
    assert s["field_rotation_deg"] == pytest.approx(20.0)
    assert "small_field_rotation" in s["quality_flags"]  # 20 < 23.5 deg in H


def test_min_field_rotation():
    # lambda/D at 1.628 um on 8.2 m is 41 mas: 0.41 rad at 0.1 arcsec.
    assert min_field_rotation_deg("DB_H23") == pytest.approx(23.5, abs=0.1)
    assert min_field_rotation_deg("BB_Ks") > min_field_rotation_deg("DB_H23")


def test_quality_flags():
    rows = [r for r in dbi_sequence() if r["dpr_type"] not in ("OBJECT,CENTER", "OBJECT,FLUX")]
    rows[1]["ao_loop_closed"] = False
    for r in rows:
        r.update(seeing_arcsec=1.5, tau0_s=0.0015)
    s = group_sequences(rows)[0]
    assert s["quality_flags"] == ["ao_loop_open", "no_center", "no_flux",
                                  "bad_seeing", "short_tau0"]
    assert s["seeing_arcsec"] == 1.5
    for flag in s["quality_flags"]:
        assert describe_flag(flag) != f"Quality flag {flag}."
    # Field tracking: no ADI, so small rotation is not a flaw.
    sky = group_sequences(dbi_sequence(parang=(0, 1), derot_mode="SKY"))[0]
    assert "small_field_rotation" not in sky["quality_flags"]


def test_ra_mean_wraps_at_zero():
    rows = [row(0, ra=359.9), row(2, ra=0.1)]
    s = group_sequences(rows)[0]
    assert min(s["ra"], 360 - s["ra"]) == pytest.approx(0.0, abs=1e-9)


def test_large_night_is_fast():
    # 100 sequences of 100 files: the grouping must stay O(n log n).
    rows = []
    for k in range(100):
        rows += [row(k * 200 + i, obs_id=k, night="2025-04-12") for i in range(100)]
    t0 = time.perf_counter()
    seqs = group_sequences(rows)
    elapsed = time.perf_counter() - t0
    assert len(seqs) == 100 and all(s["n_object"] == 100 for s in seqs)
    assert elapsed < 2.0
