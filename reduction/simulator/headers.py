"""FITS headers of the simulated files, with the ESO keywords of SPHERE-DATA.md.

No wall-clock time is written anywhere: every date comes from the plan, so a
seed gives byte-identical files.
"""
import dataclasses
import datetime

from . import instrument as ins
from .plan import mjd_utc
from ..paranal import PARANAL_ELEV_M, PARANAL_LAT_DEG, PARANAL_LON_DEG

#: Nights from this date write ``INS4 DROT2 START`` instead of ``... BEGIN``.
DROT2_START_FROM = datetime.date(2021, 6, 1)


@dataclasses.dataclass(frozen=True)
class Pointing:
    """Telescope and ambient values of one exposure (None when not pointed at a target).

    Attributes
    ----------
    parang_start_deg, parang_end_deg : float
        Parallactic angle at DATE-OBS and at ``DET FRAM UTC``.
    alt_deg : float
        Altitude at DATE-OBS.
    airmass_start, airmass_end : float
    seeing_start_arcsec, seeing_end_arcsec : float
    tau0_s : float
    """

    parang_start_deg: float
    parang_end_deg: float
    alt_deg: float
    airmass_start: float
    airmass_end: float
    seeing_start_arcsec: float
    seeing_end_arcsec: float
    tau0_s: float


