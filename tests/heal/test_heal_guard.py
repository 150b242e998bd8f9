"""Each guard rule refuses with a reason, and time (the injected clock) lifts what should lift."""

from __future__ import annotations

from healkit import FakeClock, fleet, guard_with

from fleetmedic.heal.guard import Fleet

ROOMY = {
    "burst": 100,
    "default_rate_per_hour": 1000,
    "max_cordoned_fraction": 1,
    "max_cordoned_fraction_per_pool": 1,
    "min_schedulable_per_pool": 0,
    "cooldown_seconds": 0,
    "storm_actions": 1000,
}


def test_token_bucket_per_kind(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "burst": 2, "default_rate_per_hour": 60})
    assert guard.check("notify", "a") is None
    assert guard.check("notify", "b") is None
    reason = guard.check("notify", "c")
    assert reason is not None and reason.startswith("rate limit")
    assert guard.check("suggest_fix", "c") is None  # another kind has its own bucket
    clock.advance(60)  # 60/h refills one token a minute
    assert guard.check("notify", "c") is None
    assert guard.check("notify", "d") is not None


def test_rate_per_kind_overrides_default(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "burst": 1, "rate_per_kind": {"notify": 3600}})
    assert guard.check("notify", "a") is None
    clock.advance(1)
    assert guard.check("notify", "b") is None


def test_dry_run_check_spends_nothing(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "burst": 1})
    assert guard.check("notify", "a", commit=False) is None
    assert guard.check("notify", "a", commit=False) is None
    assert guard.check("notify", "a") is None


def test_max_fraction_of_fleet_cordoned(clock: FakeClock) -> None:
    guard = guard_with(clock, fleet(10, pools=2), **{**ROOMY, "max_cordoned_fraction": 0.2})
    assert guard.check("cordon_and_drain", "n0") is None
    assert guard.check("cordon_and_drain", "n1") is None
    reason = guard.check("cordon_and_drain", "n2")
    assert reason is not None and reason.startswith("fleet limit")
    guard.mark_uncordoned("n0")
    assert guard.check("cordon_and_drain", "n2") is None


def test_max_fraction_per_pool(clock: FakeClock) -> None:
    guard = guard_with(
        clock, fleet(10, pools=2), **{**ROOMY, "max_cordoned_fraction_per_pool": 0.2}
    )
    assert guard.check("cordon_and_drain", "n0") is None  # pool p0: n0 n2 n4 n6 n8
    reason = guard.check("cordon_and_drain", "n2")
    assert reason is not None and reason.startswith("pool limit")
    assert guard.check("cordon_and_drain", "n1") is None  # pool p1 still has room


def test_minimum_capacity_per_pool(clock: FakeClock) -> None:
    small = Fleet({"a": "tiny", "b": "tiny", "c": "big"})
    guard = guard_with(clock, small, **{**ROOMY, "min_schedulable_per_pool": 1})
    assert guard.check("cordon_and_drain", "a") is None
    reason = guard.check("cordon_and_drain", "b")
    assert reason is not None and reason.startswith("minimum capacity")
    reason = guard.check("cordon_and_drain", "c")
    assert reason is not None and "pool big would keep 0" in reason


def test_cordon_needs_known_uncordoned_node(clock: FakeClock) -> None:
    guard = guard_with(clock, **ROOMY)
    assert "unknown node" in (guard.check("cordon_and_drain", "ghost") or "")
    assert guard.check("cordon_and_drain", "n3") is None
    assert "already cordoned" in (guard.check("cordon_and_drain", "n3") or "")
    assert "not cordoned" in (guard.check("health_check_then_uncordon", "n4") or "")
    assert guard.check("health_check_then_uncordon", "n3") is None


def test_cooldown_per_target(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "cooldown_seconds": 300})
    assert guard.check("retry_from_checkpoint", "job-1") is None
    reason = guard.check("retry_from_checkpoint", "job-1")
    assert reason is not None and reason.startswith("cooldown")
    assert guard.check("retry_from_checkpoint", "job-2") is None
    clock.advance(299)
    assert guard.check("retry_from_checkpoint", "job-1") is not None
    clock.advance(1)
    assert guard.check("retry_from_checkpoint", "job-1") is None


def test_circuit_breaker_trips_and_stays_open(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "storm_actions": 3, "storm_window_seconds": 60})
    for i in range(3):
        assert guard.check("retry_from_checkpoint", f"t{i}") is None
    reason = guard.check("retry_from_checkpoint", "t3")
    assert reason is not None and reason.startswith("circuit breaker tripped")
    clock.advance(3600)  # time alone does not close it
    assert "needs a manual reset" in (guard.check("retry_from_checkpoint", "t4") or "")
    assert "needs a manual reset" in (guard.check("notify", "t4") or "")  # it stops everything
    guard.reset_breaker()
    assert guard.check("retry_from_checkpoint", "t4") is None


def test_notifications_do_not_make_a_storm(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "storm_actions": 3, "storm_window_seconds": 60})
    for i in range(10):
        assert guard.check("notify", f"t{i}") is None
    assert not guard.breaker_open
    assert guard.check("cordon_and_drain", "n1") is None


def test_breaker_window_slides(clock: FakeClock) -> None:
    guard = guard_with(clock, **{**ROOMY, "storm_actions": 2, "storm_window_seconds": 60})
    for i in range(6):
        assert guard.check("retry_from_checkpoint", f"t{i}") is None
        clock.advance(31)
    assert not guard.breaker_open


def test_kill_switch_refuses_everything(clock: FakeClock) -> None:
    guard = guard_with(clock, **ROOMY)
    guard.engage_kill_switch()
    for kind in ("notify", "cordon_and_drain", "retry_from_checkpoint"):
        assert "kill switch" in (guard.check(kind, "n1") or "")
        assert "kill switch" in (guard.check(kind, "n1", commit=False) or "")
    guard.release_kill_switch()
    assert guard.check("cordon_and_drain", "n1") is None
