"""Group failures that share one root cause into an incident, so twenty tickets are one outage.

Two shapes (thresholds in ``rules.yaml``):

* **burst**: failures of one platform or hardware category, each within ``gap_minutes`` of the
  previous one (gaps and islands over the failure times), with at least ``min_jobs`` jobs of
  ``min_users`` users. Its id is the category and the island's first failure time, so every
  ticket about the same outage gets the same id, whenever it is filed.
* **node**: one node under many failures of node-scoped causes (GPU or node faults, NCCL, hangs,
  evictions) within ``node_days`` (fewer are enough when one is a GPU or node fault): a lemon, or
  a node that went bad. Only tickets of those causes (or of an unknown one) join it.

Both are one SQL query over a bounded time range; nothing is loaded into Python but the groups.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from fleetmedic.model import CATEGORIES
from fleetmedic.tickets.models import Incident, JobLink
from fleetmedic.tickets.rules import IncidentRules

LOOKAROUND = timedelta(hours=24)

_FAILURES = """
SELECT d.job_id, j."user", coalesce(a.ended_at, d.diagnosed_at) AS t,
       coalesce(j.num_gpus, 0) * coalesce(epoch(a.ended_at - a.started_at), 0) / 3600.0 AS lost
FROM diagnoses d
JOIN jobs j USING (job_id)
LEFT JOIN attempts a ON a.job_id = d.job_id AND a.attempt = d.attempt
WHERE d.category = $category
  AND coalesce(a.ended_at, d.diagnosed_at) BETWEEN $lo AND $hi
"""

_BURST_SQL = f"""
WITH f AS ({_FAILURES}),
g AS (
    SELECT *, CASE WHEN t - lag(t) OVER (ORDER BY t, job_id) <= to_seconds($gap) THEN 0
                   ELSE 1 END AS brk
    FROM f
),
i AS (SELECT *, sum(brk) OVER (ORDER BY t, job_id ROWS UNBOUNDED PRECEDING) AS island FROM g)
SELECT min(t) AS since, max(t) AS until, count(DISTINCT job_id) AS jobs,
       count(DISTINCT "user") AS users, sum(lost) AS lost
FROM i GROUP BY island
HAVING min(t) - to_seconds($gap) <= $anchor AND max(t) + to_seconds($gap) >= $anchor
ORDER BY jobs DESC LIMIT 1
"""

_NODE_SQL = """
SELECT min(coalesce(a.ended_at, d.diagnosed_at)) AS since,
       max(coalesce(a.ended_at, d.diagnosed_at)) AS until,
       count(DISTINCT d.job_id) AS jobs, count(DISTINCT j."user") AS users,
       count(DISTINCT d.job_id) FILTER (WHERE d.category IN (SELECT unnest($hardware::VARCHAR[])))
           AS hardware,
       sum(coalesce(j.num_gpus, 0) * coalesce(epoch(a.ended_at - a.started_at), 0) / 3600.0)
           AS lost,
       mode(d.category) AS category
FROM diagnoses d
JOIN jobs j USING (job_id)
LEFT JOIN attempts a ON a.job_id = d.job_id AND a.attempt = d.attempt
WHERE d.category IN (SELECT unnest($categories::VARCHAR[]))
  AND (d.node_id = $node OR EXISTS (
        SELECT 1 FROM attempt_nodes n
        WHERE n.job_id = d.job_id AND n.attempt = d.attempt AND n.node_id = $node))
  AND coalesce(a.ended_at, d.diagnosed_at) BETWEEN $lo AND $hi
"""


def _naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def burst(
    con: duckdb.DuckDBPyConnection, category: str, anchor: datetime, rules: IncidentRules
) -> Incident | None:
    """The burst of ``category`` failures around ``anchor``, if it is big enough to be one."""
    if category not in rules.burst_categories:
        return None
    rule = rules.burst(category)
    at = _naive(anchor)
    row = con.execute(
        _BURST_SQL,
        {
            "category": category,
            "lo": at - LOOKAROUND,
            "hi": at + LOOKAROUND,
            "gap": int(rule.gap_minutes * 60),
            "anchor": at,
        },
    ).fetchone()
    if row is None or row[2] < rule.min_jobs or row[3] < rule.min_users:
        return None
    since, until, jobs, users, lost = row
    return Incident(
        incident_id=f"INC-{category}-{since:%Y%m%d-%H%M}",
        kind="burst",
        category=category,
        since=_aware(since),
        until=_aware(until),
        jobs=int(jobs),
        users=int(users),
        gpu_hours_lost=round(float(lost or 0.0), 2),
        summary=f"{jobs} jobs of {users} users failed with {category} between "
        f"{since:%Y-%m-%d %H:%M} and {until:%H:%M} UTC",
    )


def bad_node(
    con: duckdb.DuckDBPyConnection, node: str, anchor: datetime, rules: IncidentRules
) -> Incident | None:
    """The node's run of platform/hardware failures before ``anchor``, if it marks a bad node."""
    at = _naive(anchor)
    params: dict[str, Any] = {
        "node": node,
        "lo": at - timedelta(days=rules.node_days),
        "hi": at + timedelta(hours=1),
        "categories": list(rules.node_categories),
        "hardware": list(rules.hardware_categories),
    }
    row = con.execute(_NODE_SQL, params).fetchone()
    if row is None or row[0] is None:
        return None
    since, until, jobs, users, hardware, lost, category = row
    enough = jobs >= rules.node_min_jobs or (hardware >= 1 and jobs >= rules.node_min_jobs_hardware)
    if not enough:
        return None
    return Incident(
        incident_id=f"INC-node-{node}-{since:%Y%m%d}",
        kind="node",
        category=str(category),
        node=node,
        since=_aware(since),
        until=_aware(until),
        jobs=int(jobs),
        users=int(users),
        gpu_hours_lost=round(float(lost or 0.0), 2),
        summary=f"node {node}: {jobs} jobs failed there since {since:%Y-%m-%d %H:%M} UTC "
        f"({hardware} with a GPU or node fault)",
    )


def _suspect_nodes(links: list[JobLink], nodes: list[str]) -> list[str]:
    found: dict[str, None] = {}
    for link in links:
        if link.diagnosis_node:
            found.setdefault(link.diagnosis_node, None)
    for link in links:
        owner = CATEGORIES[link.category].owner if link.category in CATEGORIES else "user"
        if owner != "user" and len(link.nodes) <= 2:
            for node in link.nodes:
                found.setdefault(node, None)
    for node in nodes:
        found.setdefault(node, None)
    return list(found)[:5]


def find_incident(
    con: duckdb.DuckDBPyConnection,
    links: list[JobLink],
    category: str,
    at: datetime,
    nodes: list[str],
    rules: IncidentRules,
) -> Incident | None:
    """The incident the ticket belongs to: its jobs' node for hardware causes, else a burst."""
    entry = CATEGORIES.get(category)
    if entry is None or entry.owner == "user":
        return None  # the user's own bug is never an outage, whatever else hit that node
    anchor = next((link.ended_at for link in links if link.category == category), None) or at
    node_first = category in rules.hardware_categories
    found_node = None
    suspects = _suspect_nodes(links, nodes)
    if category not in (*rules.node_categories, "unknown"):
        suspects = []
    for node in suspects:
        found_node = bad_node(con, node, anchor, rules)
        if found_node is not None:
            break
    if node_first and found_node is not None:
        return found_node
    return burst(con, category, anchor, rules) or found_node
