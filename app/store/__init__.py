"""The local archive: index (SQLAlchemy), file store, ingest pipeline, queries."""
