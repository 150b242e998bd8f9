"""Outcomes: job and GPU-hour shares by status, failures by category and owner (by hand)."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

from fleetmedic.kpi import STATUSES

pytestmark = QUIET


def test_status_shares_by_count_and_by_gpu_hours(fleet: Fleet) -> None:
    # 4 jobs over [0, 10) (the data's first and last timestamps):
    #   a succeeded 8 GPUs x 5 h = 40 GPU-h
    #   b failed    2 GPUs x 5 h = 10 GPU-h
    #   c cancelled 4 GPUs x 2.5 h = 10 GPU-h
    #   d failed    0 GPUs x 10 h = 0 GPU-h (a CPU job still counts as a job)
    fleet.job("a", status="succeeded", gpus=8, start=0, end=5)
    fleet.job("b", status="failed", gpus=2, start=5, end=10)
    fleet.job("c", status="cancelled", gpus=4, start=0, end=2.5)
    fleet.job("d", status="failed", gpus=0, start=0, end=10)
    k = fleet.kpis()
    assert k["jobs"]["total"] == 4
    # by count: succeeded 1/4, failed 2/4, cancelled 1/4
    assert k["jobs"]["by_status"] == {
        **dict.fromkeys(STATUSES, 0.0), "succeeded": 0.25, "failed": 0.5, "cancelled": 0.25,
    }
    assert k["jobs"]["zero_gpu"] == 1
    # GPU jobs only (the population of AcmeTrace's *_rate_gpu): a, b, c -> 1/3 each
    gpu_jobs = k["jobs"]["gpu_jobs"]
    assert gpu_jobs["total"] == 3
    assert gpu_jobs["by_status"]["failed"] == pytest.approx(1 / 3, abs=1e-6)
    # by GPU-hours: 40 + 10 + 10 = 60; succeeded 40/60, failed 10/60, cancelled 10/60
    assert k["gpu_hours"]["total"] == pytest.approx(60.0)
    shares = k["gpu_hours"]["by_status"]
    assert shares["succeeded"] == pytest.approx(2 / 3, abs=1e-6)
    assert shares["failed"] == pytest.approx(1 / 6, abs=1e-6)
    assert shares["cancelled"] == pytest.approx(1 / 6, abs=1e-6)
    assert set(shares) == set(STATUSES)


def test_trace_statuses_are_normalized(fleet: Fleet) -> None:
    # AcmeTrace/Philly spellings map onto the contract's statuses; an unknown one is counted.
    for i, raw in enumerate(["COMPLETED", "NODE_FAIL", "Killed", "TIMEOUT", "Pass", "weird"]):
        fleet.job(f"j{i}", status=raw)
    k = fleet.kpis()
    counts = k["jobs"]["count_by_status"]
    assert (counts["succeeded"], counts["failed"], counts["cancelled"], counts["timeout"]) == (
        2, 1, 1, 1,
    )
    assert k["jobs"]["total"] == 6
    assert k["data_quality"]["unknown_status_jobs"] == 1
    assert sum(k["jobs"]["by_status"].values()) == pytest.approx(5 / 6, abs=1e-6)


def test_failures_by_category_and_owner(fleet: Fleet) -> None:
    # One job, three attempts of 4 GPUs, 1 h each, no checkpoints (every failure loses all):
    #   1: failed, diagnosed nccl_comm (platform)   -> 4 GPU-h lost
    #   2: failed, no diagnosis -> unknown/unknown  -> 4 GPU-h lost
    #   3: timeout, no diagnosis -> timeout (user)  -> 4 GPU-h lost
    # plus a job that failed once with gpu_hardware (hardware) on 2 GPUs for 2 h -> 4 GPU-h.
    fleet.job("j", status="timeout", gpus=4, start=0, end=6, attempts=3)
    fleet.attempt("j", 1, 0, 1, "failed")
    fleet.attempt("j", 2, 2, 3, "failed")
    fleet.attempt("j", 3, 5, 6, "timeout")
    fleet.diagnosis("j", 1, "nccl_comm")
    fleet.job("h", status="failed", gpus=2, start=0, end=2)
    fleet.diagnosis("h", 1, "gpu_hardware")
    f = fleet.kpis()["failures"]
    assert f["count"] == 4
    assert f["gpu_hours_lost"] == pytest.approx(16.0)
    cats = f["by_category"]
    assert set(cats) == {"nccl_comm", "unknown", "timeout", "gpu_hardware"}
    assert cats["nccl_comm"] == {"count": 1, "gpu_hours": 4.0, "gpu_hours_lost": 4.0}
    assert cats["timeout"]["count"] == 1
    owners = f["by_owner"]
    assert {o: v["count"] for o, v in owners.items()} == {
        "platform": 1, "unknown": 1, "user": 1, "hardware": 1,
    }
    assert owners["hardware"]["gpu_hours_lost"] == pytest.approx(4.0)


def test_attempt_without_status_takes_the_job_status_when_last(fleet: Fleet) -> None:
    # Attempt 1 has no status and a later attempt exists -> it was interrupted (failed);
    # attempt 2 has no status and is the last -> the job's status (succeeded).
    fleet.job("j", status="succeeded", gpus=1, start=0, end=4, attempts=2)
    fleet.attempt("j", 1, 0, 1, None)
    fleet.attempt("j", 2, 2, 4, None)
    k = fleet.kpis()
    assert k["failures"]["count"] == 1
    assert k["failures"]["by_category"]["unknown"]["gpu_hours_lost"] == pytest.approx(1.0)
    assert k["goodput"] == pytest.approx(2 / 3, abs=1e-6)  # 2 of 3 GPU-hours kept


def test_empty_store_gives_zeros_and_nulls(fleet: Fleet) -> None:
    k = fleet.kpis()
    assert k["jobs"]["total"] == 0
    assert k["jobs"]["by_status"] == dict.fromkeys(STATUSES, 0.0)
    assert k["gpu_hours"]["total"] == 0.0
    assert k["goodput"] is None and k["ettr"] is None and k["mttr_hours"] is None
    assert k["queue_wait_hours"] == {"p50": None, "p90": None, "p99": None, "mean": None, "jobs": 0}
