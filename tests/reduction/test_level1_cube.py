"""End to end: a synthetic IRDIS DBI sequence to a master cube, checked against truth.

Geometry of the shared contract: a companion at sky PA sits in the raw frame at
detector angle PA - theta, compressed by 1.0062 along y.
"""
import warnings

import numpy as np
import pytest

from tests.reduction.level1_synth import ANAM_Y, add_gaussian, halo, raw_xy
from reduction.level1 import Calibrations, MasterCubeParams, RawFile, build_master_cube
from reduction.level1.exceptions import Level1Warning, SequenceError
from reduction.paranal import offline_iers, parallactic_angle_deg, paranal_location

DAY = 86400.0
CENTRES = {"left": (484.6, 521.3), "right": (486.9, 507.4)}
STAR_ADU_S = 2.0e6
SEP_PX, PA_DEG, CONTRAST = 60.0, 30.0, 1e-3
DIT, NDIT, OVERHEAD_S, BKG_ADU_S = 8.0, 2, 0.5, 50.0
CROP = 201


class _Night:
    """A target crossing the meridian close to the zenith: fast field rotation."""

    def __init__(self):
        from astropy.time import Time

        self.rng = np.random.default_rng(3)
        self.t0 = 59000.2
        with offline_iers():
            lst = Time(self.t0 + 20 / 1440, format="mjd", scale="utc",
                       location=paranal_location()).sidereal_time("apparent").deg
        self.ra, self.dec = float(lst), -35.0
        self.flat = self.rng.uniform(0.9, 1.1, (1024, 2048)).astype(np.float32)
        self.bad = np.zeros((1024, 2048), bool)
        self.bad[self.rng.integers(15, 1013, 300), self.rng.integers(50, 1966, 300)] = True

    def frame(self, kind, mjd_mid, dit_s, nd):
        img = np.zeros((1024, 2048), np.float32)
        theta = parallactic_angle_deg(mjd_mid, self.ra, self.dec) + 135.99 - 1.75
        for k, name in enumerate(("left", "right")):
            xc, yc = CENTRES[name]
            xc += 1024 * k
            if kind == "FLUX":
                add_gaussian(img, xc, yc, STAR_ADU_S * dit_s * nd)
                continue
            img[:, 1024 * k:1024 * (k + 1)] += halo((1024, 1024), xc - 1024 * k, yc, 50.0 * dit_s)
            if kind == "CENTER":
                for j in range(4):
                    a = np.radians(45 + 90 * j)
                    add_gaussian(img, *raw_xy(xc, yc, 40 * np.cos(a), 40 * np.sin(a)), 2e4 * dit_s)
            alpha = np.radians(PA_DEG - theta)
            add_gaussian(img, xc - SEP_PX * np.sin(alpha), yc + SEP_PX * np.cos(alpha) / ANAM_Y,
                         STAR_ADU_S * CONTRAST * dit_s * nd)
        img = img * self.flat + BKG_ADU_S * dit_s
        img += self.rng.normal(0, 3, img.shape).astype(np.float32)
        img[self.bad] = 6e4
        return img

    def file(self, kind, start, dit_s, nd_name="OPEN", nd=1.0, n=NDIT):
        starts = start + np.arange(n) * (dit_s + OVERHEAD_S) / DAY
        mids = starts + dit_s / 2 / DAY
        end = starts[-1] + dit_s / DAY
        pa = parallactic_angle_deg(np.array([start, end]), self.ra, self.dec)
        meta = dict(dpr_type={"OBJECT": "OBJECT", "CENTER": "OBJECT,CENTER",
                              "FLUX": "OBJECT,FLUX"}[kind],
                    dit=dit_s, ndit=n, nd_filter=nd_name, mjd_obs=start, fram_utc=end,
                    parang_start=float(pa[0]), parang_end=float(pa[1]), ra=self.ra,
                    dec=self.dec, derot_mode="ELEV", drot2_posang=0.0, filter="DB_H23",
                    arcfile=f"{kind}{start:.5f}", waffle_orient="x")
        # lazy loading: frames are made when the cube builder asks for them
        return RawFile(meta, lambda: np.stack([self.frame(kind, m, dit_s, nd) for m in mids])), mids

    def sequence(self, n_object=6):
        files, mids = [], []
        files.append(self.file("FLUX", self.t0, 2.0, "ND_2.0", 0.01, 1)[0])
        files.append(self.file("CENTER", self.t0 + 2 / 1440, DIT, n=1)[0])
        for i in range(n_object):
            f, m = self.file("OBJECT", self.t0 + (5 + 6 * i) / 1440, DIT)
            files.append(f)
            mids.extend(m)
        return files[::-1], np.array(mids)  # reversed: the builder sorts by time

    def calibrations(self, dits=(DIT, 2.0)):
        return Calibrations(backgrounds={d: np.full((1024, 2048), BKG_ADU_S * d, np.float32)
                                         for d in dits},
                            flat=self.flat, bad_pixels=self.bad)


