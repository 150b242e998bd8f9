"""Small read-back helpers over the store, for tests, summaries and stages that want records.

Analytics belong in Ibis expressions (``kpi``); these helpers answer the plain questions: how many
rows, which imports, the jobs of one source as :class:`~fleetmedic.model.records.Job` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleetmedic.model.records import Job
from fleetmedic.store.db import Store

RECORD_TABLES: tuple[str, ...] = ("jobs", "attempts", "attempt_nodes", "nodes", "events")


def table_counts(store: Store, tables: tuple[str, ...] = RECORD_TABLES) -> dict[str, int]:
    """Row count of each record table, e.g. to check that a re-import changed nothing."""
    counts: dict[str, int] = {}
    for table in tables:
        row = store.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


@dataclass(frozen=True)
class ImportLog:
    """One row of ``imports``: the last import of a file in a format."""

    format: str
    path: str
    rows_read: int
    rows_ok: int
    rows_bad: int
    started_at: datetime
    finished_at: datetime


def read_imports(store: Store) -> list[ImportLog]:
    """The import log, most recent first."""
    rows = store.con.execute(
        "SELECT format, path, rows_read, rows_ok, rows_bad, started_at, finished_at "
        "FROM imports ORDER BY finished_at DESC, path"
    ).fetchall()
    return [ImportLog(*row) for row in rows]


_JOB_COLUMNS = (
    "job_id",
    '"user"',
    "team",
    "project",
    "kind",
    "framework",
    "num_gpus",
    "num_nodes",
    "priority",
    "queue",
    "gpu_model",
    "submitted_at",
    "started_at",
    "ended_at",
    "status",
    "attempts",
)


def read_jobs(store: Store, *, source: str | None = None, limit: int | None = None) -> list[Job]:
    """Jobs as records (times made timezone-aware UTC), optionally of one ``source``, by id."""
    sql = f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
    params: list[Any] = []
    if source is not None:
        sql += " WHERE source = ?"
        params.append(source)
    sql += " ORDER BY job_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = store.con.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    jobs = []
    for row in cursor.fetchall():
        values = dict(zip(names, row, strict=True))
        for key in ("submitted_at", "started_at", "ended_at"):
            if values[key] is not None:
                values[key] = values[key].replace(tzinfo=UTC)
        if values["kind"] is not None and values["kind"] not in _KINDS:
            values["kind"] = "other"
        jobs.append(Job(**values))
    return jobs


_KINDS = frozenset({"train", "finetune", "eval", "inference", "notebook", "other"})
