"""Open a DuckDB store and bring its schema up to date.

Migrations are numbered SQL files in ``migrations/``; the applied version is kept in
``schema_version`` so an old file is upgraded in place and a newer one is refused instead of being
misread.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from types import TracebackType

import duckdb
import platformdirs

from fleetmedic.model.errors import StoreError

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("fleetmedic.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text("utf-8")))
    return sorted(found)


SCHEMA_VERSION = max(version for version, _ in _migrations())


def default_db_path() -> Path:
    """The per-user database file used when ``--db`` is not given."""
    return Path(platformdirs.user_data_dir("fleetmedic")) / "fleetmedic.duckdb"


class Store:
    """A DuckDB connection whose schema is at :data:`SCHEMA_VERSION`."""

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect(read_only)
        if not read_only:
            self._migrate()
        elif self._stored_version() < SCHEMA_VERSION:
            self._upgrade_then_reopen()
        self._check_version()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def _stored_version(self) -> int:
        try:
            row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        except duckdb.Error:
            return SCHEMA_VERSION  # not ours: _check_version says so
        return int(row[0]) if row and row[0] is not None else 0

    def _upgrade_then_reopen(self) -> None:
        """A store written by an older fleetmedic, opened to read: migrate it once, then read.

        Migrations only add, so upgrading on a read is safe; it needs the file to be writable
        and not open elsewhere, and says so in one line when it is not.
        """
        self.con.close()
        try:
            writer = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise StoreError(
                f"database {self.path} has an older schema and could not be upgraded: {exc}"
            ) from exc
        self.con = writer
        try:
            self._migrate()
        finally:
            writer.close()
        self.con = self._connect(read_only=True)

    def _current_version(self) -> int:
        self.con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        current = self._current_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema v{current}, newer than this fleetmedic "
                f"(v{SCHEMA_VERSION}); upgrade fleetmedic"
            )
        for version, sql in _migrations():
            if version <= current:
                continue
            self.con.execute("BEGIN TRANSACTION")
            self.con.execute(sql)
            self.con.execute("INSERT INTO schema_version VALUES (?)", [version])
            self.con.execute("COMMIT")

    def _check_version(self) -> None:
        try:
            row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        except duckdb.Error as exc:
            raise StoreError(f"{self.path} is not a fleetmedic database") from exc
        version = int(row[0]) if row and row[0] is not None else 0
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema v{version}, expected v{SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
