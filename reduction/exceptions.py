"""Errors of the reduction engine's file, database and Dask layer.

The science functions raise their own errors (`reduction.level1.exceptions`);
these are raised by the layer that reads the archive, writes products and
schedules runs, and carry the sequence or product they concern.
"""

__all__ = ["ReductionError", "SequenceNotFound", "ReductionRefused", "ProductError",
           "EngineError"]


class ReductionError(Exception):
    """Base class of the reduction engine's errors."""


class SequenceNotFound(ReductionError):
    """The sequence is not in ``sphere.sequences``."""

    def __init__(self, sequence_id):
        super().__init__(f"no sequence {sequence_id!r} in the archive")
        self.sequence_id = sequence_id


class ReductionRefused(ReductionError):
    """The sequence cannot be reduced in a scientifically acceptable way.

    Attributes
    ----------
    sequence_id : str
    reason : str
        Why, in words (recorded in ``sphere.runs.error``).
    """

    def __init__(self, sequence_id, reason):
        super().__init__(f"{sequence_id}: refused: {reason}")
        self.sequence_id = sequence_id
        self.reason = reason


class ProductError(ReductionError):
    """A product cannot be written or registered."""


class EngineError(ReductionError):
    """The Dask cluster cannot be reached or started."""
