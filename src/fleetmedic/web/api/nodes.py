"""Nodes: the fleet map by health, lemon candidates with their evidence, cordon history."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from fleetmedic.web import control as control_reads
from fleetmedic.web import queries
from fleetmedic.web.analytics import Analytics
from fleetmedic.web.api.common import Paging, json_response, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.schemas import (
    ActionOut,
    LemonOut,
    NodeDetail,
    NodeMap,
    NodeMapPool,
    NodeOut,
    Page,
    page,
)
from fleetmedic.web.security import require
from fleetmedic.web.state import WebState, web_state

router = APIRouter(tags=["nodes"], dependencies=[Depends(require(Role.viewer))])

MAP_NODES = 20_000
"""Nodes drawn on the fleet map; a larger fleet is summarised by the counts only."""
HEALTH = ("cordoned", "not_ready", "lemon", "failing", "healthy")


def _node(row: dict[str, Any]) -> NodeOut:
    ready = row.get("ready")
    return NodeOut(
        node_id=row["node_id"],
        pool=row["pool"],
        gpu_model=row["gpu_model"],
        gpus=row["gpus"],
        cordoned=bool(row["cordoned"]),
        cordon_reason=row["cordon_reason"],
        ready=None if ready is None else str(ready).lower() == "true",
        failures=int(row["failures"]),
        lemon=bool(row["lemon"]),
        health=row["health"],
    )


@router.get("/nodes", response_model=Page[NodeOut], summary="Nodes, worst health first")
def nodes(
    request: Request,
    health: str | None = Query(None, pattern="^(" + "|".join(HEALTH) + ")$"),
    pool: str | None = Query(None, max_length=200),
    paged: Paging = Depends(paging),
) -> Page[NodeOut]:
    rows = web_state(request).analytics.nodes()
    chosen = [
        r
        for r in rows
        if (health is None or r["health"] == health) and (pool is None or r["pool"] == pool)
    ]
    chosen.sort(key=lambda r: (HEALTH.index(r["health"]), -int(r["failures"]), r["node_id"]))
    items = [_node(r) for r in chosen[paged.offset : paged.offset + paged.limit]]
    return page(items, len(chosen), paged.limit, paged.offset)


def map_payload(analytics: Analytics) -> bytes:
    """Every node's health by pool, serialised once per computation of the node health."""
    rows = analytics.nodes()
    pools: dict[str, NodeMapPool] = {}
    for row in rows[:MAP_NODES]:
        name = row["pool"] or "(no pool)"
        pool = pools.setdefault(name, NodeMapPool(pool=name, nodes=[], health=[], failures=[]))
        pool.nodes.append(row["node_id"])
        pool.health.append(row["health"])
        pool.failures.append(int(row["failures"]))
    counts = Counter(row["health"] for row in rows)
    found = NodeMap(
        pools=list(pools.values()),
        counts={h: counts.get(h, 0) for h in HEALTH},
        shown=min(len(rows), MAP_NODES),
        total=len(rows),
    )
    return found.model_dump_json().encode()


@router.get("/nodes/map", response_model=NodeMap, summary="Every node's health, by pool")
async def node_map(request: Request) -> Response:
    analytics = web_state(request).analytics
    return json_response(await analytics.answer(("node_map",), lambda: map_payload(analytics)))


@router.get("/nodes/lemons", response_model=list[LemonOut], summary="Lemon candidates")
def lemons(
    request: Request,
    limit: int = Query(20, ge=1, le=200),
    flagged_only: bool = Query(False),
) -> list[LemonOut]:
    state = web_state(request)
    rows = [r for r in state.analytics.lemons() if r.flagged or not flagged_only][:limit]
    with state.reader.cursor() as con:
        return [
            LemonOut(**r.to_dict(), evidence=queries.node_failures(con, r.node, 5)) for r in rows
        ]


@router.get("/nodes/cordons", response_model=Page[ActionOut], summary="Cordon history")
def cordons(request: Request, paged: Paging = Depends(paging)) -> Page[ActionOut]:
    with web_state(request).control.open() as control:
        if control is None:
            return page([], 0, paged.limit, paged.offset)
        items, total = control_reads.cordon_history(control, None, paged.limit, paged.offset)
    return page(items, total, paged.limit, paged.offset)


def node_detail(state: WebState, node_id: str) -> NodeDetail:
    found = next((r for r in state.analytics.nodes() if r["node_id"] == node_id), None)
    if found is None:
        raise ApiError(404, "no such node")
    with state.reader.cursor() as con:
        failures = queries.node_failures(con, node_id, 50)
    with state.control.open() as control:
        history: list[ActionOut] = []
        if control is not None:
            history, _ = control_reads.cordon_history(control, node_id, 50, 0)
    return NodeDetail(node=_node(found), failures=failures, cordon_history=history)


@router.get("/nodes/{node_id:path}", response_model=NodeDetail, summary="One node")
def node(request: Request, node_id: str = Path(..., max_length=500)) -> NodeDetail:
    return node_detail(web_state(request), node_id)
