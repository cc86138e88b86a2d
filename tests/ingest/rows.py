"""Synthetic classification rows shared by the ingest rule tests."""
from ingest.classify import iso_to_mjd, mjd_to_iso, night_of

T0 = iso_to_mjd("2025-04-12T23:59:01.123")


def row(minutes, dpr_type="OBJECT", exptime_s=64.0, **changes):
    """A classification row starting ``minutes`` after T0."""
    mjd = T0 + minutes / 1440.0
    r = {"arcfile": f"SPHER.{mjd_to_iso(mjd)}.fits", "checksum": f"c{minutes}",
         "file_name": f"SPHER.{mjd_to_iso(mjd)}.fits", "dpr_catg": "SCIENCE",
         "dpr_type": dpr_type, "arm": "IRDIS", "ins_mode": "DBI", "filter": "DB_H23",
         "coronagraph": "N_ALC_YJH_S", "derot_mode": "ELEV", "dit": 16.0,
         "exptime": exptime_s, "mjd_obs": mjd, "mjd_end": mjd + exptime_s / 86400.0,
         "date_obs": mjd_to_iso(mjd), "night": night_of(mjd), "target_name": "HD 95086",
         "ra": 164.6, "dec": -68.7, "prog_id": "0101.C-0128(A)", "obs_id": 1,
         "tpl_id": "SPHERE_irdis_dbi_obs", "level": "raw", "parang_start": None,
         "parang_end": None, "seeing_arcsec": 0.7, "tau0_s": 0.004,
         "ao_loop_closed": True}
    r.update(changes)
    return r


def dbi_sequence(start=0.0, parang=(-30.0, 30.0), n_object=4, **changes):
    """FLUX, CENTER, OBJECTs (parang spread evenly), CENTER, FLUX, SKY."""
    rows = [row(start, "OBJECT,FLUX", dit=0.84, exptime_s=8.4, **changes),
            row(start + 1, "OBJECT,CENTER", **changes)]
    step = (parang[1] - parang[0]) / n_object
    for i in range(n_object):
        rows.append(row(start + 2 + 2 * i, parang_start=parang[0] + i * step,
                        parang_end=parang[0] + (i + 1) * step, **changes))
    t = start + 2 + 2 * n_object
    rows += [row(t, "OBJECT,CENTER", **changes), row(t + 1, "OBJECT,FLUX", dit=0.84,
                                                     exptime_s=8.4, **changes),
             row(t + 2, "SKY", **changes)]
    return rows