def iso_utc(when, digits=4):
    """ISO 8601 UTC string with ``digits`` decimals of seconds (ESO writes 4)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:20 + digits]


def arcfile_name(start):
    """ESO archive name ``SPHER.YYYY-MM-DDThh:mm:ss.sss.fits`` of an exposure start."""
    return f"SPHER.{iso_utc(start, 3)}.fits"


def build_header(exp, pointing=None):
    """Primary header of one exposure.

    Parameters
    ----------
    exp : `plan.Exposure`
    pointing : `Pointing` or None
        Telescope values (None for calibrations).

    Returns
    -------
    header : `astropy.io.fits.Header`
    """
    from astropy.io import fits

    end = exp.start + datetime.timedelta(milliseconds=int(round(exp.duration_s * 1000)))
    h = fits.Header()
    h["TELESCOP"] = ("ESO-VLT-U3", "ESO telescope name")
    h["INSTRUME"] = ("SPHERE", "Instrument used")
    h["OBJECT"] = (exp.target.name if exp.target else exp.dpr_type, "Target description")
    if exp.target is not None:
        offset = 0.01 if exp.kind == "sky" else 0.0  # sky field 36" away
        h["RA"] = (round(exp.target.ra_deg + offset, 6), "[deg] ICRS right ascension")
        h["DEC"] = (round(exp.target.dec_deg, 6), "[deg] ICRS declination")
        h["EQUINOX"] = 2000.0
        h["RADESYS"] = "ICRS"
    h["DATE-OBS"] = (iso_utc(exp.start), "UTC start of exposure")
    h["MJD-OBS"] = (round(mjd_utc(exp.start), 8), "[d] MJD (UTC) start of exposure")
    h["EXPTIME"] = (round(exp.dit_s * exp.ndit, 4), "[s] DIT x NDIT")
    h["ARCFILE"] = (arcfile_name(exp.start), "Archive file name")
    h["ORIGIN"] = "ESO-PARANAL"
    hier = {
        "ESO OBS PROG ID": exp.ob.prog_id,
        "ESO OBS ID": exp.ob.obs_id,
        "ESO OBS NAME": exp.ob.obs_name,
        "ESO OBS PI-COI NAME": exp.ob.pi_coi,
        "ESO OBS TARG NAME": exp.target.name if exp.target else "",
        "ESO TPL ID": exp.tpl_id,
        "ESO TPL START": exp.tpl_start.strftime("%Y-%m-%dT%H:%M:%S"),
        "ESO TPL EXPNO": exp.tpl_expno,
        "ESO TPL NEXP": exp.tpl_nexp,
        "ESO DPR CATG": exp.dpr_catg,
        "ESO DPR TYPE": exp.dpr_type,
        "ESO DPR TECH": exp.dpr_tech,
        "ESO SEQ ARM": exp.arm,
        "ESO DET NAME": "IRDIS" if exp.arm == "IRDIS" else "IFS",
        "ESO DET SEQ1 DIT": exp.dit_s,
        "ESO DET NDIT": exp.ndit,
        "ESO DET DITDELAY": ins.FRAME_OVERHEAD_S,
        "ESO DET FRAM UTC": iso_utc(end),
        "ESO INS COMB ICOR": exp.coronagraph,
        "ESO INS COMB IFLT": exp.iflt,
        "ESO INS4 FILT2 NAME": exp.nd_filter,
        "ESO INS4 DROT2 MODE": exp.derot_mode,
    }
    filt_name, opti2, _ = ins.IRDIS_FILTER_KEYS[exp.iflt]
    if exp.arm == "IRDIS":
        hier.update({"ESO INS1 MODE": exp.ins_mode, "ESO INS1 FILT NAME": filt_name,
                     "ESO INS1 OPTI2 NAME": opti2})
    else:
        hier.update({"ESO INS2 COMB IFS": exp.ins_mode, "ESO INS2 MODE": "IFS-YJ"})
    if exp.kind == "center":
        hier.update({"ESO OCS WAFFLE ORIENT": "x", "ESO OCS WAFFLE AMPL": 0.05})
    hier.update({"ESO TEL GEOLAT": PARANAL_LAT_DEG, "ESO TEL GEOLON": PARANAL_LON_DEG,
                 "ESO TEL GEOELEV": PARANAL_ELEV_M})
    if pointing is not None:
        p = pointing
        drot_key = "START" if exp.start.date() >= DROT2_START_FROM else "BEGIN"
        # a pupil-tracking derotator follows (altitude - parallactic angle) / 2
        drot = ((p.alt_deg - p.parang_start_deg) / 2.0) % 360.0
        hier.update({
            f"ESO INS4 DROT2 {drot_key}": round(drot, 4),
            "ESO TEL ALT": round(p.alt_deg, 4),
            "ESO TEL AIRM START": round(p.airmass_start, 4),
            "ESO TEL AIRM END": round(p.airmass_end, 4),
            "ESO TEL PARANG START": round(p.parang_start_deg, 4),
            "ESO TEL PARANG END": round(p.parang_end_deg, 4),
            "ESO TEL AMBI FWHM START": round(p.seeing_start_arcsec, 3),
            "ESO TEL AMBI FWHM END": round(p.seeing_end_arcsec, 3),
            "ESO TEL AMBI TAU0": round(p.tau0_s, 6),
            "ESO AOS HO LOOP STATE": "CLOSED_LOOP",
            "ESO AOS TT LOOP STATE": "CLOSED_LOOP",
        })
    else:
        hier.update({"ESO AOS HO LOOP STATE": "OPEN_LOOP", "ESO AOS TT LOOP STATE": "OPEN_LOOP"})
    for key, value in hier.items():
        h["HIERARCH " + key] = value
    return h


def ifs_product_header(raw_header, wavelengths_um):
    """Header of a ``sph_ifs_science_dr`` cube built on its raw header.

    Parameters
    ----------
    raw_header : `astropy.io.fits.Header`
        Header of the (virtual) raw IFS exposure; it is copied.
    wavelengths_um : `numpy.ndarray`, shape (39,)
        Linear wavelength grid of the cube.

    Returns
    -------
    header : `astropy.io.fits.Header`
    """
    h = raw_header.copy()
    h["CTYPE3"] = ("WAVE", "wavelength axis")
    h["CUNIT3"] = ("um", "")
    h["CRPIX3"] = 1.0
    h["CRVAL3"] = (float(wavelengths_um[0]), "[um] first channel")
    h["CDELT3"] = (float(wavelengths_um[1] - wavelengths_um[0]), "[um] channel width")
    h["BUNIT"] = ("ADU", "per DIT")
    h["HIERARCH ESO PRO REC1 ID"] = "sph_ifs_science_dr"
    h["HIERARCH ESO PRO CATG"] = "IFS_SCIENCE_DR"
    h["HIERARCH ESO PRO REC1 RAW1 NAME"] = h["ARCFILE"]
    return h
