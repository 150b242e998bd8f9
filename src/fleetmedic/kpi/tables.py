"""Read the store's tables as Ibis expressions, normalized once for every KPI.

Why a layer of its own: the KPIs must run unchanged on the embedded DuckDB store and on a
distributed engine (Spark, Trino, ...) when a platform's history outgrows one machine. Everything
that depends on the engine or on how a table was loaded stops here:

- only the columns the KPIs read are selected, and a column a lake copy lacks becomes NULL;
- timestamps become epoch seconds (``float64``) so every later formula is plain arithmetic that
  compiles identically on every backend (interval types and their units differ between engines);
- statuses are normalized to the seven of the DESIGN contract (``COMPLETED`` → ``succeeded``...);
- rows that repeat a key (a re-import into a table without a primary key) are kept once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend
from ibis.common.exceptions import TableNotFound

from fleetmedic.kpi.numbers import num
from fleetmedic.model.errors import InputError
from fleetmedic.store import Store

STATUSES: tuple[str, ...] = (
    "succeeded", "failed", "cancelled", "timeout", "preempted", "running", "pending",
)
"""Job statuses of the DESIGN contract, in report order."""

INTERRUPTED: tuple[str, ...] = ("failed", "timeout", "preempted")
"""Statuses that end an attempt against the user's wish: the failures of every KPI."""

OPEN: tuple[str, ...] = ("running", "pending")
"""Statuses of jobs that are still alive: their lifetime extends to the period end."""

# Aliases seen in public traces (Slurm/AcmeTrace, Philly, Helios, Kubernetes phases).
_STATUS_ALIASES: dict[str, str] = {
    "completed": "succeeded", "complete": "succeeded", "success": "succeeded",
    "successful": "succeeded", "pass": "succeeded", "passed": "succeeded", "done": "succeeded",
    "finished": "succeeded",
    "fail": "failed", "failure": "failed", "error": "failed", "node_fail": "failed",
    "out_of_memory": "failed", "oom": "failed",
    "canceled": "cancelled", "killed": "cancelled", "aborted": "cancelled",
    "timed_out": "timeout", "time_out": "timeout", "deadline_exceeded": "timeout",
    "preemption": "preempted", "requeued": "preempted",
    "started": "running", "queued": "pending", "waiting": "pending", "submitted": "pending",
}

