"""Classify one SPHERE file from its header keywords.

`classify` turns the header dict of `ingest.fitsfiles.read_file` (keys as in
`ingest.keywords`) into the row of ``sphere.raw_files``: what the file is
(DPR CATG/TYPE/TECH, arm, mode, filter), when (MJD, ISO date, night), where
(target, RA, Dec), in which OB and template, and the observing conditions.
The rules are those of SPHERE-DATA.md and the shared contract.
"""
import datetime

from .exceptions import NotClassifiable, NotSphere

__all__ = ["classify", "night_of", "mjd_to_iso", "iso_to_mjd"]

_MJD_EPOCH = datetime.datetime(1858, 11, 17)
# The IFS science modes and the band they cover (shared contract).
_IFS_FILTER = {"OBS_YJ": "YJ", "OBS_H": "YJH"}
_ALWAYS_REQUIRED = ("ESO DPR CATG", "ESO DPR TYPE", "ESO SEQ ARM")
# Dates disagreeing by more than this get a quality note.
_DATE_TOLERANCE_S = 1.0


def classify(header, file_name):
    """Build the ``sphere.raw_files`` row of one file.

    Parameters
    ----------
    header : dict
        Keyword -> value, keys as astropy names them (``'ESO DPR CATG'``
        for ``HIERARCH ESO DPR CATG``), as returned by
        `ingest.fitsfiles.read_file`.
    file_name : str
        Name of the file, used as ``arcfile`` when ARCFILE is absent.

    Returns
    -------
    row : dict
        Keys ``arcfile, dpr_catg, dpr_type, dpr_tech, arm, ins_mode, filter,
        coronagraph, nd_filter, derot_mode, dit`` (s), ``ndit, exptime`` (s),
        ``mjd_obs`` (MJD UTC, start), ``mjd_end`` (MJD UTC, end of the last
        frame), ``date_obs`` (ISO, ms), ``night`` ('YYYY-MM-DD'),
        ``target_name, ra, dec`` (deg), ``prog_id, obs_id, obs_name, pi_coi,
        tpl_id, tpl_start, tpl_expno, tpl_nexp, parang_start, parang_end``
        (deg), ``drot2_posang, drot2_begin`` (deg), ``alt_deg, airmass,
        seeing_arcsec, tau0_s, ao_loop_closed`` (bool or None),
        ``waffle_orient, level`` ('raw' or 'reduced'), ``pro_rec_id,
        pro_catg, quality_notes`` (list of str). Absent values are None.

    Raises
    ------
    ingest.exceptions.NotSphere
        If INSTRUME is present and is not SPHERE.
    ingest.exceptions.NotClassifiable
        If keywords needed to classify the file are missing (named in the
        reason and in ``.missing``).
    """
    instrument = header.get("INSTRUME")
    if instrument is not None and str(instrument).strip().upper() != "SPHERE":
        raise NotSphere(f"INSTRUME is {instrument!r}, not SPHERE")
    _check_required(header)
    notes = []
    arm = str(header["ESO SEQ ARM"]).strip()
    mjd_obs, date_obs = _start_time(header, notes)
    dit = _float(header.get("ESO DET SEQ1 DIT", header.get("ESO DET DIT1")))
    ndit = _int(header.get("ESO DET NDIT"))
    exptime = _float(header.get("EXPTIME"))
    if exptime is None and dit is not None:
        exptime = dit * (ndit or 1)
    ins_mode = _ins_mode(header, arm)
    pro_rec_id = header.get("ESO PRO REC1 ID")
    row = {
        "arcfile": header.get("ARCFILE") or file_name,
        "dpr_catg": header["ESO DPR CATG"],
        "dpr_type": header["ESO DPR TYPE"],
        "dpr_tech": header.get("ESO DPR TECH"),
        "arm": arm,
        "ins_mode": ins_mode,
        "filter": _filter(header, arm, ins_mode),
        "coronagraph": header.get("ESO INS COMB ICOR"),
        "nd_filter": header.get("ESO INS4 FILT2 NAME"),
        "derot_mode": header.get("ESO INS4 DROT2 MODE"),
        "dit": dit,
        "ndit": ndit,
        "exptime": exptime,
        "mjd_obs": mjd_obs,
        "mjd_end": _end_time(header, mjd_obs, exptime, notes),
        "date_obs": date_obs,
        "night": night_of(mjd_obs),
        "target_name": header.get("OBJECT") or header.get("ESO OBS TARG NAME"),
        "ra": _float(header.get("RA")),
        "dec": _float(header.get("DEC")),
        "prog_id": header.get("ESO OBS PROG ID"),
        "obs_id": _int(header.get("ESO OBS ID")),
        "obs_name": header.get("ESO OBS NAME"),
        "pi_coi": header.get("ESO OBS PI-COI NAME"),
        "tpl_id": header.get("ESO TPL ID"),
        "tpl_start": header.get("ESO TPL START"),
        "tpl_expno": _int(header.get("ESO TPL EXPNO")),
        "tpl_nexp": _int(header.get("ESO TPL NEXP")),
        "parang_start": _float(header.get("ESO TEL PARANG START")),
        "parang_end": _float(header.get("ESO TEL PARANG END")),
        "drot2_posang": _float(header.get("ESO INS4 DROT2 POSANG")),
        # ESO renamed BEGIN to START in June 2021 (SPHERE-DATA.md).
        "drot2_begin": _float(header.get("ESO INS4 DROT2 BEGIN",
                                         header.get("ESO INS4 DROT2 START"))),
        "alt_deg": _float(header.get("ESO TEL ALT")),
        "airmass": _float(header.get("ESO TEL AIRM START")),
        "seeing_arcsec": _positive(header.get("ESO TEL AMBI FWHM START"),
                                   "seeing", notes),
        "tau0_s": _positive(header.get("ESO TEL AMBI TAU0"), "tau0", notes),
        "ao_loop_closed": _ao_loop_closed(header),
        "waffle_orient": header.get("ESO OCS WAFFLE ORIENT"),
        "level": "reduced" if pro_rec_id else "raw",
        "pro_rec_id": pro_rec_id,
        "pro_catg": header.get("ESO PRO CATG"),
        "quality_notes": notes,
    }
    _note_missing(row, header, notes)
    return row


