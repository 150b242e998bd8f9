"""Errors that carry intent.

::

    FleetmedicError
    ├── InputError       the user gave something we cannot read: one line on stderr, exit 2
    └── StoreError       the database is unusable (wrong schema version, locked, corrupt)
"""


class FleetmedicError(Exception):
    """Base of every error fleetmedic raises on purpose."""


class InputError(FleetmedicError):
    """Bad user input: unreadable path, malformed file, wrong schema. Reported in one line."""


class StoreError(FleetmedicError):
    """The store cannot be opened or migrated."""
