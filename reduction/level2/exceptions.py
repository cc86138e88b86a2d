"""Errors raised by the level-2 science functions."""

__all__ = ["Level2Error", "InputShapeError", "InputFileError", "PSFError",
           "TooFewFramesError"]


class Level2Error(Exception):
    """Base class of every level-2 post-processing error."""


class InputShapeError(Level2Error, ValueError):
    """A cube, angle list, PSF or wavelength list has an unusable shape.

    Parameters
    ----------
    message : str
        What is wrong.
    shape : tuple of int, optional
        The offending shape, kept for the caller's report.
    """

    def __init__(self, message, shape=None):
        super().__init__(message if shape is None else f"{message} (shape {shape})")
        self.shape = shape


class PSFError(Level2Error):
    """The off-axis PSF cannot be normalised or fitted."""


class TooFewFramesError(Level2Error, ValueError):
    """The sequence has too few frames for the requested number of components."""


class InputFileError(Level2Error):
    """An input file of ``spheredc postprocess`` is missing, not FITS, or unusable.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str, optional
        The offending file, kept for the caller's report.
    """

    def __init__(self, message, path=None):
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path
