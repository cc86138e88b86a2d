"""Associate calibration files with a sequence (rules of SPHERE-DATA.md).

IRDIS needs flats (``FLAT,LAMP``, same filter, at least 2 files: all the files
of the closest group in time), and for every DIT of its OBJECT, CENTER and
FLUX files a background: its own ``SKY`` first, then another ``SKY``, then
``DARK,BACKGROUND``, then ``DARK`` (DIT equal within 0.01 s, closest in time
within a kind). A ``LAMP,DISTORT`` of the same filter is used when there is
one and is never missing. IFS raw sequences need 2 flats per calibration
setting, a ``SPECPOS,LAMP``, a ``WAVE,LAMP`` and an IFU flat in the science
mode, a dark at 1.65 s and backgrounds as IRDIS. Sequences of files reduced
upstream (level ``reduced``) need none.

A calibration more than 1 day from the sequence (20 days for distortion) is
used with a warning; a near one of a lower kind beats a far one of a higher
kind (the background level drifts with the instrument's temperature).
Candidates are indexed once per kind and key and sorted in time
(`CalibIndex`), so each look-up is a binary search.

Missing-calibration codes (shared contract): ``flat:<IFLT>``,
``background:<DIT, 2 decimals>``, ``ifs_flat:<setting>``, ``ifs_specpos``,
``ifs_wave``, ``ifs_ifu_flat``, ``ifs_dark:1.65``. Warnings are
``'<role>:<key>: <what>'``, as in the simulator's truth.json:
``'background:0.84: no SKY, DARK,BACKGROUND used'`` (a fallback) and
``'flat:DB_H23: far, -3.2 days'``; `ingest.words` says them in words.
"""
import collections

import numpy as np

__all__ = ["associate", "calib_status", "CalibIndex", "DIT_TOLERANCE_S",
           "FAR_DAYS", "FAR_DISTORTION_DAYS"]

#: Two DITs closer than this are the same (s).
DIT_TOLERANCE_S = 0.01
#: A calibration further than this from the sequence is used with a warning (days).
FAR_DAYS = 1.0
#: Same, for distortion maps (days).
FAR_DISTORTION_DAYS = 20.0
#: Minimum number of flat files (IRDIS, and IFS per setting).
MIN_FLATS = 2
#: IFS flat settings (``ESO INS2 COMB IFS`` without its band suffix).
IFS_FLAT_SETTINGS = ("CAL_BB_2", "CAL_NB1_1", "CAL_NB2_1", "CAL_NB3_1")
IFS_FLAT_SETTINGS_YJH = IFS_FLAT_SETTINGS + ("CAL_NB4_2",)
#: DIT of the dark the IFS flats need (s).
IFS_DARK_DIT_S = 1.65

_IFS_BAND = {"OBS_YJ": "YJ", "OBS_H": "YJH"}
# Background kinds from the most to the least preferred.
_BACKGROUND_KINDS = ("SKY", "DARK,BACKGROUND", "DARK")
_INDEXED_TYPES = frozenset(("FLAT,LAMP", "LAMP,DISTORT", "SPECPOS,LAMP", "WAVE,LAMP")
                           + _BACKGROUND_KINDS)
# Flats further apart than this are not one group (days), when TPL START is absent.
_FLAT_GROUP_GAP_DAYS = 1.0 / 24.0


class CalibIndex:
    """Calibration candidates by kind and key, each list sorted in time.

    Build it once for many sequences (a night, or a reprocessing campaign)
    and pass it to `associate` instead of the rows.

    Parameters
    ----------
    calib_rows : iterable of dict
        Rows of `ingest.classify.classify` with ``checksum`` added. Rows of
        other types (science, acquisition) are ignored, except SKY.
    """

    def __init__(self, calib_rows):
        lists = collections.defaultdict(list)
        for row in calib_rows:
            dpr_type = row.get("dpr_type")
            if dpr_type not in _INDEXED_TYPES or row.get("mjd_obs") is None:
                continue
            arm = row.get("arm")
            lists[(arm, dpr_type, "filter", row.get("filter"))].append(row)
            lists[(arm, dpr_type, "mode", row.get("ins_mode"))].append(row)
            if row.get("dit") is not None:
                lists[(arm, dpr_type, "dit", _dit_cents(row["dit"]))].append(row)
        self._buckets = {key: _Bucket(rows) for key, rows in lists.items()}
        self._dit_buckets = {}  # exact DIT look-ups, cached across sequences

    def bucket(self, arm, dpr_type, by, value):
        """Candidates of one kind, matched ``by`` 'filter', 'mode' or 'dit'."""
        if by != "dit":
            return self._buckets.get((arm, dpr_type, by, value), _EMPTY)
        key = (arm, dpr_type, float(value))
        if key not in self._dit_buckets:
            # The DIT key is rounded: also look at the neighbouring keys.
            cents = _dit_cents(value)
            rows = [r for c in (cents - 1, cents, cents + 1)
                    for r in self._buckets.get((arm, dpr_type, "dit", c), _EMPTY).rows
                    if abs(r["dit"] - value) <= DIT_TOLERANCE_S + 1e-9]
            self._dit_buckets[key] = _Bucket(rows) if rows else _EMPTY
        return self._dit_buckets[key]


