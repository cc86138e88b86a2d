"""Tests of ingest.calibs.associate with synthetic rows."""
import time

import pytest

from ingest.calibs import CalibIndex, associate, calib_status
from ingest.sequences import group_sequences
from ingest.words import describe_missing, describe_warning
from tests.ingest.rows import T0, dbi_sequence, row





def calib(minutes, dpr_type, dit=16.0, **changes):
    """A CALIB row ``minutes`` after T0 (negative: before)."""
    changes.setdefault("dpr_catg", "CALIB")
    r = row(minutes, dpr_type, dit=dit, exptime_s=dit, **changes)
    r["checksum"] = f"{dpr_type}@{minutes}/{dit}"
    return r


def sequence_of(rows):
    seqs = group_sequences(rows)
    assert len(seqs) == 1
    return seqs[0], rows


def by_role(associations, role, key=None):
    return [a for a in associations if a["role"] == role
            and (key is None or a["calib_key"] == key)]


def flats(minutes, n=3, filt="DB_H23", tpl=None):
    tpl = tpl or f"tpl@{minutes}"
    return [calib(minutes + i, "FLAT,LAMP", dit=1.0 + i, filter=filt, tpl_start=tpl)
            for i in range(n)]


def test_complete_dbi_sequence():
    seq, rows = sequence_of(dbi_sequence())
    cands = (flats(-600) + flats(-5 * 1440)
             + [calib(-300, "DARK,BACKGROUND", 16.0), calib(-300, "DARK,BACKGROUND", 0.84),
                calib(5, "DARK", 0.84)])  # DARK is closer, DARK,BACKGROUND preferred
    assoc, missing, warnings = associate(seq, rows, cands)
    # Warned like the simulator's truth: the FLUX DIT has no SKY.
    assert missing == [] and warnings == ["background:0.84: no SKY, DARK,BACKGROUND used"]
    assert calib_status(seq, missing, warnings) == "complete_with_warnings"
    _, _, warnings = associate(seq, rows, cands + [calib(-20, "SKY", 0.84, obs_id=9)])
    assert calib_status(seq, [], warnings) == "complete"
    flat = by_role(assoc, "flat", "DB_H23")
    assert sorted(a["checksum"] for a in flat) == sorted(r["checksum"] for r in flats(-600))
    bg16 = by_role(assoc, "background", "16.00")
    assert [a["dpr_type"] for a in bg16] == ["SKY"]  # the sequence's own SKY
    assert bg16[0]["arcfile"] == rows[-1]["arcfile"]
    bg084 = by_role(assoc, "background", "0.84")
    assert [a["dpr_type"] for a in bg084] == ["DARK,BACKGROUND"]
    mid = 0.5 * (seq["mjd_start"] + seq["mjd_end"])
    assert bg084[0]["delta_days"] == pytest.approx(T0 - 300 / 1440 - mid)
    assert all(a["sequence_id"] == seq["sequence_id"] and a["is_far"] is False for a in assoc)
    assert by_role(assoc, "distortion") == []  # optional, never missing


def test_missing_calibrations_of_ci_sequence():
    seq, rows = sequence_of([r for r in dbi_sequence(filter="BB_Ks", ins_mode="CI")
                             if r["dpr_type"] != "SKY"])
    cands = flats(-600, filt="DB_H23") + [calib(-300, "DARK,BACKGROUND", 16.0)]
    assoc, missing, warnings = associate(seq, rows, cands)
    assert missing == ["background:0.84", "flat:BB_Ks"]
    assert warnings == ["background:16.00: no SKY, DARK,BACKGROUND used"]
    assert [a["dpr_type"] for a in assoc] == ["DARK,BACKGROUND"]
    assert calib_status(seq, missing, warnings) == "incomplete"
    assert "BB_Ks" in describe_missing("flat:BB_Ks")
    assert "0.84 s" in describe_missing("background:0.84")
    assert "16.00 s" in describe_warning(warnings[0])
    assert "DARK,BACKGROUND frame" in describe_warning(warnings[0])