def night_of(mjd_utc):
    """Observing night of a time: the UTC date of ``mjd_utc - 0.5``.

    Parameters
    ----------
    mjd_utc : float
        Time (MJD, UTC).

    Returns
    -------
    night : str
        ``'YYYY-MM-DD'``, the date of the evening (nights run noon to noon UTC).
    """
    return (_MJD_EPOCH + datetime.timedelta(days=mjd_utc - 0.5)).date().isoformat()


def mjd_to_iso(mjd_utc):
    """ISO 8601 string (millisecond precision) of an MJD (UTC)."""
    # Rounded to the ms: float days carry ~1 us of noise that truncation would keep.
    t = _MJD_EPOCH + datetime.timedelta(milliseconds=round(mjd_utc * 86400000.0))
    return t.isoformat(timespec="milliseconds")


def iso_to_mjd(iso):
    """MJD (UTC) of an ISO 8601 date string.

    Raises
    ------
    ValueError
        If the string is not an ISO date.
    """
    return (_parse_iso(iso) - _MJD_EPOCH) / datetime.timedelta(days=1)


def _parse_iso(iso):
    # datetime rather than astropy Time: 50x faster on this per-file hot path,
    # and exact for UTC (MJD counts UTC days).
    t = datetime.datetime.fromisoformat(str(iso).strip().rstrip("Z"))
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return t


