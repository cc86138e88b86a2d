"""Access rights: when data become public.

ESO rule: raw data and products are proprietary to their programme for one
year after the observation, unless the programme says otherwise.
"""
import datetime

#: Default proprietary period (ESO).
PROPRIETARY_DAYS = 365
_MJD_EPOCH = datetime.datetime(1858, 11, 17)


def default_release_date(mjd_utc, proprietary_days=PROPRIETARY_DAYS):
    """Release date (naive UTC datetime) of data observed at ``mjd_utc``.

    Returns None when the observation time is unknown.
    """
    if mjd_utc is None:
        return None
    return _MJD_EPOCH + datetime.timedelta(days=float(mjd_utc) + proprietary_days)