@pytest.fixture(scope="module")
def night():
    return _Night()


@pytest.fixture(scope="module")
def built(night):
    files, mids = night.sequence()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Level1Warning)  # a clean sequence raises no flag
        cube = build_master_cube(files, night.calibrations(),
                                 params=MasterCubeParams(crop_px=CROP))
    return cube, mids


def _rotate_ccw(img, theta_deg):
    """Rotate about the central pixel by +theta, counter-clockwise with y up."""
    from scipy import ndimage

    c = img.shape[0] // 2
    t = np.radians(theta_deg)
    m = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])  # acts on (y, x)
    return ndimage.affine_transform(np.nan_to_num(img), m, offset=c - m @ [c, c], order=3)


def test_cube_shapes_and_table(built):
    cube, mids = built
    assert cube.science.shape == (2, 12, CROP, CROP) and cube.science.dtype == np.float32
    assert cube.psf.shape == (2, 65, 65)
    assert len(cube.frames) == 12 and cube.frames["selected"].all()
    assert np.allclose(cube.frames["mjd_mid"], mids, atol=1e-4 / DAY)
    assert np.allclose(cube.wavelengths_um, [1.5888, 1.6671])
    assert cube.flags == []


def test_cube_angles_within_0p05_deg(built, night):
    cube, mids = built
    truth = np.unwrap(parallactic_angle_deg(mids, night.ra, night.dec) + 135.99 - 1.75,
                      period=360.0)
    err = np.abs((cube.derot_deg - truth + 180.0) % 360.0 - 180.0)
    assert err.max() < 0.05
    assert -180.0 < cube.derot_deg[0] <= 180.0
    assert abs(cube.derot_deg[-1] - cube.derot_deg[0]) > 10.0  # the test has real rotation


def test_cube_centres_within_0p2_px(built):
    cube, _ = built
    for name in ("left", "right"):
        res = cube.centres[name][0]
        assert res.success
        assert np.hypot(*np.subtract(res.centre_xy, CENTRES[name])) < 0.2
        assert np.allclose(cube.frames[f"centre_x_{name}"], res.centre_xy[0])


def test_cube_psf_flux_within_5_percent(built):
    cube, _ = built
    assert np.allclose(cube.psf_flux_adu_s, STAR_ADU_S, rtol=0.05)
    assert np.all((cube.psf_fwhm_px > 3.5) & (cube.psf_fwhm_px < 4.5))


def test_cube_median_adi_companion_within_0p5_px(built):
    from photutils.centroids import centroid_2dg
    from scipy import ndimage

    cube, _ = built
    c = CROP // 2
    xt = c - SEP_PX * np.sin(np.radians(PA_DEG))
    yt = c + SEP_PX * np.cos(np.radians(PA_DEG))
    for k in range(2):
        resid = cube.science[k] - np.nanmedian(cube.science[k], axis=0)
        final = np.median([_rotate_ccw(f, t) for f, t in zip(resid, cube.derot_deg)], axis=0)
        y, x = np.unravel_index(np.argmax(ndimage.gaussian_filter(final, 1.0)), final.shape)
        cx, cy = centroid_2dg(final[y - 5:y + 6, x - 5:x + 6])
        assert np.hypot(cx + x - 5 - xt, cy + y - 5 - yt) < 0.5


def test_cube_degraded_inputs_are_flagged(night):
    files, _ = night.sequence(n_object=1)
    files = [f for f in files if f.meta["dpr_type"] != "OBJECT,CENTER"]
    with pytest.warns(Level1Warning):
        cube = build_master_cube(files, night.calibrations(dits=(DIT,)),
                                 params=MasterCubeParams(crop_px=51))
    assert any("no CENTER frame: star centre from the coronagraphic halo" in f
               for f in cube.flags)
    assert any("background:2.00" in f for f in cube.flags)
    # from the halo's symmetry, not the default position (485.0, 0.4 px off)
    assert np.allclose(cube.frames["centre_x_left"], CENTRES["left"][0], atol=0.05)
    assert np.allclose(cube.frames["centre_y_right"], CENTRES["right"][1], atol=0.05)
    with pytest.raises(SequenceError):
        build_master_cube([f for f in files if f.meta["dpr_type"] != "OBJECT"],
                          night.calibrations())
