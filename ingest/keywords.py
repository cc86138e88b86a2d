"""The FITS keywords ingest keeps from each file header.

Key convention (used by `ingest.fitsfiles.read_file` and
`ingest.classify.classify`): keys are the keyword names as astropy gives them,
i.e. ``HIERARCH ESO DPR CATG`` is ``'ESO DPR CATG'`` and standard keywords are
upper case (``'DATE-OBS'``). Only these keywords are kept, so the header dict
stays small and cheap to pickle between processes.
"""

#: Keywords needed to classify a file, group it and associate calibrations.
CLASSIFICATION_KEYWORDS = (
    "INSTRUME", "ARCFILE", "ORIGFILE", "OBJECT", "RA", "DEC", "DATE-OBS",
    "MJD-OBS", "EXPTIME",
    "ESO DPR CATG", "ESO DPR TYPE", "ESO DPR TECH", "ESO SEQ ARM",
    "ESO INS1 MODE", "ESO INS2 COMB IFS", "ESO INS COMB IFLT",
    "ESO INS COMB ICOR", "ESO INS4 FILT2 NAME", "ESO INS4 DROT2 MODE",
    "ESO INS4 DROT2 POSANG", "ESO INS4 DROT2 BEGIN", "ESO INS4 DROT2 START",
    "ESO INS1 FILT NAME", "ESO INS1 OPTI2 NAME",
    "ESO DET SEQ1 DIT", "ESO DET NDIT", "ESO DET DIT1", "ESO DET FRAM UTC",
    "ESO TEL PARANG START", "ESO TEL PARANG END", "ESO TEL ALT",
    "ESO TEL AIRM START", "ESO TEL AIRM END", "ESO TEL AMBI FWHM START",
    "ESO TEL AMBI FWHM END", "ESO TEL AMBI TAU0",
    "ESO TEL GEOLAT", "ESO TEL GEOLON", "ESO TEL GEOELEV",
    "ESO OCS WAFFLE ORIENT", "ESO AOS HO LOOP STATE", "ESO AOS TT LOOP STATE",
    "ESO OBS PROG ID", "ESO OBS ID", "ESO OBS NAME", "ESO OBS PI-COI NAME",
    "ESO OBS TARG NAME",
    "ESO TPL ID", "ESO TPL START", "ESO TPL EXPNO", "ESO TPL NEXP",
    "ESO PRO REC1 ID", "ESO PRO CATG",
)

#: Keywords kept for provenance and to describe the data array.
PROVENANCE_KEYWORDS = (
    "ORIGIN", "TELESCOP", "DATE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2",
    "NAXIS3", "BUNIT", "CTYPE3", "CUNIT3", "CRVAL3", "CDELT3", "CRPIX3",
    "ESO PRO REC1 PIPE ID", "ESO PRO DATANCOM",
)

#: All keywords returned by `ingest.fitsfiles.read_file`.
KEPT_KEYWORDS = frozenset(CLASSIFICATION_KEYWORDS + PROVENANCE_KEYWORDS)
