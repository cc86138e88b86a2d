"""Errors and warnings of the level-1 (pre-reduction) science functions."""
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["Level1Error", "CalibrationError", "GeometryError", "AngleError",
           "UnknownNDFilterError", "SequenceError", "Level1Warning"]


class Level1Error(Exception):
    """Base class of every level-1 error."""


class CalibrationError(Level1Error):
    """Calibration frames are unusable (wrong shape, too few levels, ...)."""


class GeometryError(Level1Error):
    """An image does not have the expected detector geometry, or a crop is invalid."""


class AngleError(Level1Error):
    """Frame times or angles cannot be computed from the metadata given."""


class UnknownNDFilterError(Level1Error, KeyError):
    """The neutral density filter name is not in the transmission table."""


class SequenceError(Level1Error):
    """A sequence cannot be turned into a master cube (no OBJECT frame, bad metadata)."""


class Level1Warning(AstropyUserWarning):
    """Something was degraded but the reduction went on (fallback centre, flagged angle)."""
