"""The night's observing plan: which exposures, on what, and when.

Times are exact milliseconds, so ``DATE-OBS`` and the archive file name agree.
The targets' right ascensions are chosen so that they transit Paranal during
their sequences (large field rotation for ADI); calibrations are taken in the
morning, before the noon boundary that ends the night.
"""
import dataclasses
import datetime

import numpy as np

from . import instrument as ins

DEFAULT_NIGHT = "2025-04-12"
SEQ_MAIN = "irdis_dbi_main"
SEQ_CI = "irdis_ci_missing"
SEQ_IFS = "ifs_main"

MAIN_OBJECT_DIT_S = 32.0
MAIN_FLUX_DIT_S = 0.84
CI_OBJECT_DIT_S = 8.0
CI_FLUX_DIT_S = 2.0
FLAT_DITS_S = (1.0, 3.0, 6.0)
IFS_DIT_S = {"flux": 2.0, "center": 32.0, "object": 64.0}
#: Start of each IFS exposure after the IRDIS one it accompanies (IRDIFS mode).
IFS_DELAY_S = 0.731


@dataclasses.dataclass(frozen=True)
class Target:
    """A star observed during the night (ICRS degrees)."""

    name: str
    ra_deg: float
    dec_deg: float


@dataclasses.dataclass(frozen=True)
class ObservingBlock:
    """ESO OB identification written in every file it produced."""

    prog_id: str
    obs_id: int
    obs_name: str
    pi_coi: str


@dataclasses.dataclass(frozen=True)
class Exposure:
    """One file of the night (one exposure).

    Attributes
    ----------
    kind : str
        'object', 'center', 'flux', 'sky', 'acq', 'dark', 'dark_bg' or 'flat'.
    arm : str
        'IRDIS' or 'IFS'.
    dpr_catg, dpr_type, dpr_tech : str
    ins_mode : str
        ``INS1 MODE`` (IRDIS) or ``INS2 COMB IFS`` (IFS).
    iflt : str
        ``INS COMB IFLT``.
    coronagraph, nd_filter, derot_mode : str
    dit_s : float
    ndit : int
    start : `datetime.datetime`
        UTC start (DATE-OBS), whole milliseconds.
    target : `Target` or None
    sequence : str or None
    ob : `ObservingBlock`
    tpl_id : str
    tpl_start : `datetime.datetime`
    tpl_expno, tpl_nexp : int
    compression : str
        '' (plain), 'gz' or 'fz'.
    """

    kind: str
    arm: str
    dpr_catg: str
    dpr_type: str
    dpr_tech: str
    ins_mode: str
    iflt: str
    coronagraph: str
    nd_filter: str
    derot_mode: str
    dit_s: float
    ndit: int
    start: datetime.datetime
    target: Target = None
    sequence: str = None
    ob: ObservingBlock = None
    tpl_id: str = ""
    tpl_start: datetime.datetime = None
    tpl_expno: int = 1
    tpl_nexp: int = 1
    compression: str = ""

    @property
    def filter(self):
        """Classification filter: IFLT (IRDIS), 'YJ'/'YJH' (IFS science) or the IFS setting."""
        if self.arm == "IFS":
            return {"OBS_YJ": "YJ", "OBS_H": "YJH"}.get(self.ins_mode, self.ins_mode)
        return self.iflt

    @property
    def level(self):
        """'reduced' for the IFS cubes (written as sph_ifs_science_dr products), else 'raw'."""
        return "reduced" if self.arm == "IFS" else "raw"

    def frame_starts_s(self):
        """Start of each frame, in seconds after ``start``.

        Returns
        -------
        offsets_s : `numpy.ndarray`, shape (ndit,)
        """
        return np.arange(self.ndit) * (self.dit_s + ins.FRAME_OVERHEAD_S)

    @property
    def duration_s(self):
        """From DATE-OBS to the end of the last frame (``DET FRAM UTC``)."""
        return self.ndit * self.dit_s + (self.ndit - 1) * ins.FRAME_OVERHEAD_S


def mjd_utc(when):
    """MJD (UTC) of a naive UTC `datetime.datetime`."""
    return (when - datetime.datetime(1858, 11, 17)).total_seconds() / 86400.0


def _ms(seconds):
    return datetime.timedelta(milliseconds=int(round(seconds * 1000.0)))


def transit_ra_deg(when):
    """Right ascension (deg) on the Paranal meridian at ``when`` (apparent sidereal time)."""
    import astropy.units as u
    from astropy.time import Time

    from ..paranal import PARANAL_LON_DEG, offline_iers

    with offline_iers():
        lst = Time(when, scale="utc").sidereal_time("apparent", longitude=PARANAL_LON_DEG * u.deg)
    return float(lst.to_value(u.deg))


