"""Simulate a whole SPHERE night: the entry point `simulate_night`."""
import os
import zlib

import numpy as np

from . import instrument as ins
from .detector import make_detector, read_out
from .exceptions import OutputDirError
from .headers import Pointing, build_header, ifs_product_header
from .ifs import IfsScene
from .irdis import IrdisScene, background_adu_s, lamp_light
from .optics import power_law_opd_nm, vlt_pupil, waffle_opd_nm
from .plan import SEQ_CI, SEQ_IFS, SEQ_MAIN, mjd_utc, parse_night, plan_night
from .sky import draw_skies
from .writer import file_name, file_truth, write_fits, write_truth

PUPIL_PIX = 128
STATIC_RMS_NM = 40.0
DIFFERENTIAL_RMS_NM = 8.0   # non-common path between the two IRDIS fields / IFS
EVOLUTION_RMS_NM = 2.0      # frame-to-frame quasi-static evolution
WAFFLE_NM = 50.0


def _rng(seed, *keys):
    """Independent generator for one purpose, so results do not depend on call order."""
    words = [int(seed) % 2 ** 32] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _pointings(plan, skies, seed):
    """Telescope values per exposure and parallactic angles of every frame.

    Returns
    -------
    pointings : dict of int to `headers.Pointing`
        By exposure index (exposures with a target only).
    frames : dict of int to (mjd_mid, parang_deg) arrays of shape (ndit,)
    """
    from ..paranal import altitude_deg, parallactic_angle_deg

    by_target = {}
    for i, e in enumerate(plan.exposures):
        if e.target is not None:
            by_target.setdefault(e.target, []).append(i)
    pointings, frames = {}, {}
    for target, idx in by_target.items():
        times, spans = [], []
        for i in idx:
            e = plan.exposures[i]
            t0 = mjd_utc(e.start)
            mids = t0 + (e.frame_starts_s() + e.dit_s / 2.0) / 86400.0
            spans.append((len(times), len(mids)))
            times.extend([t0, t0 + e.duration_s / 86400.0, *mids])
        times = np.array(times)
        parang = parallactic_angle_deg(times, target.ra_deg, target.dec_deg)
        alt = altitude_deg(times, target.ra_deg, target.dec_deg)
        for i, (k, n) in zip(idx, spans):
            e = plan.exposures[i]
            ao = skies[e.sequence or SEQ_MAIN].ao
            r = _rng(seed, "ambient", i)
            see = ao.seeing_arcsec * (1.0 + 0.05 * r.standard_normal(2))
            pointings[i] = Pointing(
                parang_start_deg=float(parang[k]), parang_end_deg=float(parang[k + 1]),
                alt_deg=float(alt[k]), airmass_start=float(1 / np.sin(np.radians(alt[k]))),
                airmass_end=float(1 / np.sin(np.radians(alt[k + 1]))),
                seeing_start_arcsec=float(see[0]), seeing_end_arcsec=float(see[1]),
                tau0_s=float(ao.tau0_s * (1.0 + 0.1 * r.standard_normal())))
            frames[i] = (times[k + 2:k + 2 + n], parang[k + 2:k + 2 + n])
    return pointings, frames


def _derot_deg(parang_deg, arm):
    """Derotation angle theta in pupil tracking (SPHERE-DATA.md)."""
    offset = ins.PUPIL_OFFSET_DEG + ins.TRUE_NORTH_DEG + (ins.IFS_OFFSET_DEG if arm == "IFS" else 0.0)
    return np.asarray(parang_deg) + offset


def _calibration_status(plan):
    """Missing calibrations and warnings of each IRDIS sequence, by the contract's rules."""
    status = {}
    irdis = [e for e in plan.exposures if e.arm == "IRDIS"]
    for label in {e.sequence for e in irdis if e.sequence}:
        seq = [e for e in irdis if e.sequence == label]
        missing, warnings = [], []
        iflt = seq[0].iflt
        if sum(e.dpr_type == "FLAT,LAMP" and e.iflt == iflt for e in irdis) < 2:
            missing.append(f"flat:{iflt}")
        for dit in sorted({e.dit_s for e in seq if e.kind in ("object", "center", "flux")}):
            bkg = [e.dpr_type for e in irdis if abs(e.dit_s - dit) <= 0.01
                   and e.dpr_type in ("SKY", "DARK,BACKGROUND", "DARK")]
            if not bkg:
                missing.append(f"background:{dit:.2f}")
            elif "SKY" not in bkg:
                used = "DARK,BACKGROUND" if "DARK,BACKGROUND" in bkg else "DARK"
                warnings.append(f"background:{dit:.2f}: no SKY, {used} used")
        status[label] = (sorted(missing), warnings)
    status[SEQ_IFS] = ([], [])
    return status


