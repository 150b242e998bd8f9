"""The store: one embedded DuckDB file, schema-versioned, with one writer."""

from fleetmedic.store.db import SCHEMA_VERSION, Store, default_db_path

__all__ = ["SCHEMA_VERSION", "Store", "default_db_path"]