def parse_night(night):
    """'YYYY-MM-DD' (or None for the default night) as a `datetime.date`.

    Raises
    ------
    NightFormatError
        If ``night`` is not an ISO date.
    """
    from .exceptions import NightFormatError

    text = DEFAULT_NIGHT if night is None else night
    try:
        return datetime.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise NightFormatError(night) from None


@dataclasses.dataclass(frozen=True)
class NightPlan:
    """Everything scheduled in one night.

    Attributes
    ----------
    night : `datetime.date`
    targets : dict of str to `Target`
        Keyed by sequence label (the IFS sequence shares the main target).
    exposures : list of `Exposure`
        Sorted by start time.
    """

    night: datetime.date
    targets: dict
    exposures: list


def _lay_out(t0, items):
    """Give consecutive start times to ``items`` (dicts of Exposure fields) from ``t0``."""
    out, t = [], t0
    for item in items:
        out.append(dict(item, start=t))
        dur = item["ndit"] * item["dit_s"] + (item["ndit"] - 1) * ins.FRAME_OVERHEAD_S
        t = t + _ms(dur + ins.FILE_OVERHEAD_S)
    return out


def _pick(n_total, n_kept):
    """Indices of ``n_kept`` files spread over ``n_total`` (small nights keep the time span)."""
    return sorted(set(np.linspace(0, n_total - 1, n_kept).round().astype(int).tolist()))


def _template(items, tpl_id, **common):
    """Number the exposures of one template and attach the common fields."""
    return [Exposure(**dict(common, **item, tpl_id=tpl_id, tpl_start=items[0]["start"],
                            tpl_expno=i + 1, tpl_nexp=len(items)))
            for i, item in enumerate(items)]


def _main_sequence(t_transit, small, target, ob):
    """IRDIS DBI + IFS (IRDIFS) on the first target, and its acquisition."""
    n_obj = 32
    dbi = dict(arm="IRDIS", ins_mode="DBI", iflt="DB_H23", coronagraph="N_ALC_YJH_S",
               derot_mode="ELEV", target=target, ob=ob, dpr_catg="SCIENCE")
    tech = "IMAGE,DUAL,CORONOGRAPHY"
    flux = dict(kind="flux", dpr_type="OBJECT,FLUX", dpr_tech="IMAGE,DUAL", nd_filter="ND_1.0",
                dit_s=MAIN_FLUX_DIT_S, ndit=4)
    center = dict(kind="center", dpr_type="OBJECT,CENTER", dpr_tech=tech, nd_filter="OPEN",
                  dit_s=MAIN_OBJECT_DIT_S, ndit=2)
    obj = dict(kind="object", dpr_type="OBJECT", dpr_tech=tech, nd_filter="OPEN",
               dit_s=MAIN_OBJECT_DIT_S, ndit=2)
    sky = dict(obj, kind="sky", dpr_type="SKY")
    items = [flux, center] + [obj] * n_obj + [center, flux, sky]
    t0 = t_transit - _ms(0.5 * n_obj * (2 * MAIN_OBJECT_DIT_S + 5.3) + 80.0)
    items = _lay_out(t0, items)
    if small:
        keep = {2 + i for i in _pick(n_obj, 4)}
        items = [dict(it, ndit=1) if it["kind"] != "object" else it
                 for i, it in enumerate(items) if it["kind"] != "object" or i in keep]
    objects = [i for i, it in enumerate(items) if it["kind"] == "object"]
    items[objects[1]]["compression"] = "gz"
    irdis = _template(items, "SPHERE_irdifs_obs", sequence=SEQ_MAIN, **dbi)
    ifs_items = []
    picked = [objects[i] for i in _pick(len(objects), 3 if small else 16)]
    for i, it in enumerate(items):
        first = it["kind"] in ("flux", "center") and i < 2
        if first or i in picked:
            ifs_items.append(dict(kind=it["kind"], dpr_type=it["dpr_type"], dpr_tech="IFU",
                                  nd_filter=it["nd_filter"], dit_s=IFS_DIT_S[it["kind"]], ndit=1,
                                  start=it["start"] + _ms(IFS_DELAY_S)))
    ifs_items[3]["compression"] = "fz"  # the second IFS OBJECT cube
    ifs = _template(ifs_items, "SPHERE_irdifs_obs", arm="IFS", ins_mode="OBS_YJ", iflt="DB_H23",
                    coronagraph="N_ALC_YJH_S", derot_mode="ELEV", target=target, ob=ob,
                    dpr_catg="SCIENCE", sequence=SEQ_IFS)
    acq = Exposure(kind="acq", arm="IRDIS", dpr_catg="ACQUISITION", dpr_type="OBJECT",
                   dpr_tech="IMAGE", ins_mode="DBI", iflt="DB_H23", coronagraph="N_NS_CLEAR",
                   nd_filter="ND_3.5", derot_mode="ELEV", dit_s=2.0, ndit=1,
                   start=t0 - _ms(240.0), target=target, ob=ob, tpl_id="SPHERE_irdifs_acq",
                   tpl_start=t0 - _ms(300.0))
    return [acq] + irdis + ifs


