"""Checkpoint arithmetic: work lost is exactly the work since the last completed save."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetmedic.sim import SimResult
from fleetmedic.sim.checkpoint import last_save_time, lost_work, progress_at, wall_time_for

seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1, max_value=1e5, allow_nan=False)


def test_a_worked_example() -> None:
    # restart 600 s, save every 1800 s of work, 60 s per save
    assert progress_at(500, 600, 1800, 60) == (0.0, 0.0, 0)
    p = progress_at(600 + 1860 + 900, 600, 1800, 60)  # one full cycle, then 900 s of work
    assert p == (2700.0, 1800.0, 1)
    assert lost_work(600 + 1860 + 900, 600, 1800, 60) == 900.0
    assert last_save_time(1000.0, 600, 1800, 60, 1) == 1000.0 + 600 + 1860


def test_failing_during_a_save_loses_the_whole_interval() -> None:
    # the second save is in progress (it completes at 600 + 2*1860): it does not count
    p = progress_at(600 + 1860 + 1800 + 30, 600, 1800, 60)
    assert p.saved == 1800.0 and p.done == 3600.0


def test_a_job_without_checkpoints_loses_everything() -> None:
    assert lost_work(10_000, 300, math.inf, 0) == 9_700.0
    assert last_save_time(0.0, 300, math.inf, 0, 0) is None


@given(work=positive, restart=seconds, interval=positive, save=st.floats(0, 600))
def test_the_wall_time_for_work_reaches_exactly_that_work(
    work: float, restart: float, interval: float, save: float
) -> None:
    wall = wall_time_for(work, restart, interval, save)
    assert progress_at(wall, restart, interval, save).done == pytest.approx(work, rel=1e-9)


@given(elapsed=seconds, restart=seconds, interval=positive, save=st.floats(0, 600))
def test_lost_work_is_the_time_since_the_last_save(
    elapsed: float, restart: float, interval: float, save: float
) -> None:
    p = progress_at(elapsed, restart, interval, save)
    assert 0 <= p.saved <= p.done <= max(0.0, elapsed - restart) + 1e-6
    assert p.saved == pytest.approx(p.saves * interval)
    lost = lost_work(elapsed, restart, interval, save)
    assert 0 <= lost <= interval + 1e-6
    done_at = last_save_time(0.0, restart, interval, save, p.saves)
    if done_at is not None:
        assert done_at <= elapsed + 1e-6
        # work done after the last save = wall time since it, capped by the interval
        assert lost == pytest.approx(min(elapsed - done_at, interval), abs=1e-6)


def test_interrupted_attempts_keep_only_their_checkpointed_work(small: SimResult) -> None:
    checked = 0
    for a in small.attempts:
        spec = small.jobs[a.job]
        if a.status not in {"failed", "preempted"} or a.start is None or a.end is None:
            continue
        restart = spec.restart if a.attempt > 1 else 0.0
        if math.isinf(spec.interval):
            assert a.productive == 0.0 and a.last_ckpt is None
            continue
        saves = round(a.productive / spec.interval)
        assert a.productive == pytest.approx(saves * spec.interval)
        if saves:
            assert a.last_ckpt == pytest.approx(
                a.start + restart + saves * (spec.interval + spec.save)
            )
            assert a.last_ckpt <= a.end + 1e-6
            checked += 1
    assert checked > 0
