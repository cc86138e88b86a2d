"""Frame times, parallactic angles (header vs astropy) and derotation angles."""
import numpy as np
import pytest

from reduction.level1.angles import (DRIFT_FIX_MJD, derotation_angle_deg,
                                     derotator_drift_fix_deg, frame_times_mjd,
                                     interpolate_parang_deg, wrap_deg)
from reduction.level1.exceptions import AngleError
from reduction.paranal import parallactic_angle_deg

DAY = 86400.0


def test_frame_times_with_overhead():
    start, dit, ndit, oh = 59000.1, 16.0, 4, 1.5
    end = start + (ndit * dit + (ndit - 1) * oh) / DAY
    t = frame_times_mjd(start, dit, ndit, end)
    assert t.overhead_s == pytest.approx(oh, abs=1e-4)
    assert np.allclose((t.start_mjd - start) * DAY, [0, 17.5, 35, 52.5], atol=1e-4)
    assert np.allclose((t.mid_mjd - t.start_mjd) * DAY, 8.0, atol=1e-4)
    t1 = frame_times_mjd(start, dit, 1)
    assert t1.end_mjd == pytest.approx(start + dit / DAY)
    with pytest.raises(AngleError):
        frame_times_mjd(start, dit, 4, start + 10 / DAY)  # ends before the frames do
    with pytest.raises(AngleError):
        frame_times_mjd(start, 0.0, 4)


def test_parang_interpolation_unwraps_across_180():
    p = interpolate_parang_deg(178.0, -176.0, 0.0, 1.0, [0.0, 0.5, 1.0])
    assert np.allclose(p.parang_deg, [178.0, 181.0, 184.0])
    assert not p.flagged and np.isnan(p.computed_deg).all()
    with pytest.raises(AngleError):
        interpolate_parang_deg(0.0, 1.0, 1.0, 1.0, [1.0])


def test_parang_matches_astropy_near_zenith_transit():
    # dec close to the site latitude, at transit: the angle moves fast and non-linearly
    ra, dec = 150.0, -26.0
    from astropy.time import Time
    from reduction.paranal import offline_iers, paranal_location
    t_transit = 59000.0
    with offline_iers():
        lst = Time(t_transit, format="mjd", scale="utc",
                   location=paranal_location()).sidereal_time("apparent").deg
    t0 = t_transit + ((ra - lst) % 360.0) / 360.0 * 0.99727 - 3 / 1440.0
    t1 = t0 + 360.0 / DAY
    head = parallactic_angle_deg(np.array([t0, t1]), ra, dec)
    mids = np.linspace(t0, t1, 7)
    truth = np.unwrap(parallactic_angle_deg(mids, ra, dec), period=360.0)
    lin = interpolate_parang_deg(head[0], head[1], t0, t1, mids)
    p = interpolate_parang_deg(head[0], head[1], t0, t1, mids, ra_deg=ra, dec_deg=dec)
    err = np.abs(wrap_deg(p.parang_deg - truth))
    assert err.max() < 0.01 and not p.flagged
    assert np.abs(wrap_deg(lin.parang_deg - truth)).max() > err.max()
    # a header 0.3 deg off is flagged
    bad = interpolate_parang_deg(head[0] + 0.3, head[1] + 0.3, t0, t1, mids, ra_deg=ra,
                                 dec_deg=dec)
    assert bad.flagged and bad.disagreement_deg.max() == pytest.approx(0.3, abs=0.01)


def test_derotation_angle_conventions():
    assert derotation_angle_deg(10.0) == pytest.approx(10.0 + 135.99 - 1.75)
    assert derotation_angle_deg(10.0, arm="IFS") == pytest.approx(10.0 + 135.99 - 1.75 - 100.48)
    assert derotation_angle_deg(10.0, derot_mode="SKY", drot2_posang_deg=30.0) == \
        pytest.approx(10.0 - 100.48 + 30.0 - 1.75)
    assert derotation_angle_deg([0.0, 1.0]).shape == (2,)
    with pytest.raises(AngleError):
        derotation_angle_deg(0.0, derot_mode="STAT")
    with pytest.raises(AngleError):
        derotation_angle_deg(0.0, arm="ZIMPOL")


def test_drift_fix_only_before_2016_07_12():
    before, after = DRIFT_FIX_MJD - 1.0, DRIFT_FIX_MJD + 1.0
    corr = derotator_drift_fix_deg([before, after], 60.0, 20.0)
    assert corr[0] == pytest.approx(np.degrees(np.arctan(np.tan(np.radians(20.0)))))
    assert corr[1] == 0.0
    assert derotator_drift_fix_deg(before, 80.0, -20.0) == pytest.approx(-60.0)  # atan(tan(120))
