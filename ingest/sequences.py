"""Group science files into observing sequences, with their quality flags.

Grouping rule (shared contract): science files (DPR CATG SCIENCE) are grouped
by (night, arm, OBS ID, TPL ID, filter); within a group, a gap of more than
one hour between the end of a file and the start of the next starts a new
sequence. One sort, then one pass: O(n log n) in the number of files.

Quality flags computed here need no calibration (see `QUALITY_FLAGS`); the
parallactic-angle cross-check needs astropy coordinates and belongs to
level 1 of the reduction.
"""
import collections
import math

import numpy as np

from .limits import GAP_HOURS, SEEING_LIMIT_ARCSEC, TAU0_LIMIT_S

__all__ = ["group_sequences", "min_field_rotation_deg", "QUALITY_FLAGS",
           "SEEING_LIMIT_ARCSEC", "TAU0_LIMIT_S", "GAP_HOURS"]

#: Separation at which the field rotation must move a source by one FWHM.
INNER_SEP_ARCSEC = 0.1
#: VLT unit telescope diameter, for lambda/D.
TELESCOPE_DIAMETER_M = 8.2
#: The flags `group_sequences` may set, in the order they are listed.
QUALITY_FLAGS = ("ao_loop_open", "no_object", "no_center", "no_flux",
                 "small_field_rotation", "bad_seeing", "short_tau0")

# Mean wavelength (um) of each filter, for lambda/D (SPHERE user manual values).
_FILTER_WAVELENGTH_UM = {
    "DB_Y23": 1.049, "DB_J23": 1.232, "DB_H23": 1.628, "DB_NDH23": 1.628,
    "DB_H34": 1.700, "DB_K12": 2.181, "BB_Y": 1.043, "BB_J": 1.245,
    "BB_H": 1.625, "BB_Ks": 2.182, "YJ": 1.15, "YJH": 1.40,
}
_DEFAULT_WAVELENGTH_UM = 1.6  # H band, the most used
_COUNTED_TYPES = {"OBJECT": "n_object", "OBJECT,CENTER": "n_center",
                  "OBJECT,FLUX": "n_flux", "SKY": "n_sky"}
_RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0


def group_sequences(rows, *, gap_hours=GAP_HOURS):
    """Group the science rows into sequences.

    Parameters
    ----------
    rows : iterable of dict
        Rows of `ingest.classify.classify`, each with ``checksum`` added
        (and optionally ``file_name``). Non-science rows are ignored.
    gap_hours : float, optional
        A gap longer than this between consecutive files starts a new
        sequence.

    Returns
    -------
    sequences : list of dict
        Sorted by start time. Keys: ``sequence_id`` (``'<arm>.<date_obs of
        the first file>'``), ``arm, ins_mode, filter, coronagraph,
        derot_mode, target_name, ra, dec`` (deg, mean of the files),
        ``night, mjd_start, mjd_end`` (MJD UTC, end of the last exposure),
        ``prog_id, obs_id, level, n_files, n_object, n_center, n_flux,
        n_sky, exptime_object`` (s), ``field_rotation_deg`` (parallactic
        angle range of the OBJECT files, unwrapped across +/-180; None
        without angles), ``seeing_arcsec, tau0_s`` (medians over OBJECT
        files), ``quality_flags`` (list of `QUALITY_FLAGS`), and ``files``
        (list of dicts ``arcfile, checksum, file_name, dpr_type, dit,
        mjd_obs, mjd_end``, in time order).
    """
    science = [r for r in rows if r.get("dpr_catg") == "SCIENCE"]
    science.sort(key=lambda r: (_group_key(r), r["mjd_obs"], r["arcfile"]))
    gap_days = gap_hours / 24.0
    sequences = []
    members = []
    key = end = None
    for row in science:
        row_key = _group_key(row)
        if members and (row_key != key or row["mjd_obs"] - end > gap_days):
            sequences.append(_summarise(members))
            members = []
        if not members:
            key, end = row_key, row["mjd_end"]
        members.append(row)
        end = max(end, row["mjd_end"])
    if members:
        sequences.append(_summarise(members))
    sequences.sort(key=lambda s: (s["mjd_start"], s["sequence_id"]))
    return sequences


def min_field_rotation_deg(filter_name):
    """Field rotation moving a source at 0.1 arcsec by one lambda/D.

    Parameters
    ----------
    filter_name : str or None
        Filter (``'DB_H23'``, ``'BB_Ks'``, ``'YJ'``...); unknown ones count
        as H band.

    Returns
    -------
    rotation_deg : float
        Minimum useful field rotation for ADI (deg).
    """
    wavelength_um = _FILTER_WAVELENGTH_UM.get(filter_name, _DEFAULT_WAVELENGTH_UM)
    fwhm_arcsec = wavelength_um * 1e-6 / TELESCOPE_DIAMETER_M * _RAD_TO_ARCSEC
    return math.degrees(fwhm_arcsec / INNER_SEP_ARCSEC)


