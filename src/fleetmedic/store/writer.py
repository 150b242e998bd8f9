"""The one writer: every row that reaches the store's record tables goes through :class:`Writer`.

Why one writer: DuckDB allows a single writing process per file, and keeping the upsert rules for
each table in one place is what makes imports idempotent. Producers (trace importers, adapters,
the simulator) stage normalized rows in *temporary* relations on the writer's connection and hand
their names to :meth:`Writer.write`, which moves them into the tables in one transaction, so a
failed import leaves the store as it was. The heavy lifting stays inside DuckDB: no Python loop
touches a row on this path.

Upsert rules, per table (the key is the table's primary key):

* ``jobs``, ``attempts``: the staged row replaces the stored one (a re-import redefines a job).
* ``attempt_nodes``, ``events``: insert if new, ignore otherwise (events are append-only and keyed
  by a content hash, :func:`event_id`).
* ``nodes``: merged: a staged NULL keeps the stored value, ``first_seen``/``last_seen`` widen, so a
  trace that knows only a node's name does not erase what a Kubernetes dump said about it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from fleetmedic.model.records import Attempt, Diagnosis, Event, Job, Node
from fleetmedic.store.db import Store

if TYPE_CHECKING:
    import pandas as pd

Table = Literal["jobs", "attempts", "attempt_nodes", "nodes", "events"]

STATUSES: tuple[str, ...] = (
    "succeeded",
    "failed",
    "cancelled",
    "timeout",
    "preempted",
    "running",
    "pending",
)
"""The normalized job statuses (DESIGN.md); the writer refuses any other value."""

KEYS: dict[str, tuple[str, ...]] = {
    "jobs": ("job_id",),
    "attempts": ("job_id", "attempt"),
    "attempt_nodes": ("job_id", "attempt", "node_id"),
    "nodes": ("node_id",),
    "events": ("event_id",),
}

_UNIT_SEP = "\x1f"

EVENT_ID_SQL = (
    "sha256(concat_ws(chr(31), {source}, {kind}, {object}, coalesce({reason}, ''), "
    "coalesce({message}, ''), strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f')))"
)
"""SQL template of :func:`event_id`; format it with SQL expressions for each field."""


def event_id(
    ts: datetime, source: str, kind: str, obj: str, reason: str | None, message: str | None
) -> str:
    """Content hash that keys an event, so re-reading the same event is a no-op.

    It is the same function as :data:`EVENT_ID_SQL` (a test keeps them equal): SHA-256 over the
    fields joined by the ASCII unit separator, with ``ts`` as naive UTC to the microsecond.
    """
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    text = _UNIT_SEP.join(
        [source, kind, obj, reason or "", message or "", ts.strftime("%Y-%m-%dT%H:%M:%S.%f")]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_id_sql(*, ts: str, source: str, kind: str, obj: str, reason: str, message: str) -> str:
    """The SQL expression computing :func:`event_id` from the given column expressions."""
    return EVENT_ID_SQL.format(
        ts=ts, source=source, kind=kind, object=obj, reason=reason, message=message
    )


@dataclass(frozen=True)
class Staged:
    """Names of temporary relations holding normalized rows, one per target table.

    Each relation's column names are a subset of its table's; missing columns take the table's
    defaults. ``None`` means nothing to write to that table.
    """

    jobs: str | None = None
    attempts: str | None = None
    attempt_nodes: str | None = None
    nodes: str | None = None
    events: str | None = None


@dataclass(frozen=True)
class WriteCounts:
    """Rows upserted per table by one :meth:`Writer.write`."""

    jobs: int = 0
    attempts: int = 0
    attempt_nodes: int = 0
    nodes: int = 0
    events: int = 0

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ImportRecord:
    """One row of the ``imports`` table: what a file gave, for audit and for the summary."""

    format: str
    path: str
    rows_read: int
    rows_ok: int
    rows_bad: int
    started_at: datetime
    finished_at: datetime

    @property
    def import_id(self) -> str:
        """Keyed by format and path: re-importing a file replaces its record, like its rows."""
        return hashlib.sha256(f"{self.format}\x1f{self.path}".encode()).hexdigest()[:32]


_WIDEN = {"first_seen": "least", "last_seen": "greatest"}


def _merge_nodes_sql(rel: str, columns: list[str]) -> str:
    """Upsert nodes, keeping stored values where the staged row has none.

    Built from the staged relation's own columns: DuckDB's ``EXCLUDED`` only has those.
    """
    sets = [
        f"{col} = {_WIDEN.get(col, 'coalesce')}(EXCLUDED.{col}, nodes.{col})"
        for col in columns
        if col != "node_id"
    ]
    conflict = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    return f"INSERT INTO nodes BY NAME SELECT * FROM {rel} ON CONFLICT (node_id) {conflict}"


_STATEMENTS: dict[str, str] = {
    "jobs": "INSERT OR REPLACE INTO jobs BY NAME SELECT * FROM {rel}",
    "attempts": "INSERT OR REPLACE INTO attempts BY NAME SELECT * FROM {rel}",
    "attempt_nodes": "INSERT OR IGNORE INTO attempt_nodes BY NAME SELECT * FROM {rel}",
    "events": "INSERT OR IGNORE INTO events BY NAME SELECT * FROM {rel}",
}

_PLAIN = "INSERT INTO {table} BY NAME SELECT * FROM {{rel}}"

_ORDER: tuple[Table, ...] = ("nodes", "jobs", "attempts", "attempt_nodes", "events")
_REPLACED = frozenset({"jobs", "attempts"})


class Writer:
    """Moves staged rows into the store's tables, one transaction per :meth:`write`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection to stage on. Producers create TEMP relations only; writes go here."""
        return self.store.con

    def write(self, staged: Staged) -> WriteCounts:
        """Upsert every staged relation, all or nothing.

        Raises ``ValueError`` when a staged relation breaks the contract (a key repeated within
        the batch, a status outside :data:`STATUSES`): that is a bug in the producer, not bad input.
        """
        counts: dict[str, int] = {}
        for table in _ORDER:
            rel = getattr(staged, table)
            if rel is not None:
                counts[table] = self._count(table, rel)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in _ORDER:
                rel = getattr(staged, table)
                if rel is None or not counts[table]:
                    continue
                if table == "nodes":
                    self.con.execute(_merge_nodes_sql(rel, self._columns(rel)))
                    continue
                if table in _REPLACED:
                    self._upsert(table, rel, counts[table])
                else:
                    self.con.execute(_STATEMENTS[table].format(rel=rel))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return WriteCounts(**counts)

    def _upsert(self, table: str, rel: str, staged: int) -> None:
        """Insert, replacing rows whose key is already stored.

        When no staged key is stored yet (a first import, a new trace) a plain INSERT does the
        same for half the index work; the overlap test stops at the first shared key.
        """
        keys = ", ".join(KEYS[table])
        row = self.con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {rel} JOIN {table} USING ({keys}))"
        ).fetchone()
        statement = _STATEMENTS[table] if row and row[0] else _PLAIN.format(table=table)
        try:
            result = self.con.execute(statement.format(rel=rel)).fetchone()
        except duckdb.ConstraintException:
            raise ValueError(f"staged {table} in {rel} repeat a key ({keys})") from None
        if (int(result[0]) if result else 0) != staged:
            # INSERT OR REPLACE reports one row per distinct key: a batch repeating a key
            # would silently keep only one of its rows.
            raise ValueError(f"staged {table} in {rel} repeat a key ({keys})")

    def _columns(self, rel: str) -> list[str]:
        return [str(row[0]) for row in self.con.execute(f"DESCRIBE {rel}").fetchall()]

    def _count(self, table: str, rel: str) -> int:
        """Rows in a staged relation; for jobs, also refuse a status outside the contract."""
        if table != "jobs":
            row = self.con.execute(f"SELECT count(*) FROM {rel}").fetchone()
            return int(row[0]) if row else 0
        allowed = ", ".join(f"'{s}'" for s in STATUSES)
        bad = f"status IS NULL OR status NOT IN ({allowed})"
        row = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {bad}), "
            f"any_value(status) FILTER (WHERE {bad}) FROM {rel}"
        ).fetchone()
        if row and row[1]:
            raise ValueError(f"staged jobs in {rel} have a status outside {STATUSES}: {row[2]!r}")
        return int(row[0]) if row else 0

    def record_import(self, record: ImportRecord) -> None:
        """Log a file's import in ``imports`` (one row per format and path)."""
        self.con.execute(
            "INSERT OR REPLACE INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.import_id,
                record.format,
                record.path,
                record.rows_read,
                record.rows_ok,
                record.rows_bad,
                _naive_utc(record.started_at),
                _naive_utc(record.finished_at),
            ],
        )

    def write_records(
        self,
        *,
        jobs: Iterable[Job] = (),
        attempts: Iterable[Attempt] = (),
        nodes: Iterable[Node] = (),
        events: Iterable[Event] = (),
        source: str | None = None,
    ) -> WriteCounts:
        """Write model records (for adapters that build records in Python), same upsert rules.

        Meant for modest volumes (live adapters, tests); bulk sources stage in SQL instead.
        """
        import pandas as pd  # only this path needs it; keeps `fleetmedic` start-up light

        frames: dict[str, pd.DataFrame] = {}
        job_rows = [_job_row(j, source) for j in jobs]
        attempt_list = list(attempts)
        if job_rows:
            frames["jobs"] = pd.DataFrame(job_rows)
        if attempt_list:
            frames["attempts"] = pd.DataFrame([_attempt_row(a) for a in attempt_list])
            links = [
                {"job_id": a.job_id, "attempt": a.attempt, "node_id": n}
                for a in attempt_list
                for n in dict.fromkeys(a.nodes)
            ]
            if links:
                frames["attempt_nodes"] = pd.DataFrame(links)
        node_rows = [_node_row(n) for n in nodes]
        if node_rows:
            frames["nodes"] = pd.DataFrame(node_rows)
        event_rows = list({r["event_id"]: r for r in map(_event_row, events)}.values())
        if event_rows:
            frames["events"] = pd.DataFrame(event_rows)
        names: dict[str, str] = {}
        for table, frame in frames.items():
            name = f"_fm_records_{table}"
            _temp_table(self.con, name, frame)
            names[table] = name
        try:
            return self.write(Staged(**names))
        finally:
            for name in names.values():
                self.con.execute(f"DROP TABLE IF EXISTS {name}")


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, frame: Any) -> None:
    """Copy ``frame`` (a pandas DataFrame or an Arrow table) into a temp table.

    The SQL names the parameter ``frame`` and DuckDB finds it by name (a replacement scan):
    unlike ``register`` or ``from_df``, that works while the connection holds an unread result.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM frame")


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _job_row(job: Job, source: str | None) -> dict[str, Any]:
    row: dict[str, Any] = job.model_dump()
    for key in ("submitted_at", "started_at", "ended_at"):
        row[key] = _naive_utc(row[key])
    row["source"] = source
    return row


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    row: dict[str, Any] = attempt.model_dump()
    row["nodes"] = ",".join(dict.fromkeys(attempt.nodes)) or None
    for key in ("started_at", "ended_at", "last_checkpoint_at"):
        row[key] = _naive_utc(row[key])
    return row


def _json(value: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(value), sort_keys=True) if value else None


def _node_row(node: Node) -> dict[str, Any]:
    row: dict[str, Any] = node.model_dump()
    row["labels"] = _json(node.labels)
    row["conditions"] = _json(node.conditions)
    return row


def _event_row(event: Event) -> dict[str, Any]:
    ts = _naive_utc(event.ts)
    assert ts is not None
    return {
        "event_id": event_id(
            ts, event.source, event.kind, event.object, event.reason, event.message
        ),
        "ts": ts,
        "source": event.source,
        "kind": event.kind,
        "object": event.object,
        "reason": event.reason,
        "message": event.message,
        "severity": event.severity,
        "raw": _json(event.raw),
    }


_DIAGNOSES_SQL = """
INSERT OR REPLACE INTO diagnoses (job_id, attempt, category, owner, confidence, signature, summary,
    evidence, action_kind, retryable, secondary, node_id, diagnosed_at)
