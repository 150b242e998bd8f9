"""Lemon nodes: the exact Poisson tail, Benjamini-Hochberg, and detection from a store."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from fleetmedic.heal.lemons import bh_qvalues, find_lemons, lemon_test, node_counts, poisson_sf
from fleetmedic.store.db import Store

T0 = datetime(2024, 1, 1)


def attempt(
    store: Store,
    job: str,
    nodes: list[str],
    hours: float,
    *,
    attempt_no: int = 1,
    category: str | None = None,
    owner: str | None = None,
    blamed: str | None = None,
) -> None:
    """One job attempt of ``hours`` on ``nodes``, with a diagnosis when ``category`` is given."""
    store.con.execute(
        "INSERT OR IGNORE INTO jobs (job_id, num_gpus, status) VALUES (?, ?, 'failed')",
        [job, 8 * len(nodes)],
    )
    store.con.execute(
        "INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at) VALUES (?, ?, ?, ?, ?)",
        [job, attempt_no, ",".join(nodes), T0, T0 + timedelta(hours=hours)],
    )
    store.con.executemany(
        "INSERT INTO attempt_nodes VALUES (?, ?, ?)", [[job, attempt_no, n] for n in nodes]
    )
    if category is not None:
        store.con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, node_id) VALUES (?, ?, ?, ?, ?)",
            [job, attempt_no, category, owner, blamed],
        )


def naive_sf(k: int, mu: float) -> float:
    return 1.0 - sum(math.exp(-mu) * mu**j / math.factorial(j) for j in range(k))


@pytest.mark.parametrize(
    ("k", "mu"), [(0, 2.0), (1, 1.5), (6, 1.0), (3, 0.2), (20, 10.0), (4, 7.0)]
)
def test_poisson_tail_matches_the_textbook_sum(k: int, mu: float) -> None:
    assert poisson_sf(k, mu) == pytest.approx(naive_sf(k, mu), rel=1e-9, abs=1e-15)


def test_poisson_tail_far_out_stays_exact() -> None:
    # P(X >= 30 | mu = 1): the first term dominates, 1/30! e^-1 (1 + 1/31 + ...).
    first = math.exp(-1.0 - math.lgamma(31))
    assert poisson_sf(30, 1.0) == pytest.approx(first * (1 + 1 / 31 + 1 / (31 * 32)), rel=1e-4)
    tiny = math.exp(-1.0 - math.lgamma(151))  # ~6e-264: no 1 - CDF cancellation to zero
    assert poisson_sf(150, 1.0) == pytest.approx(tiny * (1 + 1 / 151), rel=1e-4)
    assert poisson_sf(5, 0.0) == 0.0
    assert poisson_sf(50_000, 50_000.0) == pytest.approx(0.5, abs=0.01)  # large mean, still exact


def test_bh_by_hand() -> None:
    # sorted: 0.005 (r1) 0.01 (r2) 0.03 (r3) 0.04 (r4); q = min over later ranks of p*m/r
    assert bh_qvalues([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert bh_qvalues([0.5, 0.9]) == pytest.approx([0.9, 0.9])
    assert bh_qvalues([]) == []


def test_six_failures_in_100_hours_against_a_fleet_at_one_per_100_hours_is_flagged(
    store: Store,
) -> None:
    # The lemon: 6 hardware failures in 100 node-hours.
    for i in range(6):
        attempt(
            store, f"lemon-{i}", ["n-lemon"], 100 / 6, category="gpu_hardware", owner="hardware"
        )
    # Ten ordinary nodes: 100 node-hours and one platform failure each -> rest rate 10/1000 = 0.01/h.
    for n in range(10):
        attempt(store, f"ok-{n}-a", [f"n{n}"], 50.0, category="nccl_comm", owner="platform")
        attempt(store, f"ok-{n}-b", [f"n{n}"], 50.0)
    # User failures are not the node's fault.
    attempt(store, "user-oom", ["n0"], 0.0, category="gpu_oom", owner="user")
    rows = {r.node: r for r in find_lemons(store)}
    lemon = rows["n-lemon"]
    assert lemon.failures == 6
    assert lemon.exposure_hours == pytest.approx(100.0)
    assert lemon.expected == pytest.approx(1.0)  # 0.01/h x 100 h
    # P(X >= 6 | 1) = 1 - e^-1 (1 + 1 + 1/2 + 1/6 + 1/24 + 1/120) = 0.000594
    assert lemon.p_value == pytest.approx(0.000594185, rel=1e-5)
    assert lemon.q_value == pytest.approx(0.000594185 * 11, rel=1e-5)  # smallest of 11
    assert lemon.flagged
    ordinary = rows["n3"]
    # rest of fleet: 15 failures in 1000 h -> expected 1.5; P(X >= 1) = 1 - e^-1.5
    assert ordinary.expected == pytest.approx(1.5)
    assert ordinary.p_value == pytest.approx(1 - math.exp(-1.5))
    assert [r.node for r in find_lemons(store) if r.flagged] == ["n-lemon"]
    assert next(iter(find_lemons(store))).node == "n-lemon"  # most suspicious first


def test_blame_goes_to_the_named_node_else_to_every_node_of_the_attempt(store: Store) -> None:
    attempt(
        store, "j1", ["a", "b", "c"], 2.0, category="gpu_hardware", owner="hardware", blamed="b"
    )
    attempt(store, "j2", ["a", "c"], 1.0, category="nccl_comm", owner="platform")
    attempt(store, "j3", ["a"], 4.0, category="code_error", owner="user")
    counts = node_counts(store)
    assert {node: k for node, (k, _) in counts.items()} == {"a": 1, "b": 1, "c": 1}
    assert {node: round(e, 9) for node, (_, e) in counts.items()} == {"a": 7.0, "b": 2.0, "c": 3.0}


def test_bh_keeps_a_nominal_hit_among_many_nodes_unflagged() -> None:
    # 200 ordinary nodes: 1 failure in 100 h each (rate 0.01/h).
    counts: dict[str, tuple[int, float]] = {f"n{i:03d}": (1, 100.0) for i in range(200)}
    # A node with 4 failures in 100 h: p = P(X >= 4 | ~1) ~ 0.019 < 0.05, but p x 201 > 0.05;
    # BH's step-up caps q at the p of the larger ranks (the ordinary nodes, p = P(X >= 1 | ~1)).
    counts["unlucky"] = (4, 100.0)
    rows = {r.node: r for r in lemon_test(counts)}
    unlucky, ordinary = rows["unlucky"], rows["n000"]
    assert unlucky.p_value == pytest.approx(naive_sf(4, 200 / 20000 * 100))
    assert unlucky.p_value < 0.05
    assert ordinary.q_value == pytest.approx(ordinary.p_value)  # the largest p keeps its own
    assert unlucky.q_value == pytest.approx(min(unlucky.p_value * 201, ordinary.p_value))
    assert not rows["unlucky"].flagged
    # A real lemon among them survives the correction, and only it.
    counts["lemon"] = (12, 100.0)
    flagged = [r.node for r in lemon_test(counts) if r.flagged]
    assert flagged == ["lemon"]
    rows = {r.node: r for r in lemon_test(counts)}
    assert rows["lemon"].q_value <= 0.05 < rows["unlucky"].q_value


def test_no_exposure_no_test(store: Store) -> None:
    assert find_lemons(store) == []
    assert lemon_test({"idle": (0, 0.0)}) == []
    only = lemon_test({"solo": (3, 10.0)})  # the whole fleet: pooled rate, expected = observed
    assert only[0].expected == pytest.approx(3.0) and not only[0].flagged


def test_one_early_failure_is_not_a_lemon() -> None:
    # Six hours in: one node has the fleet's only fault. The rest's rate is 0, which would make
    # P(X >= 1) = 0; the pooled rate is used instead, and one failure never flags.
    counts = {f"n{i:03d}": (0, 6.0) for i in range(255)}
    counts["early"] = (1, 6.0)
    rows = {r.node: r for r in lemon_test(counts)}
    assert rows["early"].expected == pytest.approx(6.0 / (256 * 6.0))
    assert rows["early"].p_value > 0.0
    assert not rows["early"].flagged
    counts["early"] = (3, 6.0)  # three faults in six hours: that is a lemon
    assert [r.node for r in lemon_test(counts) if r.flagged] == ["early"]
    assert not [r for r in lemon_test(counts, min_failures=4) if r.flagged]


def test_causes_that_say_nothing_about_the_node_do_not_count(store: Store) -> None:
    attempt(store, "hw", ["a"], 10.0, category="gpu_hardware", owner="hardware")
    attempt(store, "pre", ["a"], 10.0, category="preemption", owner="platform")
    attempt(store, "img", ["b"], 10.0, category="image_pull", owner="platform")
    attempt(store, "nccl", ["b"], 10.0, category="nccl_comm", owner="platform")
    counts = node_counts(store)
    assert {node: k for node, (k, _) in counts.items()} == {"a": 1, "b": 1}