def _sequence_truth(label, skies, files, status):
    """The ``sequences`` entry of ``truth.json`` for one label (frames added by the caller)."""
    seq_exps = [(n, e) for n, e in files if e.sequence == label]
    first = seq_exps[0][1]
    sky = skies[label]
    flux_nd = [e.nd_filter for _, e in seq_exps if e.kind == "flux"]
    kinds = [e.kind for _, e in seq_exps]
    if first.arm == "IFS":
        pixscale, fluxes = ins.IFS_PIXSCALE_ARCSEC, {"cube": list(sky.star_flux_adu_s["cube"])}
    else:
        pixscale, fluxes = ins.IRDIS_PIXSCALE_ARCSEC, dict(sky.star_flux_adu_s)
    return {
        "arm": first.arm, "ins_mode": first.ins_mode, "filter": first.filter,
        "target_name": first.target.name, "ra": first.target.ra_deg, "dec": first.target.dec_deg,
        "files": [n for n, _ in seq_exps],
        "n_object": kinds.count("object"), "n_center": kinds.count("center"),
        "n_flux": kinds.count("flux"), "n_sky": kinds.count("sky"),
        "missing_calibrations": status[label][0], "warnings": status[label][1],
        "pixscale_arcsec": pixscale,
        "star_center_px": {f: list(xy) for f, xy in sky.centers_xy.items()},
        "star_flux_adu_s": fluxes,
        "nd_transmission": ins.ND_TRANSMISSION[flux_nd[0]] if flux_nd else 1.0,
        "wavelengths_um": list(sky.wavelengths_um),
        "companions": [c.truth() for c in sky.companions],
        "frames": [],
    }


def _prepare_outdir(outdir):
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise OutputDirError(outdir, "exists and is not a folder")
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(outdir, str(exc)) from exc
    if not os.access(outdir, os.W_OK):
        raise OutputDirError(outdir, "not writable")


def simulate_night(outdir, seed, night=None, small=False):
    """Write a simulated SPHERE night of raw files and its ``truth.json``.

    Parameters
    ----------
    outdir : str or path-like
        Output folder (created if needed); files are written flat into it.
    seed : int
        Random seed; the same seed gives byte-identical files.
    night : str, optional
        Night label 'YYYY-MM-DD' (default ``plan.DEFAULT_NIGHT``).
    small : bool
        Fewer frames and files, same structure (for tests).

    Returns
    -------
    truth : dict
        The content of ``OUTDIR/truth.json`` (see the shared contract).

    Raises
    ------
    NightFormatError
        If ``night`` is not 'YYYY-MM-DD'.
    OutputDirError
        If ``outdir`` cannot be created or written.
    """
    from threadpoolctl import threadpool_limits

    night_date = parse_night(night)
    outdir = os.fspath(outdir)
    _prepare_outdir(outdir)
    # the matrix products are small: BLAS threads only add contention
    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate(outdir, seed, night_date, small)


