"""The observatory site and the sky geometry every SPHERE frame needs.

Parallactic angles are computed *of date*: the target's apparent (TETE)
coordinates and the apparent sidereal time, as the telescope control software
does for the ``ESO TEL PARANG`` keywords. The textbook formula fed with ICRS
coordinates can be off by degrees near the zenith (SPHERE-DATA.md).

This machine is offline: IERS tables come from the ``astropy-iers-data``
package bundled with astropy and are never downloaded (see `offline_iers`).
"""
import contextlib

import numpy as np

#: Paranal, as written in ``ESO TEL GEOLAT/GEOLON/GEOELEV``.
PARANAL_LAT_DEG = -24.6268
PARANAL_LON_DEG = -70.4045
PARANAL_ELEV_M = 2648.0


@contextlib.contextmanager
def offline_iers():
    """Use only the bundled IERS tables, whatever the date.

    Predictions older than the usual 30 days are accepted: for a parallactic
    angle the resulting error (UT1-UTC uncertainty, < 1 s of time) is far below
    the 0.01 deg we care about.
    """
    from astropy.utils import iers

    with iers.conf.set_temp("auto_download", False), \
            iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "warn"):
        yield


def paranal_location():
    """Return Paranal as an `astropy.coordinates.EarthLocation`."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation

    return EarthLocation.from_geodetic(PARANAL_LON_DEG * u.deg, PARANAL_LAT_DEG * u.deg,
                                       PARANAL_ELEV_M * u.m)


def parallactic_angle_deg(mjd_utc, ra_deg, dec_deg):
    """Parallactic angle of a target seen from Paranal.

    Parameters
    ----------
    mjd_utc : float or array_like
        Times (MJD, UTC).
    ra_deg, dec_deg : float
        Target position (ICRS, degrees).

    Returns
    -------
    parang_deg : float or `numpy.ndarray`
        Parallactic angle in degrees, in (-180, 180], positive when the target
        is west of the meridian (ESO ``TEL PARANG`` convention).
    """
    import astropy.units as u
    from astropy.coordinates import TETE, SkyCoord
    from astropy.time import Time

    mjd = np.asarray(mjd_utc, dtype=float)
    loc = paranal_location()
    with offline_iers():
        t = Time(mjd, format="mjd", scale="utc", location=loc)
        app = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").transform_to(
            TETE(obstime=t, location=loc))
        lst = t.sidereal_time("apparent")
    ha = (lst - app.ra).to_value(u.rad)
    dec = app.dec.to_value(u.rad)
    lat = np.radians(PARANAL_LAT_DEG)
    q = np.arctan2(np.sin(ha), np.tan(lat) * np.cos(dec) - np.sin(dec) * np.cos(ha))
    return np.degrees(q)


def altitude_deg(mjd_utc, ra_deg, dec_deg):
    """Altitude (degrees, refraction ignored) of a target seen from Paranal."""
    import astropy.units as u
    from astropy.coordinates import AltAz, SkyCoord
    from astropy.time import Time

    loc = paranal_location()
    with offline_iers():
        t = Time(np.asarray(mjd_utc, dtype=float), format="mjd", scale="utc")
        aa = SkyCoord(ra_deg * u.deg, dec_deg * u.deg).transform_to(AltAz(obstime=t, location=loc))
    return aa.alt.to_value(u.deg)
