"""The archive: configuration, the database (embedded or external), table metadata.

The ground floor of spheredc: it reads ``schemas/`` and knows nothing of ingest,
reduction, protocols or the web framework (DESIGN.md, dependency rules).
"""
