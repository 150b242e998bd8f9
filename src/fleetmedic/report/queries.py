"""The one query the KPI suite and the ranking don't already answer: which nodes fail most.

It reuses the ranking's failure attribution (the diagnosed node takes a failure, otherwise the
attempt's nodes share it), so a node tops this chart for the same reason it is named in a
priorities row. Aggregated in the store; only the top nodes come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis

from fleetmedic.kpi import as_backend, load_tables
from fleetmedic.kpi.priorities_loss import CURRENT, attribution, failed_runs, runs_in
from fleetmedic.kpi.priorities_model import Window


@dataclass(frozen=True)
class NodeLoss:
    node_id: str
    pool: str | None
    failures: int
    gpu_hours_lost: float


def worst_nodes(backend: Any, window: Window, limit: int = 15) -> list[NodeLoss]:
    """Nodes ranked by GPU-hours lost to failures they took part in, then by failure count."""
    tables = load_tables(as_backend(backend))
    failed = failed_runs(tables.backend, runs_in(tables, window))
    current = failed.filter(failed.pkey == CURRENT)
    located = attribution(tables.backend, current)
    located = located.filter(located.node_id.notnull())
    lost = current.select("job_id", "attempt", "lost_gpu_hours")
    joined = located.join(lost, ["job_id", "attempt"])
    per_node = joined.group_by("node_id").aggregate(
        pool=joined.pool.max(),
        failures=joined.count(),
        lost=(joined.lost_gpu_hours * joined.share).sum(),
    )
    top = per_node.order_by([ibis.desc("lost"), ibis.desc("failures"), "node_id"]).limit(limit)
    return [
        NodeLoss(
            node_id=str(row["node_id"]),
            pool=row["pool"],
            failures=int(row["failures"]),
            gpu_hours_lost=float(row["lost"] or 0.0),
        )
        for row in top.to_pyarrow().to_pylist()
    ]