SELECT job_id, attempt, category, owner, confidence, signature, summary, CAST(evidence AS JSON),
    action_kind, retryable, CAST(secondary AS JSON), node_id, diagnosed_at
FROM _fm_diagnoses
"""


@dataclass(frozen=True)
class DiagnosisRow:
    """A diagnosis and the job attempt it explains, as kept in ``diagnoses``."""

    job_id: str
    attempt: int
    diagnosis: Diagnosis
    diagnosed_at: datetime
    node_id: str | None = None


def write_diagnoses(store: Store, rows: Sequence[DiagnosisRow]) -> int:
    """Keep diagnoses, one per job attempt (diagnosing again replaces it), in one transaction.

    They feed ``fleetmedic kpi`` (failures by category and owner, MTTD from ``diagnosed_at``) and
    ``fleetmedic priorities``. The caller stamps the time: the wall clock for a live diagnosis,
    simulated time for the simulator (so a seed reproduces the store exactly).
    """
    import pyarrow as pa  # only this path needs it; keeps `fleetmedic` start-up light

    table = pa.table(
        {
            "job_id": [r.job_id for r in rows],
            "attempt": pa.array([r.attempt for r in rows], pa.int32()),
            "category": [r.diagnosis.category for r in rows],
            "owner": [r.diagnosis.owner for r in rows],
            "confidence": pa.array([r.diagnosis.confidence for r in rows], pa.float64()),
            "signature": [r.diagnosis.signature for r in rows],
            "summary": [r.diagnosis.summary for r in rows],
            "evidence": [json.dumps([e.model_dump() for e in r.diagnosis.evidence]) for r in rows],
            "action_kind": [r.diagnosis.action.kind for r in rows],
            "retryable": [r.diagnosis.retryable for r in rows],
            "secondary": [_secondary_json(r.diagnosis) for r in rows],
            "node_id": [r.node_id or r.diagnosis.details.get("node") for r in rows],
            "diagnosed_at": pa.array(
                [_naive_utc(r.diagnosed_at) for r in rows], pa.timestamp("us")
            ),
        }
    )
    con = store.con
    _temp_table(con, "_fm_diagnoses", table)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_DIAGNOSES_SQL)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _fm_diagnoses")
    return len(rows)


def _secondary_json(diagnosis: Diagnosis) -> str:
    return json.dumps(
        [
            {"category": s.category, "signature": s.signature, "summary": s.summary}
            for s in diagnosis.secondary
        ]
    )


def write_diagnosis(
    store: Store, diagnosis: Diagnosis, *, job_id: str, attempt: int = 1, node_id: str | None = None
) -> None:
    """Keep one job attempt's diagnosis, stamped with the wall clock."""
    row = DiagnosisRow(job_id, attempt, diagnosis, datetime.now(UTC), node_id)
    write_diagnoses(store, [row])


