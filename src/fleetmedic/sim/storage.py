"""Store a run: jobs, attempts, attempt_nodes, nodes and events through the store's one writer.

Rows go columnar (Arrow) into temporary relations on the writer's connection and the
:class:`~fleetmedic.store.writer.Writer` moves them into the tables in one transaction, the bulk
path the trace importers use; no Python loop inserts a row. Event ids are the writer's content hash,
computed in SQL. Times are naive UTC, as the schema keeps them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from fleetmedic.sim.engine import AttemptRecord, SimResult
from fleetmedic.store.db import Store
from fleetmedic.store.writer import Staged, WriteCounts, Writer, event_id_sql

SOURCE = "sim"
_FINAL = {"succeeded", "failed", "cancelled", "timeout"}


def _times(origin: datetime, seconds: Sequence[float | None]) -> pa.Array:
    """Simulated seconds as a naive-UTC microsecond timestamp array (None stays null)."""
    base = np.datetime64(origin.astimezone(UTC).replace(tzinfo=None), "us")
    values = np.array([0.0 if s is None else s for s in seconds], dtype=np.float64)
    stamps = base + np.round(values * 1e6).astype("timedelta64[us]")
    mask = np.array([s is None for s in seconds], dtype=bool)
    return pa.array(stamps, type=pa.timestamp("us"), mask=mask)


def _stage(con: Any, name: str, table: pa.Table, select: str = "*") -> str:
    """Copy an Arrow table into a temp relation.

    DuckDB finds ``arrow_table`` by its Python name (a replacement scan), which, unlike
    ``register``, works while the connection holds an unread result (see ``store.writer``).
    """
    arrow_table = table  # noqa: F841  (read by DuckDB by name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM arrow_table")
    return name


def job_status(state: str) -> str:
    """The store's status of a job state at the horizon."""
    if state in _FINAL:
        return state
    return "running" if state == "running" else "pending"


def _jobs(result: SimResult) -> pa.Table:
    origin = result.config.start
    cluster = f"sim-{result.config.gpus}gpu-seed{result.config.seed}"
    last: dict[int, AttemptRecord] = {}
    for record in result.attempts:
        if record.job not in last or record.attempt > last[record.job].attempt:
            last[record.job] = record
    rows = [s for s in result.states if s.status != "future"]
    model = {pool: pool.removeprefix("gpu-").upper() for pool in set(result.node_pools)}
    return pa.table(
        {
            "job_id": [s.spec.job_id for s in rows],
            "source": [SOURCE] * len(rows),
            "cluster": [cluster] * len(rows),
            "user": [s.spec.user for s in rows],
            "team": [s.spec.team for s in rows],
            "project": [f"{s.spec.team}/{s.spec.kind}" for s in rows],
            "kind": [s.spec.kind for s in rows],
            "framework": ["pytorch"] * len(rows),
            "num_gpus": pa.array([float(s.spec.gpus) for s in rows], pa.float64()),
            "num_nodes": pa.array([s.spec.nodes for s in rows], pa.int32()),
            "priority": pa.array([s.spec.priority for s in rows], pa.int32()),
            "queue": [s.spec.team for s in rows],
            "gpu_model": [model[s.spec.pool] for s in rows],
            "node_pool": [s.spec.pool for s in rows],
            "submitted_at": _times(origin, [s.spec.submit for s in rows]),
            "started_at": _times(origin, [s.first_start for s in rows]),
            "ended_at": _times(origin, [s.ended if s.status in _FINAL else None for s in rows]),
            "status": [job_status(s.status) for s in rows],
            "attempts": pa.array([s.attempts for s in rows], pa.int32()),
            "exit_code": pa.array(
                [last[s.idx].exit_code if s.idx in last else None for s in rows], pa.int32()
            ),
            "gpu_util": pa.array([s.spec.gpu_util for s in rows], pa.float64()),
        }
    )


