"""Outcomes: how jobs ended, by count and by GPU-hours, and what the failures were.

Why both weights: the AcmeTrace summary (docs/kpis.md) shows they tell opposite stories — most
failed jobs are short, so failures dominate the job count while cancelled jobs hold most of the
GPU time. A platform team needs both to decide what to fix first.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fleetmedic.kpi.numbers import share
from fleetmedic.kpi.tables import STATUSES


def jobs_section(jobs: pd.DataFrame) -> dict[str, Any]:
    """``jobs.total``, ``jobs.by_status`` (shares) and the counts behind them."""
    total = float(jobs["n"].sum())
    counts = jobs.groupby("status")["n"].sum()
    return {
        "total": int(total),
        "by_status": {s: share(counts.get(s, 0.0), total) for s in STATUSES},
        "count_by_status": {s: int(counts.get(s, 0.0)) for s in STATUSES},
        "zero_gpu": int(jobs["zero_gpu"].sum()),
    }


def gpu_hours_section(runs: pd.DataFrame) -> dict[str, Any]:
    """``gpu_hours.total`` and ``gpu_hours.by_status``: GPU-hours by the job's final status."""
    total = float(runs["gpu_h"].sum())
    hours = runs.groupby("jstatus")["gpu_h"].sum()
    return {
        "total": total,
        "by_status": {s: share(hours.get(s, 0.0), total) for s in STATUSES},
        "hours_by_status": {s: float(hours.get(s, 0.0)) for s in STATUSES},
    }


def failures_section(runs: pd.DataFrame) -> dict[str, Any]:
    """Interrupted attempts by root-cause category and by owner (no diagnosis → ``unknown``).

    ``count`` is attempts interrupted inside the period; ``gpu_hours`` what those attempts held
    in the period and ``gpu_hours_lost`` the part of it that was not kept by a checkpoint.
    """
    failed = runs[runs["category"] != ""]
    return {
        "count": int(failed["failures"].sum()),
        "gpu_hours": float(failed["gpu_h"].sum()),
        "gpu_hours_lost": float(failed["lost_gh"].sum()),
        "by_category": _breakdown(failed, "category"),
        "by_owner": _breakdown(failed, "owner"),
    }


def _breakdown(failed: pd.DataFrame, column: str) -> dict[str, dict[str, float | int]]:
    sums = failed.groupby(column)[["failures", "gpu_h", "lost_gh"]].sum()
    ordered = sums.sort_values(["lost_gh", "failures"], ascending=False)
    return {
        str(key): {
            "count": int(row.failures),
            "gpu_hours": float(row.gpu_h),
            "gpu_hours_lost": float(row.lost_gh),
        }
        for key, row in ordered.iterrows()
        if row.failures or row.gpu_h
    }