def _group_key(row):
    # (is None, value) pairs so that None sorts beside values of any type.
    return tuple((v is None, v if v is not None else 0) for v in
                 (row.get("night"), row.get("arm"), row.get("obs_id"),
                  row.get("tpl_id"), row.get("filter")))


def _summarise(members):
    """One sequence from its rows (already in time order)."""
    first = members[0]
    objects = [r for r in members if r.get("dpr_type") == "OBJECT"]
    main = objects or members
    counts = collections.Counter(_COUNTED_TYPES.get(r.get("dpr_type")) for r in members)
    # SKY frames point at an offset field: the star is where the others point.
    ra, dec = _mean_position([r for r in members if r.get("dpr_type") != "SKY"] or members)
    seq = {
        "sequence_id": f"{first['arm']}.{first['date_obs']}",
        "arm": first["arm"],
        "ins_mode": _most_common(r.get("ins_mode") for r in main),
        "filter": first.get("filter"),
        "coronagraph": _most_common(r.get("coronagraph") for r in main),
        "derot_mode": _most_common(r.get("derot_mode") for r in main),
        "target_name": _most_common(r.get("target_name") for r in main),
        "ra": ra,
        "dec": dec,
        "night": first.get("night"),
        "mjd_start": first["mjd_obs"],
        "mjd_end": max(r["mjd_end"] for r in members),
        "prog_id": _most_common(r.get("prog_id") for r in members),
        "obs_id": first.get("obs_id"),
        "level": _most_common(r.get("level") for r in members),
        "n_files": len(members),
        "n_object": counts["n_object"],
        "n_center": counts["n_center"],
        "n_flux": counts["n_flux"],
        "n_sky": counts["n_sky"],
        "exptime_object": float(sum(r.get("exptime") or 0.0 for r in objects)),
        "field_rotation_deg": _field_rotation_deg(objects),
        "seeing_arcsec": _median(r.get("seeing_arcsec") for r in objects),
        "tau0_s": _median(r.get("tau0_s") for r in objects),
        "files": [{k: r.get(k) for k in ("arcfile", "checksum", "file_name",
                                          "dpr_type", "dit", "mjd_obs", "mjd_end")}
                  for r in members],
    }
    seq["quality_flags"] = _quality_flags(seq, members)
    return seq


def _quality_flags(seq, members):
    flags = set()
    if any(r.get("ao_loop_closed") is False for r in members
           if r.get("dpr_type") != "SKY"):
        flags.add("ao_loop_open")
    for count, flag in (("n_object", "no_object"), ("n_center", "no_center"),
                        ("n_flux", "no_flux")):
        if seq[count] == 0:
            flags.add(flag)
    rotation = seq["field_rotation_deg"]
    if (seq["derot_mode"] == "ELEV" and rotation is not None
            and rotation < min_field_rotation_deg(seq["filter"])):
        flags.add("small_field_rotation")
    if seq["seeing_arcsec"] is not None and seq["seeing_arcsec"] > SEEING_LIMIT_ARCSEC:
        flags.add("bad_seeing")
    if seq["tau0_s"] is not None and seq["tau0_s"] < TAU0_LIMIT_S:
        flags.add("short_tau0")
    return [f for f in QUALITY_FLAGS if f in flags]


def _field_rotation_deg(objects):
    """Range of the parallactic angle over the OBJECT files, unwrapped."""
    angles = [a for r in objects for a in (r.get("parang_start"), r.get("parang_end"))
              if a is not None]
    if not angles:
        return None
    unwrapped = np.unwrap(np.radians(angles))
    return float(np.degrees(np.ptp(unwrapped)))


def _mean_position(members):
    pos = np.array([(r["ra"], r["dec"]) for r in members
                    if r.get("ra") is not None and r.get("dec") is not None],
                   dtype=float).reshape(-1, 2)
    if not len(pos):
        return None, None
    ra_rad = np.radians(pos[:, 0])
    # Circular mean: a target at RA 359.99/0.01 deg must not average to 180.
    ra = math.degrees(math.atan2(np.sin(ra_rad).mean(), np.cos(ra_rad).mean())) % 360.0
    return ra, float(pos[:, 1].mean())


def _most_common(values):
    """Most frequent non-None value (first seen wins ties), or None."""
    counts = collections.Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None
