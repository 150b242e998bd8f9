"""Scheduler invariants: no GPU double-booked, gangs all-or-nothing, preemption by priority."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from fleetmedic.sim import SimResult
from fleetmedic.sim.scheduler import GangScheduler
from fleetmedic.sim.workload import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NORMAL

HOUR = 3600.0


@dataclass
class Q:
    """A pending job as the scheduler sees it."""

    idx: int
    gpus: int
    priority: int = PRIORITY_NORMAL
    team: str = "a"
    pool: str = "p"
    queued_at: float = 0.0
    excluded: set[int] = field(default_factory=set)
    next_search: float = 0.0


def fleet(nodes: int, quota: int = 10_000) -> GangScheduler:
    return GangScheduler(
        [(f"n{i}", "p") for i in range(nodes)], {"a": quota, "b": quota}, preempt_after=2 * HOUR
    )


def check_books(s: GangScheduler) -> None:
    held: dict[int, int] = defaultdict(int)
    for run_idx, run in s.running.items():
        per_node = min(run.gpus, 8)
        assert len(run.nodes) == max(1, run.gpus // 8)
        assert len(set(run.nodes)) == len(run.nodes)
        for n in run.nodes:
            assert s.nodes[n].jobs[run_idx] == per_node
            held[n] += per_node
    for node in s.nodes:
        assert 0 <= node.free <= 8
        assert node.free + held[node.idx] == 8, node


def test_random_workload_never_double_books_a_gpu() -> None:
    rng = random.Random(3)
    s = fleet(12)
    now, next_idx = 0.0, 0
    for _ in range(600):
        now += rng.uniform(0, 600)
        if rng.random() < 0.6:
            gpus = rng.choice([1, 1, 2, 4, 8, 16, 32])
            prio = rng.choice([PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH])
            s.enqueue(Q(next_idx, gpus, prio, rng.choice("ab"), queued_at=now))
            next_idx += 1
        elif s.running:
            s.release(rng.choice(sorted(s.running)))
        for placement in s.schedule(now):
            assert placement.job in s.running
            assert not set(placement.victims) & set(s.running)  # victims were released
        check_books(s)


def test_gang_is_placed_whole_or_not_at_all() -> None:
    s = fleet(8)
    s.enqueue(Q(0, 8))
    assert [p.job for p in s.schedule(0.0)] == [0]  # one node taken
    s.enqueue(Q(1, 64))  # needs all 8 nodes, only 7 are free
    assert s.schedule(1.0) == []
    assert 1 not in s.running and all(1 not in n.jobs for n in s.nodes)
    s.release(0)
    (placement,) = s.schedule(2.0)
    assert placement.job == 1 and len(placement.nodes) == 8
    check_books(s)


def test_preemption_takes_the_lowest_priority_first() -> None:
    s = fleet(2)
    s.enqueue(Q(0, 8, PRIORITY_NORMAL))
    s.enqueue(Q(1, 8, PRIORITY_LOW))
    s.schedule(0.0)
    s.enqueue(Q(2, 8, PRIORITY_HIGH, queued_at=10.0))
    (placement,) = s.schedule(10.0)
    assert placement.job == 2 and placement.victims == (1,)
    assert 0 in s.running and 1 not in s.running
    check_books(s)


def test_sub_node_preemption_evicts_low_before_normal_and_smallest_first() -> None:
    s = fleet(1)
    for idx, (gpus, prio) in enumerate(
        [(4, PRIORITY_NORMAL), (2, PRIORITY_LOW), (2, PRIORITY_LOW)]
    ):
        s.enqueue(Q(idx, gpus, prio))
    s.schedule(0.0)
    s.enqueue(Q(9, 2, PRIORITY_NORMAL, queued_at=5.0))
    (placement,) = s.schedule(5.0)
    assert len(placement.victims) == 1 and placement.victims[0] in {1, 2}
    assert 0 in s.running


def test_equal_priority_is_not_preempted_before_two_hours() -> None:
    s = fleet(4)
    for idx in range(4):
        s.enqueue(Q(idx, 8))
    s.schedule(0.0)
    s.enqueue(Q(10, 16, queued_at=0.0))
    assert s.schedule(HOUR) == []  # neither waited nor ran two hours
    s.waiting[10].next_search = 0.0
    placements = s.schedule(2.5 * HOUR)
    assert [p.job for p in placements] == [10] and len(placements[0].victims) == 2


def test_a_team_over_its_quota_borrows_but_does_not_preempt() -> None:
    s = fleet(2, quota=8)
    s.enqueue(Q(0, 8, PRIORITY_LOW, team="b"))
    s.enqueue(Q(1, 8, PRIORITY_NORMAL, team="a"))
    s.schedule(0.0)
    s.enqueue(Q(2, 8, PRIORITY_NORMAL, team="a"))  # team a already uses its 8
    assert s.schedule(1.0) == []


def test_the_simulated_fleet_never_overcommits_a_node(small: SimResult) -> None:
    """Sweep every node's attempts over time: concurrent GPUs never exceed 8."""
    horizon = small.config.horizon
    edges: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for a in small.attempts:
        if a.start is None:
            continue
        end = horizon if a.end is None else a.end
        for node in a.nodes:
            edges[node].append((a.start, min(a.gpus, 8)))
            edges[node].append((end, -min(a.gpus, 8)))
    for node, points in edges.items():
        level = 0
        for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
            level += delta
            assert level <= 8, node