@pytest.mark.parametrize("dit, matches", [(16.009, True), (15.991, True),
                                          (16.02, False), (15.98, False)])
def test_dit_tolerance(dit, matches):
    seq, rows = sequence_of([r for r in dbi_sequence() if r["dpr_type"] == "OBJECT"])
    assoc, missing, _ = associate(seq, rows, [calib(-60, "DARK", dit)])
    assert ("background:16.00" not in missing) is matches
    assert len(by_role(assoc, "background", "16.00")) == int(matches)


def test_background_priority_and_closest():
    seq, rows = sequence_of([r for r in dbi_sequence() if r["dpr_type"] == "OBJECT"])
    dark_near, dark_far = calib(-10, "DARK"), calib(-200, "DARK")
    db_near, db_far = calib(-100, "DARK,BACKGROUND"), calib(-400, "DARK,BACKGROUND")
    other_sky = calib(300, "SKY", dpr_catg="SCIENCE", obs_id=9)

    def chosen(cands):
        assoc, _, _ = associate(seq, rows, cands)
        return by_role(assoc, "background", "16.00")[0]["checksum"]

    assert chosen([dark_near, dark_far]) == dark_near["checksum"]
    assert chosen([dark_near, db_far, db_near]) == db_near["checksum"]
    assert chosen([dark_near, db_near, other_sky]) == other_sky["checksum"]
    # The sequence's own SKY beats a closer SKY of another sequence.
    own = row(60, "SKY")
    closer = calib(8, "SKY", dpr_catg="SCIENCE", obs_id=9)
    seq2, rows2 = sequence_of(rows + [own])
    assoc, _, _ = associate(seq2, rows2, [closer, db_near])
    assert by_role(assoc, "background", "16.00")[0]["checksum"] == own["checksum"]


def test_far_calibration_warns_and_near_lower_kind_wins():
    seq, rows = sequence_of([r for r in dbi_sequence() if r["dpr_type"] == "OBJECT"])
    far_db = calib(-3 * 1440, "DARK,BACKGROUND")
    assoc, missing, warnings = associate(seq, rows, flats(-60) + [far_db])
    assert missing == [] and warnings == [
        "background:16.00: far, -3.0 days", "background:16.00: no SKY, DARK,BACKGROUND used"]
    bg = by_role(assoc, "background")
    assert bg[0]["is_far"] is True and bg[0]["delta_days"] < -2.9
    assert calib_status(seq, missing, warnings) == "complete_with_warnings"
    assoc, _, warnings = associate(seq, rows, [far_db, calib(-600, "DARK")])
    bg = by_role(assoc, "background")
    assert bg[0]["dpr_type"] == "DARK" and not bg[0]["is_far"]
    assert "1 day" in describe_warning("flat:DB_H23: far, -3.0 days")


def test_flat_groups():
    seq, rows = sequence_of([r for r in dbi_sequence() if r["dpr_type"] == "OBJECT"])
    bg = [calib(-60, "SKY", dpr_catg="SCIENCE", obs_id=9)]
    # A single flat is not enough.
    _, missing, _ = associate(seq, rows, bg + flats(-60, n=1))
    assert missing == ["flat:DB_H23"]
    # The closest group with 2 files wins over a closer group of 1.
    near_single = flats(-30, n=1)
    pair = flats(-2 * 1440, n=2)
    assoc, missing, warnings = associate(seq, rows, bg + near_single + pair)
    assert sorted(a["checksum"] for a in by_role(assoc, "flat")) == sorted(
        r["checksum"] for r in pair)
    assert warnings == ["flat:DB_H23: far, -2.0 days"]
    # Only single flats in separate groups: the two nearest are taken.
    singles = flats(-30, n=1) + flats(-600, n=1) + flats(-900, n=1)
    assoc, missing, _ = associate(seq, rows, bg + singles)
    assert missing == []
    assert sorted(a["checksum"] for a in by_role(assoc, "flat")) == sorted(
        r["checksum"] for r in singles[:2])