@dataclass(frozen=True, slots=True)
class GpuUsageRow:
    """One utilization sample of a GPU (or of a node, ``gpu=""``), as kept in ``gpu_usage``."""

    ts: datetime
    node_id: str
    gpu: str
    metric: str
    value: float
    uuid: str | None = None
    gpu_model: str | None = None


def write_gpu_usage(store: Store, rows: Sequence[GpuUsageRow]) -> int:
    """Keep utilization samples; a sample already stored (same time, GPU, metric) is replaced.

    Why through here: the Prometheus source polls over overlapping ranges, and the replace rule is
    what makes a repeated poll a no-op, the same idempotence the record tables get from
    :class:`Writer`. Arrow in, one ``INSERT OR REPLACE``: a 10k-GPU poll is one statement.
    """
    if not rows:
        return 0
    import pyarrow as pa  # only this path needs it; keeps `fleetmedic` start-up light

    unique = list({(r.ts, r.node_id, r.gpu, r.metric): r for r in rows}.values())
    table = pa.table(
        {
            "ts": pa.array([_naive_utc(r.ts) for r in unique], pa.timestamp("us")),
            "node_id": [r.node_id for r in unique],
            "gpu": [r.gpu for r in unique],
            "metric": [r.metric for r in unique],
            "value": pa.array([r.value for r in unique], pa.float64()),
            "uuid": [r.uuid for r in unique],
            "gpu_model": [r.gpu_model for r in unique],
        }
    )
    con = store.con
    _temp_table(con, "_fm_gpu_usage", table)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("INSERT OR REPLACE INTO gpu_usage BY NAME SELECT * FROM _fm_gpu_usage")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _fm_gpu_usage")
    return len(unique)
