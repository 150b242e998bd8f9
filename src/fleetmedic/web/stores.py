"""The two stores the server reads: the DuckDB analytics store and the SQLite control store.

DuckDB lets one process write a file *or* any number of processes read it, never both: while the
server holds its read-only connection, ``fleetmedic import`` into the same file waits for it to be
stopped (docs/web.md). One connection is shared by every request thread, each with its own cursor,
because opening the file costs 15-60 ms, more than the whole budget of a cached answer. When the
file is replaced (a new import written elsewhere and moved over it) its identity changes and the
next request opens the new one.

The control store is SQLite in WAL mode, made for many processes: the heal controller writes it
while the server reads it and records approvals in it. It is opened per request (well under a
millisecond), so a request never sees a connection another thread is using.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from fleetmedic.heal.state import ControlStore
from fleetmedic.model.errors import StoreError
from fleetmedic.store import Store

Identity = tuple[int, int, int]


def file_identity(path: Path) -> Identity:
    """Inode, modification time and size: changes whenever the file is rewritten or replaced."""
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class StoreReader:
    """One read-only connection to the analytics store, reopened when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._use = threading.Lock()
        self._store: Store | None = None
        self._identity: Identity = (0, 0, 0)

    def identity(self) -> Identity:
        return file_identity(self.path)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            current = self.identity()
            if self._store is None or current != self._identity:
                if not self.path.is_file():
                    raise StoreError(f"no database at {self.path}")
                # The old connection is left to the garbage collector: cursors in flight keep it.
                self._store = Store(self.path, read_only=True)
                self._identity = current
            return self._store.con

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one request (DuckDB connections are not shared by threads)."""
        cursor = self._connection().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def exclusive(self) -> Iterator[Store]:
        """The shared store itself, for code written against :class:`Store` (one user at a time)."""
        self._connection()
        with self._use:
            assert self._store is not None
            yield self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class ControlAccess:
    """Opens the control store per request; ``None`` when the file does not exist yet."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def open(self, *, create: bool = False) -> Iterator[ControlStore | None]:
        if not create and not self.exists():
            yield None
            return
        control = ControlStore(self.path)
        try:
            yield control
        finally:
            control.close()
