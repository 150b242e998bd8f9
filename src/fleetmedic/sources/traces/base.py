"""What a trace importer is, the registry that finds them, and the flow most of them share.

An importer turns one file of a published trace schema into *staged* rows: temporary DuckDB
relations in the store's own vocabulary (see :mod:`fleetmedic.store.writer`). It never writes the
store's tables itself; :mod:`fleetmedic.sources.traces.runner` hands its staging to the one writer.

Tabular formats (Acme, Helios, Alibaba, generic CSV) share :func:`clean_table`: one ``CREATE TEMP
TABLE`` that types every column with ``TRY_CAST`` and names, per row, the first thing wrong with it
(``_why``), so malformed rows are counted by reason instead of silently dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import duckdb

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.files import TableScan
from fleetmedic.sources.traces.sql import Kind, cast, checks_for, ident, lit, normalized
from fleetmedic.store.writer import Staged

CLEAN = "_fm_clean"
"""Name of the temp table holding a file's typed rows and their ``_why`` (NULL when fine)."""

STAGE = {
    "jobs": "_fm_stage_jobs",
    "attempts": "_fm_stage_attempts",
    "attempt_nodes": "_fm_stage_attempt_nodes",
    "nodes": "_fm_stage_nodes",
    "events": "_fm_stage_events",
}
"""Names of the temp relations importers stage into, one per store table."""

StepHook = Callable[[str], None]


@dataclass(frozen=True)
class ImportOptions:
    """What the command line adds to a file: a cluster name, a mapping file (``csv`` only)."""

    cluster: str | None = None
    mapping: Path | None = None


@dataclass
class StageContext:
    """What an importer works with: the writer's connection (temp objects only) and a step hook."""

    con: duckdb.DuckDBPyConnection
    options: ImportOptions = field(default_factory=ImportOptions)
    step: StepHook = lambda _label: None


@dataclass(frozen=True)
class Staging:
    """An importer's result for one file: staged relations plus the row accounting."""

    staged: Staged
    rows_read: int
    rows_bad: int
    bad_reasons: dict[str, int]

    @property
    def rows_ok(self) -> int:
        return self.rows_read - self.rows_bad


class TraceImporter(ABC):
    """One trace format. Subclasses set :attr:`name` and register with :func:`register`."""

    name: ClassVar[str]
    """The FORMAT argument of ``fleetmedic import``."""
    summary: ClassVar[str]
    """One line for ``--help``."""

    @abstractmethod
    def check(self, ctx: StageContext, path: Path) -> None:
        """Refuse a file that is not in this format (raise :class:`InputError`), reading little.

        Called for every path before anything is written, so a typo in the last path does not
        leave the first ones half imported.
        """

    @abstractmethod
    def stage(self, ctx: StageContext, path: Path) -> Staging:
        """Stage the file's rows; the temp relations are named in :data:`STAGE`."""


_REGISTRY: dict[str, type[TraceImporter]] = {}
_T = TypeVar("_T", bound=type[TraceImporter])


def register(cls: _T) -> _T:
    """Class decorator adding an importer to the registry; a duplicate name is a bug."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two trace importers named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[TraceImporter]]:
    """Registered importers by name (the package import registers the built-in ones)."""
    return dict(_REGISTRY)


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Forget a file's temp relations (every temp ``_fm_*`` view and table) before the next."""
    views = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND starts_with(view_name, '_fm_')"
    ).fetchall()
    for (name,) in views:
        con.execute(f"DROP VIEW IF EXISTS {ident(name)}")
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_fm_')"
    ).fetchall()
    for (name,) in tables:
        con.execute(f"DROP TABLE IF EXISTS {ident(name)}")


@dataclass(frozen=True)
class Col:
    """A source column the clean table types: ``name`` in the file, ``as_`` in the clean table."""

    name: str
    kind: Kind
    required: bool = False
    as_: str | None = None

    @property
    def target(self) -> str:
        return self.as_ or self.name


def clean_table(
    con: duckdb.DuckDBPyConnection,
    scan: TableScan,
    cols: Sequence[Col],
    *,
    extra: Sequence[tuple[str, str]] = (),
    checks: Sequence[tuple[str, str]] = (),
    key: str | None = "job_id",
) -> tuple[int, int, dict[str, int]]:
    """Create :data:`CLEAN` from ``scan``: typed ``cols``, ``extra`` expressions, and ``_why``.

    ``extra`` are ``(name, sql)`` computed over the typed columns (a status mapping, say);
    ``checks`` are ``(condition, reason_sql)`` over typed and extra columns, tried after the type
    checks. Rows repeating ``key`` are marked bad except the last one in file order. Returns
    ``(rows_read, rows_bad, reasons)``, rows the CSV reader rejected included.
    """
    flag = [ident(scan.malformed_flag)] if scan.malformed_flag else []
    level1, level2, dropped = list(flag), list(flag), list(flag)
    whens = [f"WHEN {f} THEN {lit('not a JSON object')}" for f in flag]
    for i, col in enumerate(cols):
        sql_type = scan.columns.get(col.name, "VARCHAR")
        raw, target = f"__r{i}", ident(col.target)
        level1.append(f"{normalized(ident(col.name), col.kind, sql_type)} AS {raw}")
        level2.append(f"{raw}, {cast(raw, col.kind, sql_type)} AS {target}")
        dropped.append(raw)
        whens += checks_for(col.name, raw, target, col.kind, required=col.required)
    whens += [f"WHEN {cond} THEN {reason}" for cond, reason in checks]
    extras = "".join(f", {sql} AS {ident(name)}" for name, sql in extra)
    # Three levels so that each cell is normalized and cast once (DuckDB would otherwise
    # repeat the casts inside every check); the checks then only compare columns.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CLEAN} AS
        SELECT * EXCLUDE ({", ".join(dropped)}), CASE {" ".join(whens)} ELSE NULL END AS _why
        FROM (SELECT *{extras} FROM (
              SELECT {", ".join(level2)}
              FROM (SELECT {", ".join(level1)} FROM {scan.source})))"""
    )
    if key is not None:
        mark_duplicates(con, key)
    rejected = scan.count_rejects(con)
    rows = con.execute(
        f"SELECT _why, count(*) FROM {CLEAN} GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    reasons = {str(why): int(n) for why, n in rows if why is not None}
    if rejected:
        reasons["unreadable line (wrong number of fields or bad encoding)"] = rejected
    total = sum(int(n) for _, n in rows) + rejected
    return total, sum(reasons.values()), sort_reasons(reasons)


def sort_reasons(reasons: dict[str, int]) -> dict[str, int]:
    """Most frequent first, then by name: the order summaries print them in."""
    return dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))


def mark_duplicates(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Mark all but the last good row of a repeated ``key`` bad: a store key holds one row."""
    row = con.execute(
        f"SELECT count(*) - count(DISTINCT {ident(key)}) FROM {CLEAN} WHERE _why IS NULL"
    ).fetchone()
    if row and row[0]:
        con.execute(
            f"UPDATE {CLEAN} SET _why = {lit('duplicate ' + key + ' (the last row is kept)')} "
            f"WHERE _why IS NULL AND rowid NOT IN ("
            f"SELECT max(rowid) FROM {CLEAN} WHERE _why IS NULL GROUP BY {ident(key)})"
        )


def require_cluster_name(name: str) -> str:
    """A cluster name goes into job ids: keep it to a safe, lower-case token."""
    cleaned = name.strip().lower()
    if not cleaned or not all(c.isalnum() or c in "-_." for c in cleaned):
        raise InputError(f"bad cluster name {name!r}: use letters, digits, '-', '_' or '.'")
    return cleaned