def _attempts(result: SimResult) -> tuple[pa.Table, pa.Table]:
    origin, names, specs = result.config.start, result.node_names, result.jobs
    records = sorted(result.attempts, key=lambda r: (r.job, r.attempt))
    attempts = pa.table(
        {
            "job_id": [specs[r.job].job_id for r in records],
            "attempt": pa.array([r.attempt for r in records], pa.int32()),
            "nodes": [",".join(names[i] for i in r.nodes) or None for r in records],
            "started_at": _times(origin, [r.start for r in records]),
            "ended_at": _times(origin, [r.end for r in records]),
            "status": [r.status for r in records],
            "exit_code": pa.array([r.exit_code for r in records], pa.int32()),
            "reason": [r.reason for r in records],
            "last_checkpoint_at": _times(origin, [r.last_ckpt for r in records]),
        }
    )
    link_job, link_attempt, link_node = [], [], []
    for r in records:
        for i in r.nodes:
            link_job.append(specs[r.job].job_id)
            link_attempt.append(r.attempt)
            link_node.append(names[i])
    links = pa.table(
        {"job_id": link_job, "attempt": pa.array(link_attempt, pa.int32()), "node_id": link_node}
    )
    return attempts, links


def _nodes(result: SimResult) -> pa.Table:
    config = result.config
    names, pools = result.node_names, result.node_pools
    labels = [
        json.dumps(
            {
                "node-pool": p,
                "nvidia.com/gpu.product": p.removeprefix("gpu-").upper(),
                "nvidia.com/gpu.count": "8",
            },
            sort_keys=True,
        )
        for p in pools
    ]
    cordoned = [i in result.cordoned for i in range(len(names))]
    return pa.table(
        {
            "node_id": names,
            "gpu_model": [p.removeprefix("gpu-").upper() for p in pools],
            "gpus": pa.array([8] * len(names), pa.int32()),
            "pool": pools,
            "labels": labels,
            "conditions": [
                json.dumps({"Ready": "True" if up else "False"})
                for up in (result.node_up or [True] * len(names))
            ],
            "cordoned": cordoned,
            "cordon_reason": [result.cordoned.get(i) for i in range(len(names))],
            "first_seen": _times(config.start, [0.0] * len(names)),
            "last_seen": _times(config.start, [config.horizon] * len(names)),
        }
    )


def _events(result: SimResult) -> pa.Table:
    rows = result.events
    raw = [
        None if e.job_id is None else json.dumps({"job_id": e.job_id, "attempt": e.attempt})
        for e in rows
    ]
    return pa.table(
        {
            "ts": _times(result.config.start, [e.ts for e in rows]),
            "source": [e.source for e in rows],
            "kind": [e.kind for e in rows],
            "object": [e.obj for e in rows],
            "reason": [e.reason for e in rows],
            "message": [e.message for e in rows],
            "severity": [e.severity for e in rows],
            "raw": raw,
        }
    )


def write_result(store: Store, result: SimResult) -> WriteCounts:
    """Stage every table of the run and write them in one transaction."""
    writer = Writer(store)
    con = writer.con
    attempts, links = _attempts(result)
    event_id = event_id_sql(
        ts="ts", source="source", kind="kind", obj="object", reason="reason", message="message"
    )
    staged = Staged(
        jobs=_stage(con, "_fm_sim_jobs", _jobs(result)),
        attempts=_stage(con, "_fm_sim_attempts", attempts),
        attempt_nodes=_stage(con, "_fm_sim_attempt_nodes", links),
        nodes=_stage(
            con,
            "_fm_sim_nodes",
            _nodes(result),
            "* REPLACE (CAST(labels AS JSON) AS labels, CAST(conditions AS JSON) AS conditions)",
        ),
        events=_stage(
            con,
            "_fm_sim_events_all",
            _events(result),
            f"{event_id} AS event_id, * REPLACE (CAST(raw AS JSON) AS raw)",
        ),
    )
    # Identical events (same content hash) are kept once, the same one every run.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _fm_sim_events AS SELECT DISTINCT ON (event_id) * "
        "FROM _fm_sim_events_all ORDER BY event_id, CAST(raw AS VARCHAR) NULLS FIRST"
    )
    staged = Staged(
        jobs=staged.jobs,
        attempts=staged.attempts,
        attempt_nodes=staged.attempt_nodes,
        nodes=staged.nodes,
        events="_fm_sim_events",
    )
    try:
        return writer.write(staged)
    finally:
        for name in ("jobs", "attempts", "attempt_nodes", "nodes", "events", "events_all"):
            con.execute(f"DROP TABLE IF EXISTS _fm_sim_{name}")


def hours(seconds: float) -> float:
    return seconds / 3600.0 if math.isfinite(seconds) else math.inf