def test_distortion_is_optional():
    seq, rows = sequence_of([r for r in dbi_sequence() if r["dpr_type"] == "OBJECT"])
    base = flats(-60) + [calib(-60, "SKY", dpr_catg="SCIENCE", obs_id=9)]
    for days, far in ((10, False), (25, True)):
        dist = calib(-days * 1440, "LAMP,DISTORT", dit=1.0)
        assoc, missing, warnings = associate(seq, rows, base + [dist])
        d = by_role(assoc, "distortion", "DB_H23")
        assert [a["checksum"] for a in d] == [dist["checksum"]] and d[0]["is_far"] is far
        assert missing == [] and (warnings == [f"distortion:DB_H23: far, -{days}.0 days"]) is far
    assert "20 days" in describe_warning("distortion:DB_H23: far, -25.0 days")


def test_reduced_sequence_needs_nothing():
    seq, rows = sequence_of(dbi_sequence(arm="IFS", filter="YJ", ins_mode="OBS_YJ",
                                         level="reduced"))
    assert associate(seq, rows, []) == ([], [], [])
    assert calib_status(seq, [], []) == "not_required"


def test_ifs_raw_rules():
    seq, rows = sequence_of(dbi_sequence(arm="IFS", filter="YJH", ins_mode="OBS_H"))
    _, missing, _ = associate(seq, rows, [])
    assert missing == ["background:0.84", "ifs_dark:1.65",  # 16 s: its own SKY
                       "ifs_flat:CAL_BB_2", "ifs_flat:CAL_NB1_1", "ifs_flat:CAL_NB2_1",
                       "ifs_flat:CAL_NB3_1", "ifs_flat:CAL_NB4_2", "ifs_ifu_flat",
                       "ifs_specpos", "ifs_wave"]
    for code in missing:
        assert not describe_missing(code).startswith("A required calibration")
    ifs = dict(arm="IFS", filter=None)
    cands = [calib(-60 + i, "FLAT,LAMP", dit=1.0 + i % 2, ins_mode=f"{s}_YJH", **ifs)
             for i, s in enumerate(2 * ["CAL_BB_2", "CAL_NB1_1", "CAL_NB2_1",
                                        "CAL_NB3_1", "CAL_NB4_2"])]
    cands += [calib(-50, t, dit=1.0, ins_mode="OBS_H", **ifs)
              for t in ("SPECPOS,LAMP", "WAVE,LAMP", "FLAT,LAMP")]
    cands += [calib(-40, "DARK", dit=d, **ifs) for d in (1.65, 0.84, 16.0)]
    assoc, missing, warnings = associate(seq, rows, cands)
    assert missing == [] and warnings == ["background:0.84: no SKY, DARK used"]
    assert len(by_role(assoc, "ifs_flat")) == 10
    assert {a["calib_key"] for a in by_role(assoc, "ifs_flat")} == {
        f"{s}_YJH" for s in ("CAL_BB_2", "CAL_NB1_1", "CAL_NB2_1", "CAL_NB3_1", "CAL_NB4_2")}
    assert [a["calib_key"] for a in by_role(assoc, "ifs_dark")] == ["1.65"]
    assert len(by_role(assoc, "ifs_ifu_flat")) == 1


def test_index_reuse_is_fast():
    cands = []
    for day in range(-20, 21):
        m = day * 1440
        cands += flats(m - 600) + [calib(m - 300, "DARK,BACKGROUND", d)
                                   for d in (0.84, 4.0, 16.0, 32.0, 64.0)]
    index = CalibIndex(cands * 20)
    seq, rows = sequence_of(dbi_sequence())
    t0 = time.perf_counter()
    for _ in range(500):
        assoc, missing, _ = associate(seq, rows, index)
    assert time.perf_counter() - t0 < 3.0
    assert missing == [] and len(by_role(assoc, "flat")) >= 3
