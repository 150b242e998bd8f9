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
from fleetmedic.kpi.sums import GroupSums


def repair_section(s: GroupSums) -> dict[str, Any]:
    """MTTR (failure → the job's next attempt running) and MTTD (failure → diagnosis), hours."""
    failures, repairs = s.run("failures"), s.run("repairs")
    return {
        "mttr_hours": ratio(s.run("repair_sum_h"), repairs),
        "mttd_hours": ratio(s.run("detect_sum_h"), s.run("detections")),
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
    sums = run_sums.join(job_sums, how="outer").join(infra.rename("infra"), how="left")
    sums = sums.fillna(0.0)
    return {bucket: _size_row(sums.loc[bucket]) for bucket in SIZE_BUCKETS if bucket in sums.index}


def _size_row(row: pd.Series) -> dict[str, Any]:
    return {
        "jobs": int(row["n"]),
        "attempts": int(row["runs"]),
        "run_hours": float(row["run_h"]),
        "interruptions": int(row["failures"]),
        "infra_interruptions": int(row["infra"]),
        "interruptions_per_1000_hours": ratio(1000.0 * row["failures"], row["run_h"]),
        "mttf_hours": ratio(row["run_h"], row["failures"]),
        "interrupted_job_share": ratio(row["interrupted_jobs"], row["n"]),
    }
