"""Errors raised by the night simulator."""


class SimulatorError(Exception):
    """Base class of the simulator's errors."""


class NightFormatError(SimulatorError, ValueError):
    """The ``night`` argument is not a 'YYYY-MM-DD' date.

    Parameters
    ----------
    night : str
        The value received.
    """

    def __init__(self, night):
        self.night = night
        super().__init__(f"night must be 'YYYY-MM-DD', got {night!r}")


class OutputDirError(SimulatorError, OSError):
    """The output folder cannot receive a night (not a folder, or not writable).

    Parameters
    ----------
    path : str
        The output folder.
    reason : str
        Why it was refused.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
