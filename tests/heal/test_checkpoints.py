"""Checkpoint advice: Young/Daly intervals by hand, MTTF per size bucket, and GPU-hours saved."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from fleetmedic.heal.checkpoints import (
    advise,
    daly_interval,
    waste_fraction,
    young_interval,
)
from fleetmedic.store.db import Store

T0 = datetime(2024, 1, 1)
DELTA = 5 / 60  # 5 minutes in hours


def run(
    store: Store,
    job: str,
    gpus: float,
    attempts: list[tuple[float, str | None, str | None, float | None]],
) -> None:
    """A job with attempts ``(hours, category, owner, hours lost since the last checkpoint)``."""
    store.con.execute(
        "INSERT INTO jobs (job_id, num_gpus, status) VALUES (?, ?, 'failed')", [job, gpus]
    )
    start = T0
    for i, (hours, category, owner, lost) in enumerate(attempts, start=1):
        end = start + timedelta(hours=hours)
        ckpt = None if lost is None else end - timedelta(hours=lost)
        store.con.execute(
            "INSERT INTO attempts (job_id, attempt, started_at, ended_at, last_checkpoint_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [job, i, start, end, ckpt],
        )
        if category is not None:
            store.con.execute(
                "INSERT INTO diagnoses (job_id, attempt, category, owner) VALUES (?, ?, ?, ?)",
                [job, i, category, owner],
            )
        start = end


def test_young_by_hand() -> None:
    # delta = 1/12 h, M = 24 h: sqrt(2 x 1/12 x 24) = sqrt(4) = 2 h
    assert young_interval(DELTA, 24.0) == pytest.approx(2.0)
    # 10 min, M = 3 h: sqrt(2 x 1/6 x 3) = 1 h
    assert young_interval(10 / 60, 3.0) == pytest.approx(1.0)


def test_daly_by_hand() -> None:
    # x = delta / 2M = 1/576, sqrt(x) = 1/24:
    # 2 (1 + 1/72 + 1/5184) - 1/12 = 1.944830...
    assert daly_interval(DELTA, 24.0) == pytest.approx(2 * (1 + 1 / 72 + 1 / 5184) - 1 / 12)
    assert daly_interval(DELTA, 24.0) == pytest.approx(1.944830, abs=1e-6)
    # delta = 1 h, M = 2 h: x = 1/4 -> 2 (1 + 1/6 + 1/36) - 1 = 1.388...
    assert daly_interval(1.0, 2.0) == pytest.approx(2 * (1 + 1 / 6 + 1 / 36) - 1)
    # delta >= 2M: checkpoint every M
    assert daly_interval(5.0, 2.0) == 2.0
    with pytest.raises(ValueError):
        young_interval(0.0, 1.0)


def test_young_minimises_the_first_order_waste() -> None:
    tau = young_interval(DELTA, 24.0)
    assert waste_fraction(tau, DELTA, 24.0) == pytest.approx(1 / 12)  # 1/24 + 1/24
    for other in (tau * 0.8, tau * 1.25):
        assert waste_fraction(other, DELTA, 24.0) > waste_fraction(tau, DELTA, 24.0)


def test_advice_per_bucket_with_savings(store: Store) -> None:
    # 8-GPU job: 10 attempts of 24 h, each ending in a hardware failure 4 h after the last
    # checkpoint -> M = 240 / 10 = 24 h, current interval ~ 2 x 4 = 8 h.
    run(store, "mid", 8, [(24.0, "gpu_hardware", "hardware", 4.0)] * 10)
    # 512-GPU job: 3 attempts of 2 h, 2 platform failures, no checkpoint data -> M = 3 h.
    run(store, "big", 512, [(2.0, "nccl_comm", "platform", None)] * 2 + [(2.0, None, None, None)])
    # 1-GPU job: a user failure and a scheduling failure do not count -> no MTTF.
    run(store, "small", 1, [(5.0, "gpu_oom", "user", 1.0), (0.0, "scheduling", "platform", None)])
    advice = {a.bucket: a for a in advise(store)}
    assert list(advice) == ["<8", "8-63", "256-1023"]

    mid = advice["8-63"]
    assert (mid.jobs, mid.failures) == (1, 10)
    assert mid.attempt_hours == pytest.approx(240.0)
    assert mid.gpu_hours == pytest.approx(1920.0)
    assert mid.mttf_hours == pytest.approx(24.0)
    assert mid.young_hours == pytest.approx(2.0)
    assert mid.daly_hours == pytest.approx(1.944830, abs=1e-6)
    assert mid.current_interval_hours == pytest.approx(8.0)
    # W(8) = (1/12)/8 + 8/48 = 0.177083; W(2) = 1/24 + 1/24 = 0.083333; x 1920 GPU-h = 180
    assert mid.gpu_hours_saved == pytest.approx(180.0)

    big = advice["256-1023"]
    assert big.failures == 2 and big.mttf_hours == pytest.approx(3.0)
    assert big.young_hours == pytest.approx(math.sqrt(2 * DELTA * 3.0))
    assert big.current_interval_hours is None and big.gpu_hours_saved is None

    small = advice["<8"]
    assert small.failures == 0
    assert small.mttf_hours is None and small.young_hours is None and small.daly_hours is None


def test_save_cost_is_a_parameter(store: Store) -> None:
    run(store, "mid", 8, [(24.0, "node_failure", "hardware", None)] * 10)
    (ten,) = advise(store, save_cost_minutes=10)
    assert ten.young_hours == pytest.approx(math.sqrt(2 * (10 / 60) * 24.0))
    with pytest.raises(ValueError):
        advise(store, save_cost_minutes=0)


def test_empty_store(store: Store) -> None:
    assert advise(store) == []
