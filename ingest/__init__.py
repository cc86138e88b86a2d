"""Ingest: find SPHERE files, read their headers and checksums, classify them,
group them into sequences and associate calibrations.

Pure rules: `fitsfiles`, `classify`, `sequences`, `calibs`, `words`;
the database side: `run`, `grouping`, `report`.
"""
