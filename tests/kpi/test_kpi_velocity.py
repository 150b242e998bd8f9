"""Developer velocity: queue waits, attempts per success, first success, iteration cycle,
users blocked by platform failures (expected values computed by hand)."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

pytestmark = QUIET


def test_queue_wait_percentiles_interpolate_linearly(fleet: Fleet) -> None:
    # waits 0, 1, 2, 3, 10 h. Linear interpolation (position q x (n - 1)):
    # p50 -> index 2 = 2; p90 -> index 3.6 = 3 + 0.6 x 7 = 7.2; p99 -> 3.96 = 3 + 0.96 x 7 = 9.72
    for i, wait in enumerate([0, 1, 2, 3, 10]):
        fleet.job(f"j{i}", gpus=1, sub=0, start=wait, end=wait + 1)
    fleet.job("pending", status="pending", sub=0, start=None, end=None)  # still waiting: excluded
    k = fleet.kpis()
    w = k["queue_wait_hours"]
    assert (w["p50"], w["p90"], w["p99"]) == pytest.approx((2.0, 7.2, 9.72))
    assert w["mean"] == pytest.approx(3.2)
    assert w["jobs"] == 5


def test_queue_wait_by_size_bucket(fleet: Fleet) -> None:
    fleet.job("s1", gpus=1, sub=0, start=1, end=2)
    fleet.job("s2", gpus=1, sub=0, start=3, end=4)
    fleet.job("big", gpus=64, sub=0, start=10, end=11)
    by_size = fleet.kpis()["velocity"]["queue_wait_hours_by_size"]
    assert list(by_size) == ["1", "9-64"]
    assert by_size["1"]["p50"] == pytest.approx(2.0)
    assert by_size["9-64"]["p99"] == pytest.approx(10.0)


def test_queue_wait_counts_jobs_that_started_in_the_period(fleet: Fleet) -> None:
    fleet.job("before", sub=0, start=2, end=30)  # started before the period
    fleet.job("inside", sub=9, start=15, end=16)  # waited 6 h, started inside
    w = fleet.kpis(since=10, until=20)["queue_wait_hours"]
    assert (w["jobs"], w["p50"]) == (1, 6.0)


def test_attempts_per_success(fleet: Fleet) -> None:
    # 3 + 1 + 2 attempts for 2 succeeded jobs -> 3 attempts per success.
    fleet.job("a", status="succeeded", attempts=3)
    fleet.job("b", status="succeeded", attempts=1)
    fleet.job("c", status="failed", attempts=2)
    assert fleet.kpis()["velocity"]["attempts_per_success"] == pytest.approx(3.0)


def test_time_to_first_success_per_project(fleet: Fleet) -> None:
    # p1: first submitted at 0, first success ends at 5 (after a failure) -> 5 h.
    # p2: submitted at 2, succeeds at 3 -> 1 h. p3: never succeeded.
    # No project: grouped per user (u:x) -> submitted 1, succeeded 10 -> 9 h.
    fleet.job("a", project="p1", status="failed", sub=0, start=0, end=1)
    fleet.job("b", project="p1", status="succeeded", sub=1, start=2, end=5)
    fleet.job("c", project="p1", status="succeeded", sub=6, start=6, end=8)
    fleet.job("d", project="p2", status="succeeded", sub=2, start=2, end=3)
    fleet.job("e", project="p3", status="failed", sub=2, start=2, end=3)
    fleet.job("f", project=None, user="x", status="succeeded", sub=1, start=4, end=10)
    t = fleet.kpis()["velocity"]["time_to_first_success_hours"]
    assert (t["projects"], t["succeeded"]) == (4, 3)
    # [1, 5, 9]: p50 5, p90 = 5 + 0.8 x 4 = 8.2, mean 5
    assert (t["p50"], t["p90"], t["mean"]) == pytest.approx((5.0, 8.2, 5.0))


def test_iteration_cycle_between_submissions(fleet: Fleet) -> None:
    # alice/p1 submits at 0, 2, 7 -> gaps 2, 5; bob/p1 at 1, 2 -> gap 1; alice/p2 at 3 -> none.
    for i, (user, project, sub) in enumerate(
        [("alice", "p1", 0), ("alice", "p1", 2), ("alice", "p1", 7), ("bob", "p1", 1),
         ("bob", "p1", 2), ("alice", "p2", 3)]
    ):
        fleet.job(f"j{i}", user=user, project=project, sub=sub, start=sub, end=sub + 1)
    c = fleet.kpis()["velocity"]["iteration_cycle_hours"]
    # gaps [1, 2, 5]: p50 2, p90 2 + 0.8 x 3 = 4.4, mean 8/3
    assert (c["gaps"], c["users"]) == (3, 2)
    assert (c["p50"], c["p90"], c["mean"]) == pytest.approx((2.0, 4.4, 8 / 3))


def test_users_blocked_by_platform_owned_failures(fleet: Fleet) -> None:
    # alice: nccl (platform); bob: gpu_hardware (hardware); carol: gpu_oom (her own); dan: ok.
    for user, cat in [("alice", "nccl_comm"), ("bob", "gpu_hardware"), ("carol", "gpu_oom")]:
        fleet.job(user, user=user, status="failed", start=0, end=1)
        fleet.diagnosis(user, 1, cat)
    fleet.job("dan", user="dan")
    u = fleet.kpis()["velocity"]["users"]
    assert u == {"active": 4, "blocked_by_platform": 2, "blocked_share": 0.5}