class _Instrument:
    """The night's fixed optics, detector and scenes, rendering one exposure at a time."""

    def __init__(self, seed, skies, frame_times):
        self.seed, self.skies, self.frame_times = seed, skies, frame_times
        self.detector = make_detector(_rng(seed, "detector"))
        self.pupil = vlt_pupil(PUPIL_PIX)
        r = _rng(seed, "aberrations")
        common = power_law_opd_nm(r, self.pupil, STATIC_RMS_NM)
        self.opd = {f: common + power_law_opd_nm(r, self.pupil, DIFFERENTIAL_RMS_NM)
                    for f in ("left", "right", "ifs")}
        self.waffle = waffle_opd_nm(PUPIL_PIX, WAFFLE_NM)
        self.scenes = {
            SEQ_MAIN: IrdisScene(skies[SEQ_MAIN], "N_ALC_YJH_S", self.pupil, self.opd),
            SEQ_CI: IrdisScene(skies[SEQ_CI], "N_ALC_Ks", self.pupil, self.opd),
        }

    def _extra_opd(self, i, k, kind):
        """Frame-to-frame aberration change, plus the waffle pattern on CENTER frames."""
        extra = power_law_opd_nm(_rng(self.seed, "evolution", i, k), self.pupil, EVOLUTION_RMS_NM)
        return extra + self.waffle if kind == "center" else extra

    def ifs_cube(self, i, e, noise):
        """Reduced IFS cube (39, 291, 291) of exposure number ``i``."""
        if SEQ_IFS not in self.scenes:  # built on first use: 39 channels
            self.scenes[SEQ_IFS] = IfsScene(self.skies[SEQ_IFS], e.coronagraph, self.pupil, self.opd["ifs"])
        theta = float(_derot_deg(self.frame_times[i][1][0], "IFS"))
        return self.scenes[SEQ_IFS].cube(e.kind, theta, ins.ND_TRANSMISSION[e.nd_filter], e.dit_s,
                                         noise, self._extra_opd(i, 0, e.kind))

    def irdis_frames(self, i, e, noise):
        """Raw IRDIS data (uint16) of exposure number ``i``: (1024, 2048) or (NDIT, 1024, 2048)."""
        stack = []
        for k in range(e.ndit):
            if e.kind == "dark":
                light = 0.0
            elif e.kind in ("dark_bg", "sky"):
                light = background_adu_s(e.iflt)
            elif e.kind == "flat":
                light = lamp_light() + np.float32(background_adu_s(e.iflt))
            else:
                theta = float(_derot_deg(self.frame_times[i][1][k], "IRDIS"))
                light = self.scenes[e.sequence or SEQ_MAIN].light(
                    e.kind, theta, ins.ND_TRANSMISSION[e.nd_filter], self._extra_opd(i, k, e.kind))
                light += np.float32(background_adu_s(e.iflt))
            stack.append(read_out(self.detector, light, e.dit_s, noise))
        return stack[0] if e.ndit == 1 else np.stack(stack)


def _simulate(outdir, seed, night_date, small):
    """`simulate_night` once the arguments are checked."""
    plan = plan_night(night_date, small, _rng(seed, "plan"))
    skies = draw_skies(_rng(seed, "sky"))
    pointings, frame_times = _pointings(plan, skies, seed)
    instrument = _Instrument(seed, skies, frame_times)
    files, frames = [], {}
    for i, e in enumerate(plan.exposures):
        name = file_name(e)
        header = build_header(e, pointings.get(i))
        noise = _rng(seed, "noise", i)
        if e.arm == "IFS":
            data = instrument.ifs_cube(i, e, noise)
            header = ifs_product_header(header, np.asarray(skies[SEQ_IFS].wavelengths_um))
        else:
            data = instrument.irdis_frames(i, e, noise)
        write_fits(os.path.join(outdir, name), data, header, e.compression)
        files.append((name, e))
        if e.sequence and e.kind in ("object", "center", "flux"):
            mids, parang = frame_times[i]
            frames.setdefault(e.sequence, []).extend(
                {"file": name, "index": k, "dpr_type": e.dpr_type, "mjd_mid": round(float(mids[k]), 9),
                 "parang_deg": round(float(parang[k]), 6),
                 "derot_deg": round(float(_derot_deg(parang[k], e.arm)), 6)}
                for k in range(e.ndit))
    status = _calibration_status(plan)
    truth = {"generator": "spheredc simulate", "seed": int(seed), "night": night_date.isoformat(),
             "small": bool(small),
             "files": {n: file_truth(e, n, mjd_utc(e.start)) for n, e in files},
             "sequences": {}}
    for label in (SEQ_MAIN, SEQ_CI, SEQ_IFS):
        seq = _sequence_truth(label, skies, files, status)
        seq["frames"] = frames.get(label, [])
        truth["sequences"][label] = seq
    write_truth(outdir, truth)
    return truth
