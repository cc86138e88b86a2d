"""A corpus of many small SPHERE-like raw files, for ingest benchmarks and tests.

Headers are realistic (the keywords of SPHERE-DATA.md, IRDIS DBI sequences and
their calibrations spread over nights and OBs); the data are 16x16 pixels,
since ingest reads headers. Deterministic for a seed.
"""
from pathlib import Path

import numpy as np

KINDS = [  # (dpr_catg, dpr_type, dit_s, ndit, weight)
    ("SCIENCE", "OBJECT", 16.0, 4, 10), ("SCIENCE", "OBJECT,CENTER", 16.0, 1, 1),
    ("SCIENCE", "OBJECT,FLUX", 2.0, 2, 1), ("SCIENCE", "SKY", 16.0, 2, 1),
    ("CALIB", "DARK,BACKGROUND", 16.0, 3, 1), ("CALIB", "DARK,BACKGROUND", 2.0, 3, 1),
    ("CALIB", "FLAT,LAMP", 1.5, 3, 1), ("CALIB", "DARK", 1.65, 3, 1),
]


def header_for(i, rng, n_per_night=400):
    """A realistic IRDIS header for file number ``i`` of the corpus."""
    from astropy.io import fits
    from astropy.time import Time

    weights = np.array([k[4] for k in KINDS], float)
    catg, dtype, dit, ndit, _ = KINDS[rng.choice(len(KINDS), p=weights / weights.sum())]
    night = i // n_per_night
    ob = i // 40
    mjd = 60400.0 + night + 0.05 + (i % n_per_night) * 30.0 / 86400.0
    t = Time(mjd, format="mjd", scale="utc")
    iso = t.isot[:23]
    h = fits.Header()
    for key, value in [
        ("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 16), ("NAXIS2", 16),
        ("BZERO", 32768), ("BSCALE", 1), ("ORIGIN", "ESO-PARANAL"), ("TELESCOP", "ESO-VLT-U3"),
        ("INSTRUME", "SPHERE"), ("OBJECT", f"HD {1000 + ob % 500}" if catg == "SCIENCE" else dtype),
        ("RA", float((ob * 7.3) % 360)), ("DEC", float(-60 + (ob % 100))), ("EQUINOX", 2000.0),
        ("DATE-OBS", iso), ("MJD-OBS", mjd), ("EXPTIME", dit * ndit),
        ("ARCFILE", f"SPHER.{iso}.fits"), ("HIERARCH ESO DPR CATG", catg),
        ("HIERARCH ESO DPR TYPE", dtype),
        ("HIERARCH ESO DPR TECH", "IMAGE,DUAL,CORONOGRAPHY" if catg == "SCIENCE" else "IMAGE"),
        ("HIERARCH ESO SEQ ARM", "IRDIS"), ("HIERARCH ESO INS1 MODE", "DBI"),
        ("HIERARCH ESO INS COMB IFLT", "DB_H23"), ("HIERARCH ESO INS COMB ICOR", "N_ALC_YJH_S"),
        ("HIERARCH ESO INS1 FILT NAME", "B_H"), ("HIERARCH ESO INS1 OPTI2 NAME", "D_H23"),
        ("HIERARCH ESO INS4 FILT2 NAME", "ND_2.0" if dtype == "OBJECT,FLUX" else "OPEN"),
        ("HIERARCH ESO INS4 DROT2 MODE", "ELEV"), ("HIERARCH ESO INS4 DROT2 BEGIN", 10.0),
        ("HIERARCH ESO DET SEQ1 DIT", dit), ("HIERARCH ESO DET NDIT", ndit),
        ("HIERARCH ESO DET FRAM UTC", iso),
        ("HIERARCH ESO TEL PARANG START", -30.0 + (i % 40)),
        ("HIERARCH ESO TEL PARANG END", -29.5 + (i % 40)), ("HIERARCH ESO TEL ALT", 70.0),
        ("HIERARCH ESO TEL AIRM START", 1.05), ("HIERARCH ESO TEL AIRM END", 1.05),
        ("HIERARCH ESO TEL GEOLAT", -24.6268), ("HIERARCH ESO TEL GEOLON", -70.4045),
        ("HIERARCH ESO TEL GEOELEV", 2648.0), ("HIERARCH ESO TEL AMBI FWHM START", 0.7),
        ("HIERARCH ESO TEL AMBI FWHM END", 0.7), ("HIERARCH ESO TEL AMBI TAU0", 0.004),
        ("HIERARCH ESO AOS HO LOOP STATE", "CLOSED_LOOP"),
        ("HIERARCH ESO AOS TT LOOP STATE", "CLOSED_LOOP"),
        ("HIERARCH ESO OCS WAFFLE ORIENT", "x"),
        ("HIERARCH ESO OBS PROG ID", f"1{10 + night % 5:02d}.C-0{ob % 900:03d}(A)"),
        ("HIERARCH ESO OBS ID", 3000000 + ob), ("HIERARCH ESO OBS NAME", f"OB_{ob}"),
        ("HIERARCH ESO OBS PI-COI NAME", "UNKNOWN"),
        ("HIERARCH ESO TPL ID", "SPHERE_irdis_dbi_obs" if catg == "SCIENCE"
         else "SPHERE_irdis_cal_bckg"),
        ("HIERARCH ESO TPL START", iso[:19]), ("HIERARCH ESO TPL EXPNO", 1 + i % 40),
        ("HIERARCH ESO TPL NEXP", 40)]:
        h[key] = value
    return h


def write_header_corpus(folder, n_files, seed=42):
    """Write ``n_files`` small raw files into ``folder``; return their paths."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    data = (rng.integers(0, 2000, (16, 16)) - 32768).astype(np.int16)
    paths = []
    for i in range(n_files):
        h = header_for(i, rng)
        path = Path(folder) / h["ARCFILE"]
        hdu = fits.PrimaryHDU(data=data, header=h, do_not_scale_image_data=True)
        hdu.writeto(path, overwrite=True)
        paths.append(path)
    return paths