class _Bucket:
    """Rows sorted by start time, with a binary search for the nearest."""

    def __init__(self, rows):
        self.rows = sorted(rows, key=lambda r: (r["mjd_obs"], r.get("arcfile") or ""))
        self.mjd = np.array([r["mjd_obs"] for r in self.rows], dtype=float)
        self._groups = None

    def nearest(self, mjd):
        """The row nearest in time to ``mjd`` (the earlier on a tie), or None."""
        if not self.rows:
            return None
        i = int(np.searchsorted(self.mjd, mjd))
        best = [j for j in (i - 1, i) if 0 <= j < len(self.rows)]
        j = min(best, key=lambda k: (abs(self.mjd[k] - mjd), k))
        return self.rows[j]

    def groups(self):
        """The rows split into groups (same TPL START, else no gap over 1 h).

        Returns ``(groups, mean_mjd)``: lists of rows and their mean start times.
        """
        if self._groups is None:
            groups = []
            for row in self.rows:
                if groups and _same_group(groups[-1][-1], row):
                    groups[-1].append(row)
                else:
                    groups.append([row])
            mean_mjd = np.array([np.mean([r["mjd_obs"] for r in g]) for g in groups])
            self._groups = (groups, mean_mjd)
        return self._groups


_EMPTY = _Bucket([])


def associate(sequence, science_rows, calib_rows):
    """Choose the calibrations of one sequence.

    Parameters
    ----------
    sequence : dict
        A sequence of `ingest.sequences.group_sequences` (uses
        ``sequence_id, arm, ins_mode, filter, level, mjd_start, mjd_end``).
    science_rows : list of dict or None
        The sequence's own files (``dpr_type, dit, mjd_obs, arcfile,
        checksum``); None takes ``sequence['files']``.
    calib_rows : iterable of dict or CalibIndex
        Calibration candidates (classification rows with ``checksum``),
        typically those within 20 days; SKY files of other sequences may be
        included. Pass a `CalibIndex` when associating many sequences.

    Returns
    -------
    associations : list of dict
        ``sequence_id, role`` ('flat', 'background', 'distortion',
        'ifs_flat', 'ifs_specpos', 'ifs_wave', 'ifs_ifu_flat', 'ifs_dark'),
        ``calib_key`` (filter, mode or DIT '16.00'), ``arcfile, checksum,
        dpr_type, delta_days`` (calibration start minus sequence mid-time,
        days), ``is_far`` (bool).
    missing_codes : list of str
        Missing calibrations (codes of the shared contract), sorted.
    warnings : list of str
        Warnings (``'background:0.84: no SKY, DARK used'``, ``'flat:DB_H23:
        far, -3.2 days'``), without duplicates, flats first then backgrounds
        by increasing DIT.
    """
    if not _needs_calibrations(sequence):
        return [], [], []
    index = calib_rows if isinstance(calib_rows, CalibIndex) else CalibIndex(calib_rows)
    own = science_rows if science_rows is not None else sequence["files"]
    ctx = _Context(sequence, index)
    if sequence["arm"] == "IRDIS":
        filt = sequence.get("filter")
        ctx.flats("flat", index.bucket("IRDIS", "FLAT,LAMP", "filter", filt),
                  filt, f"flat:{filt}")
        ctx.backgrounds(own)
        ctx.single("distortion", index.bucket("IRDIS", "LAMP,DISTORT", "filter", filt),
                   filt, None, FAR_DISTORTION_DAYS)
    else:
        _associate_ifs(ctx, index, sequence, own)
    return ctx.associations, sorted(set(ctx.missing)), list(dict.fromkeys(ctx.warnings))


def calib_status(sequence, missing_codes, warnings):
    """Summarise an association as ``sphere.sequences.calib_status``.

    Parameters
    ----------
    sequence : dict
        The sequence (its ``arm`` and ``level`` decide whether calibrations
        are needed).
    missing_codes, warnings : list of str
        As returned by `associate`.

    Returns
    -------
    status : {'complete', 'complete_with_warnings', 'incomplete', 'not_required'}
    """
    if not _needs_calibrations(sequence):
        return "not_required"
    if missing_codes:
        return "incomplete"
    return "complete_with_warnings" if warnings else "complete"


def _needs_calibrations(sequence):
    # ZIMPOL rules are not written yet: its sequences are not judged.
    return sequence.get("level") != "reduced" and sequence.get("arm") in ("IRDIS", "IFS")


