"""Goodput, badput breakdown and ETTR on jobs small enough to compute by hand."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

pytestmark = QUIET


def _restarted_job(fleet: Fleet) -> None:
    # 4 GPUs. Attempt 1 runs [0, 10), checkpoints at 6, fails at 10 (nccl_comm).
    # Re-queued 2 h; attempt 2 runs [12, 20) and succeeds.
    fleet.job("j", status="succeeded", gpus=4, sub=0, start=0, end=20, attempts=2)
    fleet.attempt("j", 1, 0, 10, "failed", ckpt=6)
    fleet.attempt("j", 2, 12, 20, "succeeded")
    fleet.diagnosis("j", 1, "nccl_comm")


def test_work_since_last_checkpoint_is_lost(fleet: Fleet) -> None:
    _restarted_job(fleet)
    k = fleet.kpis()
    # allocated: 4 x (10 + 8) = 72 GPU-h; lost: 4 x (10 - 6) = 16; productive 56
    assert k["gpu_hours"]["total"] == pytest.approx(72.0)
    assert k["goodput_gpu_hours"] == pytest.approx(56.0)
    assert k["goodput"] == pytest.approx(56 / 72, abs=1e-6)
    b = k["badput"]
    assert b["lost_since_checkpoint"] == pytest.approx(16.0)
    assert b["lost_without_checkpoint"] == 0.0 and b["hang"] == 0.0
    assert b["gpu_hours"] == pytest.approx(16.0)
    assert b["share"] == pytest.approx(16 / 72, abs=1e-6)
    # the 2 h wait for the second attempt: 4 GPUs x 2 h of re-queue overhead
    assert b["requeue_gpu_hours"] == pytest.approx(8.0)
    assert b["by_owner"] == {"platform": pytest.approx(16.0)}
    assert b["google"]["wasted_progress_from_disruption"] == pytest.approx(16.0)
    assert b["google"]["program_startup"] is None  # needs step-level telemetry


def test_ettr_counts_requeue_time_but_not_the_first_queue(fleet: Fleet) -> None:
    _restarted_job(fleet)
    # productive 14 h (6 + 8) over the wall-clock from first start to the end, 20 h,
    # re-queue included. GPU-weighting does not change a single job's ratio: 56 / 80.
    k = fleet.kpis()
    assert k["ettr"] == pytest.approx(14 / 20, abs=1e-6)
    assert k["ettr_by_size"] == {"2-8": pytest.approx(0.7, abs=1e-6)}


def test_fleet_ettr_is_gpu_weighted(fleet: Fleet) -> None:
    # a: 1 GPU, 10 h, never interrupted -> ETTR 1.
    # b: 3 GPUs, attempt [0, 4) failed without checkpoint, attempt [5, 9) succeeded -> 4 / 9.
    fleet.job("a", gpus=1, start=0, end=10)
    fleet.job("b", gpus=3, start=0, end=9, attempts=2)
    fleet.attempt("b", 1, 0, 4, "failed")
    fleet.attempt("b", 2, 5, 9, "succeeded")
    k = fleet.kpis()
    # (1 x 10 + 3 x 4) / (1 x 10 + 3 x 9) = 22 / 37
    assert k["ettr"] == pytest.approx(22 / 37, abs=1e-6)
    # goodput: productive 10 + 12 = 22 over allocated 10 + 3 x 8 = 34
    assert k["goodput"] == pytest.approx(22 / 34, abs=1e-6)
    assert k["badput"]["lost_without_checkpoint"] == pytest.approx(12.0)


def test_hang_is_its_own_badput(fleet: Fleet) -> None:
    # 2 GPUs, checkpoint at 1, hung until killed at 5: 2 x 4 = 8 GPU-h of hang badput.
    fleet.job("h", status="failed", gpus=2, start=0, end=5)
    fleet.attempt("h", 1, 0, 5, "failed", ckpt=1)
    fleet.diagnosis("h", 1, "hang")
    b = fleet.kpis()["badput"]
    assert b["hang"] == pytest.approx(8.0)
    assert b["lost_since_checkpoint"] == 0.0
    assert b["google"]["other"] == pytest.approx(8.0)


def test_checkpoint_before_the_attempt_started_means_all_is_lost(fleet: Fleet) -> None:
    # The last checkpoint (3) predates attempt 2 (4..6): nothing of attempt 2 was kept.
    fleet.job("j", status="preempted", gpus=1, start=0, end=6, attempts=2)
    fleet.attempt("j", 1, 0, 3, "preempted", ckpt=3)
    fleet.attempt("j", 2, 4, 6, "preempted", ckpt=3)
    k = fleet.kpis()
    assert k["badput"]["lost_without_checkpoint"] == pytest.approx(2.0)
    assert k["goodput_gpu_hours"] == pytest.approx(3.0)
    assert k["failures"]["by_category"]["preemption"]["count"] == 2


def test_lost_work_is_clipped_to_the_period(fleet: Fleet) -> None:
    # Failed attempt of 1 GPU over [0, 10), checkpoint at 4; period [6, 20):
    # in the period it held 4 h, all of it after the checkpoint, so all 4 are lost.
    fleet.job("j", status="failed", gpus=1, start=0, end=10)
    fleet.attempt("j", 1, 0, 10, "failed", ckpt=4)
    k = fleet.kpis(since=6, until=20)
    assert k["gpu_hours"]["total"] == pytest.approx(4.0)
    assert k["badput"]["lost_since_checkpoint"] == pytest.approx(4.0)
    assert k["goodput"] == 0.0
    # period [0, 5): 5 h held, 4 kept before the checkpoint, 1 lost
    k = fleet.kpis(since=0, until=5)
    assert k["goodput_gpu_hours"] == pytest.approx(4.0)
    assert k["badput"]["gpu_hours"] == pytest.approx(1.0)
    assert k["failures"]["count"] == 0  # the failure (at 10) is outside the period