_SCHEMAS: dict[str, dict[str, str]] = {
    "jobs": {
        "job_id": "string", "cluster": "string", "user": "string", "team": "string",
        "project": "string", "num_gpus": "float64", "gpu_model": "string",
        "node_pool": "string", "submitted_at": "timestamp", "started_at": "timestamp",
        "ended_at": "timestamp", "status": "string", "attempts": "int64", "gpu_util": "float64",
    },
    "attempts": {
        "job_id": "string", "attempt": "int64", "started_at": "timestamp",
        "ended_at": "timestamp", "status": "string", "last_checkpoint_at": "timestamp",
    },
    "nodes": {
        "node_id": "string", "gpu_model": "string", "gpus": "float64", "pool": "string",
        "first_seen": "timestamp", "last_seen": "timestamp",
    },
    "diagnoses": {
        "job_id": "string", "attempt": "int64", "category": "string", "owner": "string",
        "node_id": "string", "diagnosed_at": "timestamp",
    },
}
_KEYS: dict[str, tuple[str, ...]] = {
    "jobs": ("job_id",),
    "attempts": ("job_id", "attempt"),
    "nodes": ("node_id",),
    "diagnoses": ("job_id", "attempt"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {"jobs": ("job_id", "status")}


@dataclass(frozen=True)
class KpiTables:
    """The normalized tables (times as epoch seconds) and what cleaning them found."""

    backend: BaseBackend
    jobs: ir.Table
    attempts: ir.Table
    nodes: ir.Table
    diagnoses: ir.Table
    duplicates: dict[str, int] = field(default_factory=dict)
    """Rows dropped because they repeated a key, per table."""


def as_backend(source: Store | BaseBackend) -> BaseBackend:
    """Accept the store or any Ibis backend, so callers need not know which engine holds data."""
    if isinstance(source, Store):
        return ibis.duckdb.from_connection(source.con)
    if isinstance(source, BaseBackend):
        return source
    raise TypeError(f"expected a Store or an Ibis backend, got {type(source).__name__}")


def load_tables(backend: BaseBackend) -> KpiTables:
    """Return the four tables the KPIs read, normalized and without duplicate keys.

    ``jobs`` is required; the others may be absent (a trace with one row per job and nothing
    else) and then read as empty, so the KPIs that need them come out as ``null``.
    """
    found = {name: _table(backend, name) for name in _SCHEMAS}
    if found["jobs"] is None:
        raise InputError("no 'jobs' table: not a fleetmedic database (run 'fleetmedic import')")
    raw = {name: _select(name, table) for name, table in found.items()}
    duplicates = _duplicate_counts(backend, raw)
    clean = {
        name: _normalize(name, _dedupe(name, table) if duplicates[name] else table)
        for name, table in raw.items()
    }
    return KpiTables(backend=backend, duplicates=duplicates, **clean)


def _table(backend: BaseBackend, name: str) -> ir.Table | None:
    """The named table, or ``None`` when the backend has none.

    Looked up one by one rather than with ``list_tables()``, which ibis 12 cannot run on
    duckdb 2 (it calls the removed ``fetch_arrow_table`` and leaves the connection unusable).
    """
    try:
        return backend.table(name)
    except TableNotFound:
        return None


def _select(name: str, table: ir.Table | None) -> ir.Table:
    """The columns of ``_SCHEMAS[name]`` with their types; NULL where the source lacks one."""
    schema = _SCHEMAS[name]
    if table is None:
        empty = pa.Table.from_pylist([], schema=ibis.schema(schema).to_pyarrow())
        return ibis.memtable(empty)
    columns = set(table.columns)
    missing = [col for col in _REQUIRED.get(name, ()) if col not in columns]
    if missing:
        raise InputError(f"table {name!r} lacks required column(s): {', '.join(missing)}")
    return table.select(
        **{
            col: (table[col] if col in columns else ibis.null()).cast(dtype)
            for col, dtype in schema.items()
        }
    )


def _duplicate_counts(backend: BaseBackend, raw: dict[str, ir.Table]) -> dict[str, int]:
    """Rows that repeat a key, per table, in one query: de-duplicating costs a sort, so it is
    only done for tables that need it. Tables whose key is an enforced primary key (the
    store's) cannot hold duplicates and are not counted."""
    enforced = _primary_keys(backend)
    parts = []
    for name, table in raw.items():
        if enforced.get(name) == set(_KEYS[name]):
            continue
        per_key = table.group_by(list(_KEYS[name])).aggregate(n=table.count())
        extra = (per_key.n - 1).sum().cast("int64")
        parts.append(per_key.aggregate(name=ibis.literal(name), extra=extra))
    counts: dict[str, int] = {}
    if parts:
        frame = backend.execute(ibis.union(*parts))
        counts = {str(row.name): int(num(row.extra) or 0) for row in frame.itertuples()}
    return {name: counts.get(name, 0) for name in raw}


def _primary_keys(backend: BaseBackend) -> dict[str, set[str]]:
    """Primary-key columns per table where the engine enforces them (DuckDB); else nothing."""
    if backend.name != "duckdb":
        return {}
    rows = backend.raw_sql(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY' AND schema_name = current_schema()"
    ).fetchall()
    return {str(table): {str(c) for c in columns} for table, columns in rows}


def _dedupe(name: str, table: ir.Table) -> ir.Table:
    """Keep one row per key: the most complete (latest end, then start), deterministically."""
    time_cols = [col for col in ("ended_at", "last_seen", "diagnosed_at", "started_at")
                 if col in table.columns]
    order = [ibis.desc(table[col].epoch_seconds().cast("float64").fill_null(-1.0))
             for col in time_cols]
    order += [table[col] for col in table.columns if col not in _KEYS[name]
              and table[col].type().is_string()]
    window = ibis.window(group_by=[table[k] for k in _KEYS[name]], order_by=order)
    ranked = table.mutate(_rank=ibis.row_number().over(window))
    return ranked.filter(ranked._rank == 0).drop("_rank")


def epoch(value: ir.TimestampValue) -> ir.FloatingValue:
    """Epoch seconds as float64: the one time representation every formula uses."""
    return value.epoch_seconds().cast("float64")


def normalize_status(value: ir.StringValue) -> ir.StringValue:
    """Lower-case, trimmed, aliases mapped to the contract's seven statuses; others kept as-is."""
    cleaned = value.strip().lower()
    return cleaned.substitute(_STATUS_ALIASES, else_=cleaned)


def _normalize(name: str, t: ir.Table) -> ir.Table:
    if name == "jobs":
        return t.select(
            "job_id", "cluster", "user", "team", "project", "gpu_model", "node_pool",
            gpus=ibis.greatest(t.num_gpus.fill_null(0.0), 0.0),
            sub=epoch(t.submitted_at), start=epoch(t.started_at), end=epoch(t.ended_at),
            status=normalize_status(t.status),
            attempts=t.attempts.fill_null(1),
            gpu_util=t.gpu_util,
        )
    if name == "attempts":
        return t.select(
            "job_id", "attempt",
            start=epoch(t.started_at), end=epoch(t.ended_at),
            status=normalize_status(t.status), ckpt=epoch(t.last_checkpoint_at),
        )
    if name == "nodes":
        return t.select(
            "node_id", "gpu_model", "pool", gpus=t.gpus.fill_null(0.0),
            first_seen=epoch(t.first_seen), last_seen=epoch(t.last_seen),
        )
    return t.select(
        "job_id", "attempt", "category", "node_id",
        owner=ibis.ifelse(t.owner == "—", "unknown", t.owner),
        diagnosed_at=epoch(t.diagnosed_at),
    )
