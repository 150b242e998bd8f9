"""Capacity: how much of the fleet's GPU time was allocated, and how busy allocated GPUs were.

Why: goodput only judges the GPU-hours jobs held; GPUs nobody held are lost too. Capacity comes
from the ``nodes`` table (GPUs per node, seen from ``first_seen`` to ``last_seen``), so without it
these KPIs are ``null`` rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis

from fleetmedic.kpi.facts import HOUR
from fleetmedic.kpi.numbers import ratio
from fleetmedic.kpi.period import FOREVER, Window, attach, overlap_seconds
from fleetmedic.kpi.tables import KpiTables

_NODE_DIMENSIONS = {"pool": "pool", "gpu_model": "gpu_model", "week": "pkey"}
"""Groupings a node belongs to; for team, user, size and cluster capacity is fleet-wide only."""


@dataclass(frozen=True)
class NodeCapacity:
    """What the nodes offered in one group: node-hours, GPU-hours, nodes and GPUs."""

    node_hours: float = 0.0
    gpu_hours: float = 0.0
    nodes: int = 0
    gpus: float = 0.0


def groups_with_capacity(by: str | None) -> bool:
    return by is None or by in _NODE_DIMENSIONS


def node_capacity(
    tables: KpiTables, windows: Sequence[Window], by: str | None
) -> dict[str, NodeCapacity]:
    """Node-hours and GPU-hours each group's nodes were present in the period."""
    if not groups_with_capacity(by):
        return {}
    n = tables.nodes
    t = attach(n, windows, n.first_seen.fill_null(-FOREVER), n.last_seen.fill_null(FOREVER))
    seen = overlap_seconds(
        t.first_seen.fill_null(-FOREVER), t.last_seen.fill_null(FOREVER), t.p0, t.p1
    )
    if by is None:
        key = ibis.literal("all")
    else:
        key = t[_NODE_DIMENSIONS[by]].cast("string").fill_null("unknown")
    t = t.mutate(g=key, seen_h=seen / HOUR)
    expr = t.group_by("g").aggregate(
        node_hours=t.seen_h.sum(),
        gpu_hours=(t.seen_h * t.gpus).sum(),
        nodes=t.node_id.nunique(),
        gpus=t.gpus.sum(),
    )
    frame = tables.backend.execute(expr).fillna(0)
    return {
        str(row.g): NodeCapacity(
            float(row.node_hours), float(row.gpu_hours), int(row.nodes), float(row.gpus)
        )
        for row in frame.itertuples()
    }


def capacity_section(
    capacity: NodeCapacity, allocated: float, util_gh: float, util_cov_gh: float
) -> dict[str, Any]:
    """Allocation rate, idle GPU-hours and utilization of allocated GPUs (where measured)."""
    known = capacity.gpu_hours > 0
    allocation = ratio(allocated, capacity.gpu_hours)
    utilization = ratio(util_gh, util_cov_gh)
    return {
        "nodes": capacity.nodes,
        "gpus": capacity.gpus,
        "gpu_hours": capacity.gpu_hours if known else None,
        "allocated_gpu_hours": allocated,
        "allocation_rate": allocation,
        "idle_gpu_hours": max(capacity.gpu_hours - allocated, 0.0) if known else None,
        "utilization": utilization,
        "utilization_coverage": ratio(util_cov_gh, allocated),
        "allocated_idle_gpu_hours": util_cov_gh - util_gh if util_cov_gh else None,
        "effective_utilization": (
            allocation * utilization if allocation is not None and utilization is not None else None
        ),
        "fragmentation": None,
    }
