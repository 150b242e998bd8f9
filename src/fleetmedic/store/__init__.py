"""The store: one embedded DuckDB file, schema-versioned, with one writer."""

from fleetmedic.store.db import SCHEMA_VERSION, Store, default_db_path
from fleetmedic.store.writer import ImportRecord, Staged, WriteCounts, Writer

__all__ = [
    "SCHEMA_VERSION",
    "ImportRecord",
    "Staged",
    "Store",
    "WriteCounts",
    "Writer",
    "default_db_path",
]
