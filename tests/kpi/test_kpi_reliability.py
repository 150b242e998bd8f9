"""MTTR, MTTD, MTTF per node / GPU / job size and interruption rate vs size, by hand."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

pytestmark = QUIET


def test_mttr_is_failure_to_running_again(fleet: Fleet) -> None:
    # j: fails at 2, next attempt starts at 5 (3 h); fails at 6, next starts at 7 (1 h).
    # k: fails at 1 and is never restarted (unrecovered).
    fleet.job("j", status="succeeded", gpus=1, start=0, end=9, attempts=3)
    fleet.attempt("j", 1, 0, 2, "failed")
    fleet.attempt("j", 2, 5, 6, "preempted")
    fleet.attempt("j", 3, 7, 9, "succeeded")
    fleet.job("k", status="failed", gpus=1, start=0, end=1)
    k = fleet.kpis()
    assert k["mttr_hours"] == pytest.approx(2.0)  # (3 + 1) / 2
    assert k["reliability"]["recovered_failures"] == 2
    assert k["reliability"]["unrecovered_failures"] == 1


def test_mttr_skips_an_attempt_that_never_started(fleet: Fleet) -> None:
    # Attempt 2 failed to start (image pull) at 3; attempt 3 runs from 4: repairs are
    # 2 -> 4 (2 h) for attempt 1, and 3 -> 4 (1 h) for the failed start itself.
    fleet.job("j", status="succeeded", gpus=1, start=0, end=6, attempts=3)
    fleet.attempt("j", 1, 0, 2, "failed")
    fleet.attempt("j", 2, None, 3, "failed")
    fleet.attempt("j", 3, 4, 6, "succeeded")
    fleet.diagnosis("j", 2, "image_pull")
    k = fleet.kpis()
    assert k["mttr_hours"] == pytest.approx(1.5)
    assert k["failures"]["by_category"]["image_pull"]["count"] == 1
    assert k["failures"]["by_category"]["image_pull"]["gpu_hours"] == 0.0


def test_mttd_where_diagnosis_times_exist(fleet: Fleet) -> None:
    # failures at 2 and 4, diagnosed 0.5 h and 1.5 h later; a third one has no diagnosis time.
    fleet.job("a", status="failed", start=0, end=2)
    fleet.diagnosis("a", 1, "gpu_oom", diagnosed=2.5)
    fleet.job("b", status="failed", start=0, end=4)
    fleet.diagnosis("b", 1, "code_error", diagnosed=5.5)
    fleet.job("c", status="failed", start=0, end=3)
    fleet.diagnosis("c", 1, "code_error")
    assert fleet.kpis()["mttd_hours"] == pytest.approx(1.0)


def test_mttf_per_node_and_per_gpu(fleet: Fleet) -> None:
    # 2 nodes of 8 GPUs over the period [0, 48): 96 node-hours = 4 node-days, 768 GPU-hours.
    # 2 hardware failures (gpu_hardware, node_failure) and one user failure (not counted).
    fleet.node("n1", 8)
    fleet.node("n2", 8)
    for i, cat in enumerate(["gpu_hardware", "node_failure", "gpu_oom"]):
        fleet.job(f"j{i}", status="failed", gpus=8, start=i, end=i + 1)
        fleet.diagnosis(f"j{i}", 1, cat, node="n1")
    r = fleet.kpis(since=0, until=48)["reliability"]
    assert r["node_days"] == pytest.approx(4.0)
    assert r["hardware_failures"] == 2
    assert r["failures_per_node_day"] == pytest.approx(0.5)
    assert r["mttf_node_hours"] == pytest.approx(48.0)
    assert r["mttf_gpu_hours"] == pytest.approx(384.0)


def test_node_lifetime_limits_node_days(fleet: Fleet) -> None:
    # n1 joins at 24 and n2 leaves at 12 within [0, 48): 24 + 12 = 36 node-hours.
    fleet.node("n1", 8, first=24)
    fleet.node("n2", 4, last=12)
    fleet.job("j", start=0, end=1)
    k = fleet.kpis(since=0, until=48)
    assert k["reliability"]["node_days"] == pytest.approx(1.5)
    assert k["capacity"]["gpu_hours"] == pytest.approx(8 * 24 + 4 * 12)


def test_interruptions_grow_with_job_size(fleet: Fleet) -> None:
    # small: 1 GPU, 10 h, one attempt, no failure.
    # large: 512 GPUs, attempts [0, 2) failed (nccl), [2, 4) failed (user), [4, 6) succeeded.
    fleet.job("small", gpus=1, start=0, end=10)
    fleet.job("large", gpus=512, start=0, end=6, attempts=3)
    fleet.attempt("large", 1, 0, 2, "failed")
    fleet.attempt("large", 2, 2, 4, "failed")
    fleet.attempt("large", 3, 4, 6, "succeeded")
    fleet.diagnosis("large", 1, "nccl_comm")
    fleet.diagnosis("large", 2, "code_error")
    by_size = fleet.kpis()["reliability"]["by_size"]
    assert list(by_size) == ["1", "257-1024"]
    assert by_size["1"]["mttf_hours"] is None and by_size["1"]["interruptions"] == 0
    big = by_size["257-1024"]
    # 6 run-hours, 2 interruptions -> MTTF 3 h, 333.3 per 1000 h; 1 of them platform-owned
    assert (big["attempts"], big["interruptions"], big["infra_interruptions"]) == (3, 2, 1)
    assert big["mttf_hours"] == pytest.approx(3.0)
    assert big["interruptions_per_1000_hours"] == pytest.approx(1000 / 3, abs=1e-3)
    assert big["interrupted_job_share"] == 1.0