def _ci_sequence(t_transit, small, target, ob):
    """IRDIS CI in Ks on the second target: no Ks flat, no SKY, no FLUX background."""
    n_obj = 20
    flux = dict(kind="flux", dpr_type="OBJECT,FLUX", dpr_tech="IMAGE", nd_filter="ND_2.0",
                dit_s=CI_FLUX_DIT_S, ndit=1 if small else 4)
    obj = dict(kind="object", dpr_type="OBJECT", dpr_tech="IMAGE,CORONOGRAPHY", nd_filter="OPEN",
               dit_s=CI_OBJECT_DIT_S, ndit=4)
    items = _lay_out(t_transit - _ms(0.5 * n_obj * (4 * CI_OBJECT_DIT_S + 5.9)), [flux] + [obj] * n_obj)
    if small:
        keep = {1 + i for i in _pick(n_obj, 3)}
        items = [dict(it, ndit=1) for i, it in enumerate(items) if i == 0 or i in keep]
    return _template(items, "SPHERE_irdis_cli_obs", arm="IRDIS", ins_mode="CI", iflt="BB_Ks",
                     coronagraph="N_ALC_Ks", derot_mode="ELEV", target=target, ob=ob,
                     dpr_catg="SCIENCE", sequence=SEQ_CI)


def _calibrations(t0, small, ob):
    """Morning IRDIS calibrations: backgrounds, darks and DB_H23 flats."""
    n = 1 if small else 3
    base = dict(arm="IRDIS", dpr_catg="CALIB", dpr_tech="IMAGE", nd_filter="OPEN",
                derot_mode="ELEV", ob=ob)
    bkg = [dict(kind="dark_bg", dpr_type="DARK,BACKGROUND", ins_mode=m, iflt=f, coronagraph=c,
                dit_s=d, ndit=n)
           for m, f, c, d in (("DBI", "DB_H23", "N_ALC_YJH_S", MAIN_FLUX_DIT_S),
                              ("DBI", "DB_H23", "N_ALC_YJH_S", MAIN_OBJECT_DIT_S),
                              ("CI", "BB_Ks", "N_ALC_Ks", CI_OBJECT_DIT_S))]
    dark = [dict(kind="dark", dpr_type="DARK", ins_mode="DBI", iflt="DB_H23",
                 coronagraph="N_NS_CLEAR", dit_s=MAIN_OBJECT_DIT_S, ndit=n)]
    flat = [dict(kind="flat", dpr_type="FLAT,LAMP", ins_mode="DBI", iflt="DB_H23",
                 coronagraph="N_NS_CLEAR", dit_s=d, ndit=1 if small else 2) for d in FLAT_DITS_S]
    items = _lay_out(t0, bkg + dark)
    out = _template(items, "SPHERE_irdis_cal_dark", **base)
    t1 = items[-1]["start"] + _ms(600.0)
    return out + _template(_lay_out(t1, flat), "SPHERE_irdis_cal_flat", **base)


def plan_night(night, small, rng):
    """Schedule the night.

    Parameters
    ----------
    night : `datetime.date`
        Night label (the evening's date; the night ends at noon UTC next day).
    small : bool
        Fewer, shorter exposures (same structure).
    rng : `numpy.random.Generator`
        Draws the OB identifiers.

    Returns
    -------
    plan : `NightPlan`
    """
    next_day = datetime.datetime.combine(night, datetime.time()) + datetime.timedelta(days=1)
    t_main = next_day + datetime.timedelta(hours=3)
    t_ci = next_day + datetime.timedelta(hours=5, minutes=45)
    main = Target("SIMSTAR-1", round(transit_ra_deg(t_main), 5), -40.1234)
    second = Target("SIMSTAR-2", round(transit_ra_deg(t_ci), 5), -47.6543)
    ids = rng.integers(1_000_000, 9_999_999, 3)
    ob_main = ObservingBlock("0115.C-0123(A)", int(ids[0]), "SIMSTAR-1_IRDIFS_DBI", "Simulated/PI")
    ob_ci = ObservingBlock("0115.C-0456(B)", int(ids[1]), "SIMSTAR-2_IRDIS_CI_Ks", "Simulated/PI")
    ob_cal = ObservingBlock("60.A-9801(S)", int(ids[2]), "Calibration", "UNKNOWN")
    exposures = (_main_sequence(t_main, small, main, ob_main) + _ci_sequence(t_ci, small, second, ob_ci)
                 + _calibrations(next_day + datetime.timedelta(hours=10), small, ob_cal))
    exposures.sort(key=lambda e: (e.start, e.arm))
    return NightPlan(night=night, targets={SEQ_MAIN: main, SEQ_IFS: main, SEQ_CI: second},
                     exposures=exposures)