def _associate_ifs(ctx, index, sequence, own):
    mode = sequence.get("ins_mode")
    band = _IFS_BAND.get(mode)
    settings = IFS_FLAT_SETTINGS_YJH if band == "YJH" else IFS_FLAT_SETTINGS
    for setting in settings:
        cal_mode = f"{setting}_{band}"
        ctx.flats("ifs_flat", index.bucket("IFS", "FLAT,LAMP", "mode", cal_mode),
                  cal_mode, f"ifs_flat:{setting}")
    for role, dpr_type in (("ifs_specpos", "SPECPOS,LAMP"), ("ifs_wave", "WAVE,LAMP"),
                           ("ifs_ifu_flat", "FLAT,LAMP")):
        ctx.single(role, index.bucket("IFS", dpr_type, "mode", mode), mode, role, FAR_DAYS)
    dark_key = f"{IFS_DARK_DIT_S:.2f}"
    ctx.choose("ifs_dark", dark_key, f"ifs_dark:{dark_key}", FAR_DAYS,
               [index.bucket("IFS", kind, "dit", IFS_DARK_DIT_S)
                for kind in ("DARK", "DARK,BACKGROUND")], rank_kinds=False)
    ctx.backgrounds(own)


class _Context:
    """Collects the associations, missing codes and warnings of one sequence."""

    def __init__(self, sequence, index):
        self.seq = sequence
        self.index = index
        self.mid = 0.5 * (sequence["mjd_start"] + sequence["mjd_end"])
        self.associations, self.missing, self.warnings = [], [], []

    def add(self, role, key, row, far_days):
        delta = float(row["mjd_obs"] - self.mid)
        is_far = abs(delta) > far_days
        if is_far:
            self.warnings.append(f"{role}:{key}: far, {delta:+.1f} days")
        self.associations.append({
            "sequence_id": self.seq["sequence_id"], "role": role, "calib_key": key,
            "arcfile": row.get("arcfile"), "checksum": row.get("checksum"),
            "dpr_type": row.get("dpr_type"), "delta_days": delta, "is_far": is_far})

    def single(self, role, bucket, key, missing_code, far_days):
        """The nearest file of one bucket; ``missing_code`` None: optional."""
        self.choose(role, key, missing_code, far_days, [bucket], rank_kinds=False)

    def choose(self, role, key, missing_code, far_days, buckets, rank_kinds=True):
        """The best of the buckets' nearest rows; returns it (or None)."""
        best = None
        for kind, bucket in enumerate(buckets):
            row = bucket.nearest(self.mid)
            if row is None:
                continue
            dt = abs(row["mjd_obs"] - self.mid)
            rank = (dt > far_days, kind if rank_kinds else 0, dt)
            if best is None or rank < best[0]:
                best = (rank, row)
        if best is None:
            if missing_code:
                self.missing.append(missing_code)
            return None
        self.add(role, key, best[1], far_days)
        return best[1]

    def flats(self, role, bucket, key, missing_code):
        """All files of the closest group with at least 2 files."""
        groups, mean_mjd = bucket.groups()
        if len(bucket.rows) < MIN_FLATS:
            self.missing.append(missing_code)
            return
        order = np.argsort(np.abs(mean_mjd - self.mid), kind="stable")
        chosen = next((groups[i] for i in order if len(groups[i]) >= MIN_FLATS), None)
        if chosen is None:
            # Only single flats: the nearest ones, enough to reach the minimum.
            chosen = sorted((r for g in groups for r in g),
                            key=lambda r: abs(r["mjd_obs"] - self.mid))[:MIN_FLATS]
        for row in chosen:
            self.add(role, key, row, FAR_DAYS)

    def backgrounds(self, own_rows):
        """A background for every DIT of the OBJECT, CENTER and FLUX files."""
        # The simulator's truth warns about any DIT without SKY, FLUX included.
        arm = self.seq["arm"]
        own_sky = _Bucket([r for r in own_rows if r.get("dpr_type") == "SKY"
                           and r.get("dit") is not None and r.get("mjd_obs") is not None])
        needed = {}
        for row in own_rows:
            if row.get("dpr_type") in ("OBJECT", "OBJECT,CENTER", "OBJECT,FLUX") \
                    and row.get("dit") is not None:
                key = f"{row['dit']:.2f}"
                needed.setdefault(key, row["dit"])
        for key in sorted(needed, key=float):
            dit = needed[key]
            own = _Bucket([r for r in own_sky.rows
                           if abs(r["dit"] - dit) <= DIT_TOLERANCE_S + 1e-9])
            buckets = [own] + [self.index.bucket(arm, kind, "dit", dit)
                               for kind in _BACKGROUND_KINDS]
            row = self.choose("background", key, f"background:{key}", FAR_DAYS, buckets)
            if row is not None and row.get("dpr_type") != "SKY":
                self.warnings.append(f"background:{key}: no SKY, {row['dpr_type']} used")


def _same_group(a, b):
    if a.get("tpl_start") and b.get("tpl_start"):
        return a["tpl_start"] == b["tpl_start"]
    return b["mjd_obs"] - a["mjd_obs"] <= _FLAT_GROUP_GAP_DAYS


def _dit_cents(dit):
    return int(round(float(dit) * 100.0))
