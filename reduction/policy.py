"""What to do when calibrations are missing: reduce with a flag, or refuse.

The rules (decided here, documented once):

- Only raw IRDIS sequences go through the level-1 IRDIS recipe; IFS cubes
  reduced upstream (``sph_ifs_science_dr``) and other arms are refused with
  that reason (nothing to pre-reduce here).
- No OBJECT file: refused.
- A background for every OBJECT DIT is required: without it the thermal
  background and detector structure of IRDIS stay in the science frames and
  in the ADI residuals, which a per-frame median cannot remove. Refused.
- The OBJECT background is not a SKY but a DARK,BACKGROUND (or a DARK):
  reduced, flagged ``background_fallback:<DIT>:<kind>`` (the sky level and
  its small offset are left in; a DARK also leaves the instrument's thermal
  emission).
- No background for a CENTER or FLUX DIT: reduced, flagged
  ``background_missing:<DIT>:<types>``: the waffle spots are fitted locally
  and the PSF flux uses a local background annulus, so a per-frame median
  subtraction is enough there.
- No flat for the filter (``flat:<IFLT>``): reduced without flat-fielding,
  flagged ``no_flat:<IFLT>``; the bad-pixel map then comes from the dark alone.
- A calibration taken more than 1 day away: used, flagged ``far:<role>:<key>``.
"""
import dataclasses

__all__ = ["CalibrationPlan", "plan_calibrations", "DIT_TOLERANCE_S"]

#: Two DITs closer than this are the same (s), as in the association rules.
DIT_TOLERANCE_S = 0.01
_SCIENCE_TYPES = ("OBJECT", "OBJECT,CENTER", "OBJECT,FLUX")
_KIND_RANK = {"SKY": 0, "DARK,BACKGROUND": 1, "DARK": 2}


@dataclasses.dataclass(frozen=True)
class CalibrationPlan:
    """Calibrations chosen for one sequence.

    Attributes
    ----------
    refused : str or None
        Why the sequence cannot be reduced (None: it can).
    backgrounds : dict of str to list of dict
        Per DIT key ('32.00'), the association rows of the background files to
        combine (all of the best kind available).
    flats : list of dict
        Association rows of the FLAT,LAMP files (empty: no flat-fielding).
    object_dit_key : str or None
        DIT key of the OBJECT files (the master dark of the bad-pixel map).
    flags : list of str
        Quality flags of the plan.
    """
    refused: object
    backgrounds: dict
    flats: list
    object_dit_key: object
    flags: list


def _dit_key(dit_s):
    return f"{float(dit_s):.2f}"


def plan_calibrations(sequence, files, associations):
    """Choose the calibrations of a sequence and apply the missing-calibration policy.

    Parameters
    ----------
    sequence : dict
        ``sphere.sequences`` row (``arm``, ``level``, ``filter``, ``sequence_id``).
    files : list of dict
        The sequence's files (``dpr_type``, ``dit`` in s).
    associations : list of dict
        ``sphere.calib_associations`` rows (``role``, ``calib_key``, ``dpr_type``,
        ``is_far``, ``checksum``, ...).

    Returns
    -------
    plan : `CalibrationPlan`
        ``plan.refused`` holds the reason when the policy refuses the sequence.
    """
    flags = []

    def refuse(reason):
        return CalibrationPlan(reason, {}, [], None, flags)

    if sequence.get("arm") != "IRDIS":
        return refuse(f"the level-1 recipe reduces IRDIS sequences; this one is "
                      f"{sequence.get('arm')} (level {sequence.get('level')})")
    if sequence.get("level") == "reduced":
        return refuse("files already reduced upstream: no level-1 pre-reduction to do")
    objects = [f for f in files if f["dpr_type"] == "OBJECT"]
    if not objects:
        return refuse("the sequence has no OBJECT file")
    object_dits = sorted({_dit_key(f["dit"]) for f in objects})

    by_dit = {}
    for a in associations:
        if a["role"] == "background":
            by_dit.setdefault(a["calib_key"], []).append(a)
    backgrounds = {}
    for key, rows in by_dit.items():
        best = min(_KIND_RANK.get(r["dpr_type"], 9) for r in rows)
        backgrounds[key] = sorted((r for r in rows if _KIND_RANK.get(r["dpr_type"], 9) == best),
                                  key=lambda r: r["checksum"])

    missing = [k for k in object_dits if k not in backgrounds]
    if missing:
        return refuse(f"no background (SKY, DARK,BACKGROUND or DARK) for the OBJECT DIT "
                      f"{', '.join(missing)} s: the thermal background and detector "
                      "structure would stay in the science frames and the ADI residuals")
    for key in object_dits:
        kind = backgrounds[key][0]["dpr_type"]
        if kind != "SKY":
            flags.append(f"background_fallback:{key}:{kind}")
    for dpr_type in ("OBJECT,CENTER", "OBJECT,FLUX"):
        for key in sorted({_dit_key(f["dit"]) for f in files if f["dpr_type"] == dpr_type}):
            if key not in backgrounds:
                flags.append(f"background_missing:{key}:{dpr_type}")

    flats = sorted((a for a in associations if a["role"] == "flat"), key=lambda r: r["checksum"])
    if len(flats) < 2 or len({round(float(a["dit"]), 2) for a in flats}) < 2:
        flags.append(f"no_flat:{sequence.get('filter')}")
        flats = []
    for a in associations:
        if a.get("is_far") and a["role"] in ("background", "flat"):
            flags.append(f"far:{a['role']}:{a['calib_key']}")
    return CalibrationPlan(None, backgrounds, flats, max(object_dits, key=float),
                           sorted(set(flags)))
