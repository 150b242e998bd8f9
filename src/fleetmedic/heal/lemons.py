"""Proactive lemon-node detection: nodes that fail more often than the rest of the fleet.

Attribution. A failure is a diagnosis whose owner is ``hardware`` or ``platform``, except the
causes that say nothing about a node (:data:`NOT_NODE_FAULTS`: preemption, scheduling, ...). It is blamed on
the node the diagnosis names (``diagnoses.node_id``) when there is one, else on every node of the
attempt (``attempt_nodes``). A node's *exposure* is the sum of the wall-clock hours of the attempts
it ran in (node-hours; attempts without both start and end are left out).

The test. For node *i* with ``k`` failures in ``e`` node-hours, the null hypothesis is that it
fails at the rate of the *rest* of the fleet, ``λ = (F - k) / (E - e)`` (leave-one-out, so a lemon
does not inflate its own baseline; the pooled rate ``F / E`` when the node is the whole fleet).
Under the null ``k ~ Poisson(μ)``, ``μ = λ e``, and the one-sided p-value is the exact upper tail
``P(X >= k) = Σ_{j>=k} e^{-μ} μ^j / j!``, summed in log space with ``math.lgamma`` (no normal
approximation). The p-values of all exposed nodes are then corrected with Benjamini-Hochberg,
``q_(r) = min_{s>=r} p_(s) m / s`` (m nodes, ranks by ascending p), and a node is flagged when
``q <= fdr`` (default 5%): among flagged nodes, at most that share is expected to be false alarms.

Small counts. When the rest of the fleet has no failure yet, its rate would be 0 and any single
failure would get p = 0; the pooled rate ``F / E`` (the node included) is used instead. And a node
needs at least ``MIN_FAILURES`` (2) to be flagged. Both were found by the simulator, where the test
runs from the first hour: without them a node with one fault in the first six hours was cordoned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetmedic.store.db import Store

BLAMED_OWNERS: tuple[str, ...] = ("hardware", "platform")
NOT_NODE_FAULTS: tuple[str, ...] = (
    "preemption",
    "scheduling",
    "image_pull",
    "rendezvous",
    "timeout",
    "cancelled",
)
"""Platform-owned causes that say nothing about the node (the scheduler's choices, the registry,
the launcher): counting them made every busy node of a demo fleet look like a lemon."""


def node_fault_sql(alias: str = "d") -> str:
    """The SQL condition for a diagnosis that counts against a node (constants only)."""
    owners = ", ".join(f"'{o}'" for o in BLAMED_OWNERS)
    blind = ", ".join(f"'{c}'" for c in NOT_NODE_FAULTS)
    return f"{alias}.owner IN ({owners}) AND {alias}.category NOT IN ({blind})"
DEFAULT_FDR = 0.05
MIN_FAILURES = 2
"""One failure is never a lemon: a single event shows no rate, however early it comes."""


@dataclass(frozen=True)
class LemonRow:
    """One node's test: observed failures against the expected count at the rest-of-fleet rate."""

    node: str
    failures: int
    exposure_hours: float
    expected: float
    p_value: float
    q_value: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _logsumexp(logs: Sequence[float]) -> float:
    top = max(logs)
    return top + math.log(math.fsum(math.exp(x - top) for x in logs))


def poisson_sf(k: int, mu: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(mu)``, exact (log-space sums, no approximation)."""
    if k <= 0:
        return 1.0
    if mu <= 0.0:
        return 0.0
    log_mu = math.log(mu)

    def log_pmf(j: int) -> float:
        return -mu + j * log_mu - math.lgamma(j + 1)

    if k <= mu:
        # The lower tail has k terms and the upper tail is the larger part: 1 - P(X < k).
        lower = math.exp(_logsumexp([log_pmf(j) for j in range(k)]))
        return min(1.0, max(0.0, 1.0 - lower))
    # k > mu: terms decrease from j = k on; sum until they no longer change the total.
    logs = [log_pmf(k)]
    j = k
    while True:
        j += 1
        term = log_pmf(j)
        logs.append(term)
        if term < logs[0] - 40.0:  # e^-40 ~ 4e-18 of the first term, and still falling
            break
    return min(1.0, math.exp(_logsumexp(logs)))


def bh_qvalues(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def lemon_test(
    counts: Mapping[str, tuple[int, float]],
    *,
    fdr: float = DEFAULT_FDR,
    min_failures: int = MIN_FAILURES,
) -> list[LemonRow]:
    """The lemon test over ``{node: (failures, exposure_hours)}``; nodes without exposure skipped.

    Rows come back most suspicious first (ascending p-value, then node id).
    """
    exposed = {n: (int(k), float(e)) for n, (k, e) in counts.items() if e > 0.0}
    total_f = sum(k for k, _ in exposed.values())
    total_e = sum(e for _, e in exposed.values())
    nodes = sorted(exposed)
    expected: list[float] = []
    p_values: list[float] = []
    for node in nodes:
        k, e = exposed[node]
        rest_e = total_e - e
        rest_f = total_f - k
        rate = rest_f / rest_e if rest_e > 0.0 and rest_f > 0 else total_f / total_e
        mu = rate * e
        expected.append(mu)
        p_values.append(poisson_sf(k, mu))
    q_values = bh_qvalues(p_values)
    rows = [
        LemonRow(
            node=node,
            failures=exposed[node][0],
            exposure_hours=exposed[node][1],
            expected=expected[i],
            p_value=p_values[i],
            q_value=q_values[i],
            flagged=q_values[i] <= fdr and exposed[node][0] >= min_failures,
        )
        for i, node in enumerate(nodes)
    ]
    rows.sort(key=lambda r: (r.p_value, r.node))
    return rows


_COUNTS_SQL = """
WITH att AS (
    SELECT job_id, attempt,
           date_diff('millisecond', started_at, ended_at) / 3600000.0 AS hours
    FROM attempts
    WHERE started_at IS NOT NULL AND ended_at IS NOT NULL AND ended_at > started_at
),
exposure AS (
    SELECT an.node_id, sum(att.hours) AS hours
    FROM attempt_nodes an JOIN att ON an.job_id = att.job_id AND an.attempt = att.attempt
    GROUP BY an.node_id
),
blamed AS (
    SELECT d.job_id, d.attempt, d.node_id
    FROM diagnoses d
    WHERE {fault} AND d.node_id IS NOT NULL
    UNION
    SELECT d.job_id, d.attempt, an.node_id
    FROM diagnoses d
    JOIN attempt_nodes an ON an.job_id = d.job_id AND an.attempt = d.attempt
    WHERE {fault} AND d.node_id IS NULL
),
failures AS (SELECT node_id, count(*) AS n FROM blamed GROUP BY node_id)
SELECT e.node_id, coalesce(f.n, 0) AS failures, e.hours
FROM exposure e LEFT JOIN failures f ON f.node_id = e.node_id
"""


def node_counts(store: Store) -> dict[str, tuple[int, float]]:
    """``{node: (failures, exposure_hours)}`` from the store, for every node with exposure."""
    sql = _COUNTS_SQL.format(fault=node_fault_sql("d"))
    rows = store.con.execute(sql).fetchall()
    return {str(node): (int(n), float(hours)) for node, n, hours in rows}


def find_lemons(store: Store, *, fdr: float = DEFAULT_FDR) -> list[LemonRow]:
    """Test every exposed node of the store; see the module docstring for the test."""
    return lemon_test(node_counts(store), fdr=fdr)
