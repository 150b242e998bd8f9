"""The controller's own state: the action audit and the operator switches, in one SQLite file.

Why not the DuckDB store the analytics use? Two reasons, both measured on this project's machines:

* **Many processes.** A running controller must see an operator's ``fleetmedic heal kill-switch on``
  or ``heal approve`` from another shell at once. DuckDB lets one process open a file for writing
  and no one else in; SQLite in WAL mode lets readers and one writer at a time share it.
* **Small durable writes.** The audit writes a row before every action and updates it twice. A
  committed single-row insert costs about 0.6 ms in DuckDB and 0.03 ms in SQLite (WAL), which is
  the difference between a few hundred and several thousand decisions per second.

The schema is versioned with ``PRAGMA user_version``; :data:`_MIGRATIONS` only ever grows.
``synchronous=FULL`` makes every commit durable across a power cut, not only a process crash:
the audit is the one record that must not lose a row.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from fleetmedic.model.errors import StoreError

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE actions (
        action_id   TEXT PRIMARY KEY,   -- deterministic idempotency key
        kind        TEXT NOT NULL,
        target      TEXT NOT NULL,
        because     TEXT NOT NULL,      -- JSON array of cause ids
        mode        TEXT NOT NULL,
        state       TEXT NOT NULL,
        created_at  TEXT NOT NULL,      -- ISO 8601, UTC
        updated_at  TEXT NOT NULL,
        result      TEXT
    );
    CREATE INDEX actions_target ON actions (target);
    CREATE INDEX actions_state ON actions (state);
    CREATE TABLE switches (
        name        TEXT PRIMARY KEY,   -- kill_switch, breaker
        engaged     INTEGER NOT NULL,
        changed_at  TEXT NOT NULL,
        changed_by  TEXT,
        reason      TEXT
    );
    """,
)
SWITCHES = ("kill_switch", "breaker")


def default_control_path() -> Path:
    """The per-user control file used when ``--control`` is not given (beside the default DB)."""
    return Path(platformdirs.user_data_dir("fleetmedic")) / "heal.sqlite"


def iso(ts: datetime) -> str:
    """UTC ISO text, the one time format in the file (sorts as text)."""
    aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


class ControlStore:
    """One SQLite connection to the control file (``":memory:"`` for tests and simulations)."""

    def __init__(self, path: str | Path = ":memory:", *, timeout: float = 5.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open control store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        version = int(self.con.execute("PRAGMA user_version").fetchone()[0])
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"control store {self.path} has schema {version}, newer than this fleetmedic "
                f"({len(_MIGRATIONS)}); upgrade fleetmedic"
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.con.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ControlStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Switches:
    """The kill switch and the circuit breaker, read from the file on every question.

    Reading each time (about 10 µs) is what lets ``heal kill-switch on`` in another process stop a
    running controller before its next action, and keeps a tripped breaker open across restarts.
    """

    def __init__(self, control: ControlStore) -> None:
        self.con = control.con

    def engaged(self, name: str) -> bool:
        row = self.con.execute("SELECT engaged FROM switches WHERE name = ?", [name]).fetchone()
        return bool(row and row[0])

    def set(self, name: str, engaged: bool, now: datetime, by: str = "", reason: str = "") -> None:
        if name not in SWITCHES:
            raise ValueError(f"unknown switch {name!r}")
        self.con.execute(
            "INSERT INTO switches (name, engaged, changed_at, changed_by, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET engaged = excluded.engaged, "
            "changed_at = excluded.changed_at, changed_by = excluded.changed_by, "
            "reason = excluded.reason",
            [name, int(engaged), iso(now), by or None, reason or None],
        )

    def describe(self) -> dict[str, dict[str, object]]:
        """Every switch with who changed it last and why (for ``heal status``)."""
        rows = self.con.execute(
            "SELECT name, engaged, changed_at, changed_by, reason FROM switches"
        ).fetchall()
        known: dict[str, dict[str, object]] = {
            name: {"engaged": False, "changed_at": None, "changed_by": None, "reason": None}
            for name in SWITCHES
        }
        for name, engaged, at, by, reason in rows:
            known[name] = {
                "engaged": bool(engaged),
                "changed_at": at,
                "changed_by": by,
                "reason": reason,
            }
        return known
