"""Thresholds of the sequence quality flags (no heavy imports: the listing
command and the portal read them)."""

#: A gap longer than this (between files of one group) starts a new sequence.
GAP_HOURS = 1.0
#: Seeing above this (median of the OBJECT files) is flagged.
SEEING_LIMIT_ARCSEC = 1.2
#: Coherence time below this (median of the OBJECT files) is flagged.
TAU0_LIMIT_S = 0.002
