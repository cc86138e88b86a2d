"""Master cube of one IRDIS sequence: the level-1 steps chained on arrays.

`build_master_cube` takes the sequence's files (metadata dicts and frame arrays, or
callables that load them so that one file at a time is in memory) and the master
calibrations, and returns a `MasterCube`: recentred, anamorphism-corrected science
frames in ADU/s per field, derotation angles, frame table, centres and the PSF.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Union
import warnings

import numpy as np

from .angles import (derotation_angle_deg, derotator_drift_fix_deg, frame_times_mjd,
                     interpolate_parang_deg, DRIFT_FIX_MJD)
from .badpix import correct_bad_pixels
from .centring import centre_from_symmetry, centre_from_waffle
from .exceptions import Level1Warning, SequenceError
from .filters import irdis_wavelengths_um
from .geometry import (ANAMORPHISM_XY, DEFAULT_CENTRE_XY, FIELDS, IRDIS_SHAPE,
                       PIXSCALE_ARCSEC, irdis_dead_zone_mask, recentre, split_fields)
from .normalise import normalise_flux
from .params import MasterCubeParams
from .psf import average_psfs, measure_psf
from .selection import select_frames

__all__ = ["RawFile", "Calibrations", "MasterCube", "build_master_cube"]



@dataclass(frozen=True)
class RawFile:
    """One raw file of a sequence.

    Attributes
    ----------
    meta : dict
        Keys (header keyword in brackets): ``dpr_type`` (DPR TYPE: 'OBJECT',
        'OBJECT,CENTER', 'OBJECT,FLUX', 'SKY'), ``dit`` (s), ``ndit``, ``nd_filter``,
        ``mjd_obs`` (MJD-OBS, start) or ``date_obs`` (ISO), ``fram_utc`` (DET FRAM UTC,
        end of the last frame, MJD float or ISO string; optional), ``parang_start``,
        ``parang_end`` (deg), ``ra``, ``dec`` (deg), ``derot_mode``, ``drot2_posang``
        (deg), ``filter`` (INS COMB IFLT); optional ``arcfile``, ``waffle_orient``,
        ``alt`` (TEL ALT) and ``drot2_begin`` (INS4 DROT2 BEGIN/START, deg) for the
        pre-2016-07-12 drift fix.
    data : `numpy.ndarray` or callable
        Frames, shape (ndit, 1024, 2048) or (1024, 2048), or a function of no argument
        returning them (called when the frames are needed, once).
    """
    meta: dict
    data: Union[np.ndarray, Callable[[], Any]]

    def load(self):
        """Frames as a float32 array of shape (ndit, 1024, 2048)."""
        d = self.data() if callable(self.data) else self.data
        d = np.asarray(d, dtype=np.float32)
        return d[None] if d.ndim == 2 else d


@dataclass(frozen=True)
class Calibrations:
    """Master calibrations of a sequence (IRDIS full-frame arrays).

    Attributes
    ----------
    backgrounds : dict of float to `numpy.ndarray`
        Master background (ADU per frame, shape (1024, 2048)) per DIT (s); matched to
        a file's DIT within 0.01 s.
    flat : `numpy.ndarray`, shape (1024, 2048), optional
        Normalised flat (None: no flat-field correction, flagged).
    bad_pixels : `numpy.ndarray`, shape (1024, 2048), bool, optional
        Bad-pixel map (None: only non-finite pixels are corrected).
    """
    backgrounds: dict = field(default_factory=dict)
    flat: Any = None
    bad_pixels: Any = None

    def background_for(self, dit_s):
        """Master background for a DIT, or None when none matches within 0.01 s."""
        best = min(self.backgrounds, key=lambda d: abs(d - dit_s), default=None)
        if best is None or abs(best - dit_s) > 0.01:
            return None
        return self.backgrounds[best]


@dataclass
class MasterCube:
    """Level-1 product of one sequence.

    Attributes
    ----------
    science : `numpy.ndarray`, shape (2, n_time, crop, crop), float32
        Axis order (field/wavelength, time, y, x); ADU/s without ND; star on pixel
        (crop // 2, crop // 2); anamorphism corrected; NaN where no data.
    derot_deg : `numpy.ndarray`, shape (n_time,)
        Derotation angle theta (deg): rotating a frame by +theta counter-clockwise
        (y up) puts north up. Continuous, the first value in (-180, 180].
    psf : `numpy.ndarray`, shape (2, size, size), float32, or None
        Off-axis PSF (ADU/s without ND, star on the central pixel); None without FLUX.
    psf_flux_adu_s, psf_fwhm_px : `numpy.ndarray`, shape (2,)
        Aperture flux and FWHM of the PSF per field (NaN without FLUX).
    frames : `astropy.table.Table`
        One row per science frame: file, index, mjd_mid, parang_deg,
        parang_computed_deg, derot_deg, selected, reason, centre_x/y_left/right.
    centres : dict
        Per field, the `~reduction.level1.centring.WaffleCentre` of each CENTER file.
    wavelengths_um : `numpy.ndarray`, shape (2,)
    pixscale_arcsec : float
    flags : list of str
        Quality flags raised while building the cube.
    """
    science: np.ndarray
    derot_deg: np.ndarray
    psf: Any
    psf_flux_adu_s: np.ndarray
    psf_fwhm_px: np.ndarray
    frames: Any
    centres: dict
    wavelengths_um: np.ndarray
    pixscale_arcsec: float
    flags: list


def _mjd(value):
    """MJD from a float or an ISO string (UTC)."""
    if isinstance(value, str):
        from astropy.time import Time

        return float(Time(value, format="isot", scale="utc").mjd)
    return float(value)


def _start_end(meta):
    """Start (MJD-OBS) and end (DET FRAM UTC) of a file; end None when unknown."""
    start = _mjd(meta["mjd_obs"] if meta.get("mjd_obs") is not None else meta["date_obs"])
    end = meta.get("fram_utc")
    if isinstance(end, str) and "T" not in end:
        # DET FRAM UTC may hold only the time of day: take it on the day of the start.
        from astropy.time import Time

        day = Time(start, format="mjd", scale="utc").isot[:10]
        end = _mjd(f"{day}T{end}")
        if end < start:
            end += 1.0
    return start, (None if end is None else _mjd(end))


def _science_files_by_type(files, crop_px):
    """OBJECT, OBJECT,CENTER and OBJECT,FLUX files, each in time order.

    Raises
    ------
    SequenceError
        If ``crop_px`` is not odd or there is no OBJECT file.
    """
    if crop_px % 2 != 1:
        raise SequenceError(f"crop size must be odd, got {crop_px}")
    files = sorted(files, key=lambda f: _start_end(f.meta)[0])
    by_type = {t: [f for f in files if f.meta.get("dpr_type") == t]
               for t in ("OBJECT", "OBJECT,CENTER", "OBJECT,FLUX")}
    if not by_type["OBJECT"]:
        raise SequenceError("the sequence has no OBJECT file")
    return by_type


def _flag(flags, message):
    flags.append(message)
    warnings.warn(message, Level1Warning, stacklevel=3)


class _Calibrator:
    """Background, flat and bad pixels applied to the frames of one file."""

    def __init__(self, calibs, flags):
        self.calibs, self.flags = calibs, flags
        self.dead = irdis_dead_zone_mask()
        self.bad = (np.zeros(IRDIS_SHAPE, bool) if calibs.bad_pixels is None
                    else np.asarray(calibs.bad_pixels, bool))
        if calibs.flat is None:
            _flag(flags, "no flat field: frames not flat-fielded")

    def __call__(self, raw, meta):
        frames = raw.load()
        if frames.shape[-2:] != IRDIS_SHAPE:
            raise SequenceError(f"{meta.get('arcfile', '?')}: frames of shape {frames.shape}")
        bkg = self.calibs.background_for(float(meta["dit"]))
        if bkg is None:
            _flag(self.flags, f"background:{float(meta['dit']):.2f} missing: "
                  "per-frame median subtracted instead")
            bkg = np.median(frames[:, ~self.dead], axis=1)[:, None, None]
        frames -= np.asarray(bkg, dtype=np.float32)
        if self.calibs.flat is not None:
            frames /= np.asarray(self.calibs.flat, dtype=np.float32)
        frames = correct_bad_pixels(frames, self.bad, invalid=self.dead)
        frames[:, self.dead] = 0.0
        return frames


def _file_angles(meta, params, flags):
    """Frame middles, parallactic and derotation angles of one OBJECT file."""
    start, end = _start_end(meta)
    times = frame_times_mjd(start, float(meta["dit"]), int(meta["ndit"]), end)
    pa = interpolate_parang_deg(float(meta["parang_start"]), float(meta["parang_end"]), start,
                                times.end_mjd, times.mid_mjd, ra_deg=meta.get("ra"),
                                dec_deg=meta.get("dec"),
                                tolerance_deg=params.parang_tolerance_deg)
    name = meta.get("arcfile", "?")
    if pa.flagged:
        _flag(flags, f"{name}: header and computed parallactic angles differ by "
              f"{np.nanmax(pa.disagreement_deg):.3f} deg")
    parang = pa.parang_deg
    if start < DRIFT_FIX_MJD:
        if meta.get("alt") is None or meta.get("drot2_begin") is None:
            _flag(flags, f"{name}: before 2016-07-12 but no TEL ALT / DROT2 BEGIN: "
                  "derotator drift fix not applied")
        else:
            parang = parang + derotator_drift_fix_deg(times.mid_mjd, float(meta["alt"]),
                                                      float(meta["drot2_begin"]))
    theta = derotation_angle_deg(parang, arm="IRDIS", derot_mode=meta.get("derot_mode", "ELEV"),
                                 drot2_posang_deg=float(meta.get("drot2_posang") or 0.0))
    return times.mid_mjd, parang, pa.computed_deg, theta


def _measure_centres(centre_files, calibrate, params, flags):
    """Waffle centres per field for each CENTER file: (mjd, (2, 2) xy, results)."""
    mjds, xys, results = [], [], {f: [] for f in FIELDS}
    for raw in centre_files:
        frames = calibrate(raw, raw.meta)
        fields = split_fields(np.median(frames, axis=0))
        xy = []
        for k, name in enumerate(FIELDS):
            res = centre_from_waffle(fields[k], DEFAULT_CENTRE_XY[name],
                                     orientation=raw.meta.get("waffle_orient"),
                                     params=params.centring)
            if not res.success:
                _flag(flags, f"{raw.meta.get('arcfile', '?')} {name} field: {res.reason}; "
                      "default centre used")
            results[name].append(res)
            xy.append(res.centre_xy if res.success else (np.nan, np.nan))
        start, _ = _start_end(raw.meta)
        mjds.append(start)
        xys.append(xy)
    return np.array(mjds), np.array(xys, dtype=float).reshape(-1, 2, 2), results


def _symmetry_centres(raw, calibrate, flags):
    """Without CENTER frame: centres from the halo symmetry of an OBJECT file's median."""
    fields = split_fields(np.median(calibrate(raw, raw.meta), axis=0))
    xy, found = [], []
    for k, name in enumerate(FIELDS):
        centre, ok = centre_from_symmetry(fields[k], DEFAULT_CENTRE_XY[name])
        xy.append(centre)  # the default position when the fit failed
        found.append(ok)
    _flag(flags, "no CENTER frame: star centre from the coronagraphic halo's symmetry"
          if all(found) else "no CENTER frame: default star centre where the halo fit failed")
    return np.array([_start_end(raw.meta)[0]]), np.array([xy], dtype=float)


def _centres_at(mjd, centre_mjds, centre_xys):
    """Centre (2 fields, xy) at each time: linear between CENTER files, else default."""
    out = np.empty((mjd.size, 2, 2))
    for k, name in enumerate(FIELDS):
        for j in range(2):
            vals = centre_xys[:, k, j] if centre_xys.size else np.array([])
            ok = np.isfinite(vals)
            out[:, k, j] = (np.interp(mjd, centre_mjds[ok], vals[ok]) if ok.any()
                            else DEFAULT_CENTRE_XY[name][j])
    return out


def _continuous(theta_deg):
    """Unwrap angles and bring the first into (-180, 180]."""
    theta = np.unwrap(np.asarray(theta_deg, float), period=360.0)
    if theta.size:
        theta -= 360.0 * np.floor((theta[0] + 180.0) / 360.0)
        if theta[0] == -180.0:
            theta += 360.0
    return theta


def _measure_psf(flux_files, calibrate, params, flags):
    """Average PSF stamp, flux and FWHM per field over the FLUX files."""
    if not flux_files:
        _flag(flags, "no FLUX frame: no PSF")
        return None, np.full(2, np.nan), np.full(2, np.nan)
    measured = []
    for raw in flux_files:
        fields = split_fields(calibrate(raw, raw.meta))
        per = [measure_psf(fields[k], float(raw.meta["dit"]), raw.meta.get("nd_filter", "OPEN"),
                           guess_xy=DEFAULT_CENTRE_XY[name], search_px=80,
                           scale_xy=ANAMORPHISM_XY["IRDIS"], params=params.psf)
               for k, name in enumerate(FIELDS)]
        measured.append(per)
    return _averaged_psf(measured, flags)


def _averaged_psf(measured, flags):
    # PSF measurements of the FLUX files (one list per file) averaged; flagged when
    # the flux changed between files (shared by the IRDIS and IFS master cubes).
    stamp, flux, fwhm, spread = average_psfs(measured)
    if spread > 0.1:
        _flag(flags, f"PSF flux varies by {100 * spread:.0f} % between FLUX files")
    return stamp, flux, fwhm


def build_master_cube(files, calibrations, *, params=MasterCubeParams()):
    """Chain the level-1 steps on one IRDIS sequence.

    Parameters
    ----------
    files : sequence of `RawFile`
        The sequence's OBJECT, OBJECT,CENTER and OBJECT,FLUX files (SKY files are
        backgrounds: pass their master in ``calibrations``); any order.
    calibrations : `Calibrations`
        Master backgrounds per DIT, flat, bad-pixel map.
    params : `~reduction.level1.params.MasterCubeParams`, optional

    Returns
    -------
    cube : `MasterCube`
        Degraded steps (missing background, failed centring, angle disagreement, ...)
        are listed in ``cube.flags`` and emitted as `Level1Warning`.

    Raises
    ------
    SequenceError
        If there is no OBJECT file, or a file is not an IRDIS frame.
    """
    from astropy.table import Table

    by_type = _science_files_by_type(files, params.crop_px)
    flags = []
    calibrate = _Calibrator(calibrations, flags)

    # Angles first: they need only metadata.
    rows = []
    for raw in by_type["OBJECT"]:
        mid, parang, computed, theta = _file_angles(raw.meta, params, flags)
        for i in range(mid.size):
            rows.append((raw.meta.get("arcfile", ""), i, mid[i], parang[i], computed[i], theta[i]))
    n_time = len(rows)
    mjd = np.array([r[2] for r in rows])
    derot = _continuous([r[5] for r in rows])

    c_mjd, c_xy, centres = _measure_centres(by_type["OBJECT,CENTER"], calibrate, params, flags)
    if not by_type["OBJECT,CENTER"]:
        c_mjd, c_xy = _symmetry_centres(by_type["OBJECT"][0], calibrate, flags)
    frame_xy = _centres_at(mjd, c_mjd, c_xy)

    crop = params.crop_px
    science = np.empty((2, n_time, crop, crop), np.float32)
    dead = split_fields(irdis_dead_zone_mask())
    t = 0
    for raw in by_type["OBJECT"]:
        fields = split_fields(calibrate(raw, raw.meta))
        fields = normalise_flux(fields, float(raw.meta["dit"]), raw.meta.get("nd_filter", "OPEN"))
        for i in range(fields.shape[1]):
            for k in range(2):
                science[k, t] = recentre(fields[k, i], frame_xy[t, k], crop,
                                         scale_xy=ANAMORPHISM_XY["IRDIS"], invalid=dead[k],
                                         order=params.spline_order)
            t += 1
        del fields

    sel = [select_frames(science[k], params=params.selection) for k in range(2)]
    selected = sel[0].selected & sel[1].selected
    reason = np.array(["; ".join(f"{name}:{s.reason[j]}" for name, s in zip(FIELDS, sel)
                                 if s.reason[j]) for j in range(n_time)], dtype=object)

    psf, psf_flux, psf_fwhm = _measure_psf(by_type["OBJECT,FLUX"], calibrate, params, flags)

    table = Table({"file": [r[0] for r in rows], "index": [r[1] for r in rows],
                   "mjd_mid": mjd, "parang_deg": [r[3] for r in rows],
                   "parang_computed_deg": [r[4] for r in rows], "derot_deg": derot,
                   "selected": selected, "reason": reason.astype(str),
                   "centre_x_left": frame_xy[:, 0, 0], "centre_y_left": frame_xy[:, 0, 1],
                   "centre_x_right": frame_xy[:, 1, 0], "centre_y_right": frame_xy[:, 1, 1]})
    return MasterCube(science=science, derot_deg=derot, psf=psf, psf_flux_adu_s=psf_flux,
                      psf_fwhm_px=psf_fwhm, frames=table, centres=centres,
                      wavelengths_um=irdis_wavelengths_um(by_type["OBJECT"][0].meta.get("filter")),
                      pixscale_arcsec=PIXSCALE_ARCSEC["IRDIS"], flags=flags)
