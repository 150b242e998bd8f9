"""Reliability: how often things fail (MTTF), how long until work runs again (MTTR), how long
until we know why (MTTD), and how failure exposure grows with job size.

Why by node and by size: Kokolis et al. (2024) model a job's MTTF as ``1 / (nodes * r_f)`` with
``r_f`` the failure rate per node-day, so the per-node rate is the number to track over time, and
the per-size view shows that large jobs see failures far more often than small ones.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fleetmedic.kpi.facts import PLATFORM_OWNERS, SIZE_BUCKETS
from fleetmedic.kpi.numbers import ratio


def repair_section(runs: pd.DataFrame) -> dict[str, Any]:
    """MTTR (failure → the job's next attempt running) and MTTD (failure → diagnosis), hours."""
    failures = float(runs["failures"].sum())
    repairs = float(runs["repairs"].sum())
    return {
        "mttr_hours": ratio(runs["repair_sum_h"].sum(), repairs),
        "mttd_hours": ratio(runs["detect_sum_h"].sum(), runs["detections"].sum()),
        "recovered_failures": int(repairs),
        "unrecovered_failures": int(failures - repairs),
    }


def reliability_section(
    runs: pd.DataFrame, jobs: pd.DataFrame, node_hours: float, capacity_gpu_hours: float
) -> dict[str, Any]:
    """MTTF per node and per GPU (hardware-owned failures), and interruptions by job size."""
    failing = runs[runs["category"] != ""]
    hardware = float(failing.loc[failing["owner"] == "hardware", "failures"].sum())
    node_days = node_hours / 24.0
    return {
        "node_days": node_days,
        "hardware_failures": int(hardware),
        "failures_per_node_day": ratio(hardware, node_days),
        "mttf_node_hours": ratio(node_hours, hardware),
        "mttf_gpu_hours": ratio(capacity_gpu_hours, hardware),
        "by_size": _by_size(runs, jobs),
    }


def _by_size(runs: pd.DataFrame, jobs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Interruption rate vs job size: job MTTF = run hours / interruptions, per size bucket."""
    failing = runs[runs["category"] != ""]
    run_sums = runs.groupby("bucket")[["runs", "run_h", "failures"]].sum()
    infra = failing[failing["owner"].isin(PLATFORM_OWNERS)].groupby("bucket")["failures"].sum()
    job_sums = jobs.groupby("bucket")[["n", "interrupted_jobs"]].sum()
    out: dict[str, dict[str, Any]] = {}
    for bucket in SIZE_BUCKETS:
        if bucket not in run_sums.index and bucket not in job_sums.index:
            continue
        runs_n, run_h, fails = (
            run_sums.loc[bucket] if bucket in run_sums.index else pd.Series([0.0, 0.0, 0.0])
        )
        n_jobs, interrupted = (
            job_sums.loc[bucket] if bucket in job_sums.index else pd.Series([0.0, 0.0])
        )
        out[bucket] = {
            "jobs": int(n_jobs),
            "attempts": int(runs_n),
            "run_hours": float(run_h),
            "interruptions": int(fails),
            "infra_interruptions": int(infra.get(bucket, 0.0)),
            "interruptions_per_1000_hours": ratio(1000.0 * fails, run_h),
            "mttf_hours": ratio(run_h, fails),
            "interrupted_job_share": ratio(interrupted, n_jobs),
        }
    return out
