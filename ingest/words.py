"""Plain words for the codes ingest stores, for people who are not SPHERE experts.

Missing calibrations (``flat:BB_Ks``), calibration warnings
(``background:0.84: no SKY, DARK used``, ``flat:DB_H23: far, -3.2 days``) and
sequence quality flags (``small_field_rotation``) are
stored as short codes; the portal and the reports show these sentences.
"""
from .limits import SEEING_LIMIT_ARCSEC, TAU0_LIMIT_S

__all__ = ["describe_missing", "describe_warning", "describe_flag"]

_IFS_MISSING = {
    "ifs_specpos": "No IFS spectra-position calibration (SPECPOS,LAMP): the "
                   "spectra of the lenslets cannot be located on the detector, so "
                   "no data cube can be extracted.",
    "ifs_wave": "No IFS wavelength calibration (WAVE,LAMP): the wavelength of "
                "each channel of the cube is unknown.",
    "ifs_ifu_flat": "No IFS integral-field-unit flat: lenslet-to-lenslet "
                    "transmission differences cannot be corrected; spectra are "
                    "less reliable.",
}

_FLAGS = {
    "ao_loop_open": "The adaptive optics loop was open during part of the "
                    "sequence: the images are not corrected and are of little use "
                    "for high-contrast work.",
    "no_object": "The sequence has no science (OBJECT) exposure, only "
                 "auxiliary frames.",
    "no_center": "No star-centre frame (OBJECT,CENTER with waffle spots): the "
                 "star position behind the coronagraph must be guessed, so "
                 "astrometry of companions is less accurate.",
    "no_flux": "No off-axis star image (OBJECT,FLUX): the brightness of the "
               "star is not measured, so contrasts and companion fluxes cannot "
               "be calibrated.",
    "small_field_rotation": "The sky rotated too little during the sequence "
                            "(less than one beam width at 0.1 arcsec): angular "
                            "differential imaging will subtract close-in "
                            "companions along with the star's light.",
    "bad_seeing": f"Poor seeing (above {SEEING_LIMIT_ARCSEC:g} arcsec): the "
                  "adaptive optics correction and the reachable contrast are "
                  "degraded.",
    "short_tau0": f"Fast turbulence (coherence time below "
                  f"{TAU0_LIMIT_S * 1e3:g} ms): the adaptive optics lags behind "
                  "the atmosphere, leaving more residual starlight.",
}


def describe_missing(code):
    """Say in words what a missing-calibration code means and what it costs.

    Parameters
    ----------
    code : str
        A code of `ingest.calibs.associate` (``'flat:BB_Ks'``,
        ``'background:0.84'``, ``'ifs_wave'``...).

    Returns
    -------
    text : str
        One or two sentences; unknown codes are returned in a generic sentence.
    """
    kind, _, value = code.partition(":")
    if kind == "flat":
        return (f"No flat field for filter {value}: pixel-to-pixel sensitivity "
                "differences cannot be corrected; photometry is less reliable.")
    if kind == "background":
        return (f"No sky or dark frame with an integration time of {value} s: the "
                "thermal background and detector signal cannot be subtracted from "
                "the frames taken with that integration time.")
    if kind == "ifs_flat":
        return (f"No IFS detector flat for the {value} lamp setting (2 files "
                "needed): pixel sensitivity differences cannot be corrected "
                "before the spectra are extracted.")
    if kind == "ifs_dark":
        return (f"No dark frame with an integration time of {value} s, needed to "
                "process the IFS calibration lamps.")
    if code in _IFS_MISSING:
        return _IFS_MISSING[code]
    return f"A required calibration is missing ({code})."


def describe_warning(warning):
    """Say in words what a calibration warning means.

    Parameters
    ----------
    warning : str
        A warning of `ingest.calibs.associate`: ``'<role>:<key>: no SKY,
        <type> used'`` or ``'<role>:<key>: far, <days> days'``.

    Returns
    -------
    text : str
    """
    what, _, detail = warning.partition(": ")
    role, _, key = what.partition(":")
    if detail.startswith("no SKY"):
        used = detail.removeprefix("no SKY, ").removesuffix(" used")
        return (f"No sky frame with an integration time of {key} s: a {used} frame "
                "is used instead; it removes the detector signal but not all of the "
                "sky and telescope thermal background.")
    if detail.startswith("far"):
        limit = "20 days" if role == "distortion" else "1 day"
        return (f"The {role.replace('_', ' ')} calibration for {key} was taken more "
                f"than {limit} away from the observations ({detail.removeprefix('far, ')}); "
                "the instrument may have changed in between.")
    return f"Calibration warning: {warning}."


def describe_flag(flag):
    """Say in words what a sequence quality flag means.

    Parameters
    ----------
    flag : str
        One of `ingest.sequences.QUALITY_FLAGS`.

    Returns
    -------
    text : str
    """
    return _FLAGS.get(flag, f"Quality flag {flag}.")