def _check_required(header):
    missing = [k for k in _ALWAYS_REQUIRED if _blank(header.get(k))]
    if _blank(header.get("DATE-OBS")) and _blank(header.get("MJD-OBS")):
        missing.append("DATE-OBS (or MJD-OBS)")
    arm = header.get("ESO SEQ ARM")
    if arm in ("IRDIS", "IFS") and _blank(header.get("ESO DET SEQ1 DIT")):
        missing.append("ESO DET SEQ1 DIT")
    if missing:
        raise NotClassifiable("missing keyword(s) needed to classify the file: "
                              + ", ".join(missing), missing)


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _start_time(header, notes):
    """(mjd_obs, date_obs ISO) from MJD-OBS and/or DATE-OBS."""
    date = header.get("DATE-OBS")
    mjd = _float(header.get("MJD-OBS"))
    mjd_from_date = iso = None
    if not _blank(date):
        try:
            t = _parse_iso(date)
            mjd_from_date = (t - _MJD_EPOCH) / datetime.timedelta(days=1)
            iso = t.isoformat(timespec="milliseconds")
        except ValueError:
            if mjd is None:
                raise NotClassifiable(f"DATE-OBS {date!r} is not a date and "
                                      "MJD-OBS is missing", ["MJD-OBS"]) from None
            notes.append(f"DATE-OBS {date!r} is not a date; MJD-OBS used")
    if mjd is None:
        mjd = mjd_from_date
    elif (mjd_from_date is not None
          and abs(mjd - mjd_from_date) * 86400.0 > _DATE_TOLERANCE_S):
        notes.append(f"DATE-OBS and MJD-OBS differ by "
                     f"{(mjd - mjd_from_date) * 86400.0:.1f} s; MJD-OBS used")
    # The ISO form is DATE-OBS normalised to ms (it names sequences).
    return mjd, iso or mjd_to_iso(mjd)


def _end_time(header, mjd_obs, exptime, notes):
    """End of the last frame: DET FRAM UTC when present, else start + EXPTIME."""
    end = mjd_obs + (exptime or 0.0) / 86400.0
    fram = header.get("ESO DET FRAM UTC")
    if not _blank(fram):
        try:
            fram_mjd = iso_to_mjd(fram)
        except ValueError:
            notes.append(f"DET FRAM UTC {fram!r} is not a date")
        else:
            if fram_mjd >= mjd_obs:
                end = max(end, fram_mjd)
    return end


def _ins_mode(header, arm):
    if arm == "IRDIS":
        return header.get("ESO INS1 MODE")
    if arm == "IFS":
        return header.get("ESO INS2 COMB IFS")
    return header.get("ESO INS1 MODE") or header.get("ESO INS2 COMB IFS")


def _filter(header, arm, ins_mode):
    if arm == "IFS":
        return _IFS_FILTER.get(ins_mode, ins_mode)
    return header.get("ESO INS COMB IFLT")


def _ao_loop_closed(header):
    """True if every AO loop reported is closed, None if none is reported."""
    states = [header.get(k) for k in ("ESO AOS HO LOOP STATE", "ESO AOS TT LOOP STATE")]
    states = [str(s).strip().upper() for s in states if not _blank(s)]
    if not states:
        return None
    return all(s in ("CLOSED_LOOP", "CLOSED") for s in states)


def _positive(value, name, notes):
    """A float, with ESO's 'not measured' values (<= 0, e.g. -1) as None."""
    value = _float(value)
    if value is not None and value <= 0:
        notes.append(f"{name} not measured (header value {value:g})")
        return None
    return value


def _note_missing(row, header, notes):
    if row["dpr_catg"] == "SCIENCE" and row["arm"] in ("IRDIS", "IFS"):
        if row["derot_mode"] == "ELEV" and (row["parang_start"] is None
                                            or row["parang_end"] is None):
            notes.append("no TEL PARANG START/END: derotation angles cannot be "
                         "taken from the header")
        if row["ra"] is None or row["dec"] is None:
            notes.append("no RA/DEC: the file cannot be placed on the sky")
        if row["obs_id"] is None or row["tpl_id"] is None:
            notes.append("no OBS ID or TPL ID: grouped with other files lacking them")


def _float(value):
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value):
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
