"""Outcomes: how jobs ended, by count and by GPU-hours, and what the failures were.

Why both weights: the AcmeTrace summary (docs/kpis.md) shows they tell opposite stories — most
failed jobs are short, so failures dominate the job count while cancelled jobs hold most of the
GPU time. A platform team needs both to decide what to fix first.
"""

from __future__ import annotations

from typing import Any

from fleetmedic.kpi.numbers import share
from fleetmedic.kpi.sums import GroupSums
from fleetmedic.kpi.tables import STATUSES


def jobs_section(s: GroupSums) -> dict[str, Any]:
    """``jobs.total``, ``jobs.by_status`` (shares) and the counts behind them.

    ``gpu_jobs`` repeats the shares for jobs with at least one GPU: the population of the
    published trace summaries (AcmeTrace ``*_rate_gpu``), where CPU jobs are reported apart.
    """
    gpu_total = sum(s.gpu_job_status.values())
    return {
        **_status_counts(s.job_status, s.job("n")),
        "zero_gpu": int(s.job("zero_gpu")),
        "gpu_jobs": {
            "total": int(gpu_total),
            "by_status": _shares(s.gpu_job_status, gpu_total),
        },
    }


def _status_counts(counts: dict[str, float], total: float) -> dict[str, Any]:
    return {
        "total": int(total),
        "by_status": _shares(counts, total),
        "count_by_status": {status: int(counts.get(status, 0.0)) for status in STATUSES},
    }


def _shares(counts: dict[str, float], total: float) -> dict[str, float]:
    return {status: share(counts.get(status, 0.0), total) for status in STATUSES}


def gpu_hours_section(s: GroupSums) -> dict[str, Any]:
    """``gpu_hours.total`` and ``gpu_hours.by_status``: GPU-hours by the job's final status."""
    total = s.run("gpu_h")
    return {
        "total": total,
        "by_status": _shares(s.gpu_hours_status, total),
        "hours_by_status": {st: s.gpu_hours_status.get(st, 0.0) for st in STATUSES},
    }


def failures_section(s: GroupSums) -> dict[str, Any]:
    """Interrupted attempts by root-cause category and by owner (no diagnosis → ``unknown``).

    ``count`` is attempts interrupted inside the period; ``gpu_hours`` what those attempts held
    in the period and ``gpu_hours_lost`` the part of it that was not kept by a checkpoint.
    """
    rows = s.by_category.values()
    return {
        "count": int(sum(r["failures"] for r in rows)),
        "gpu_hours": sum(r["gpu_h"] for r in rows),
        "gpu_hours_lost": sum(r["lost_gh"] for r in rows),
        "by_category": _breakdown(s.by_category),
        "by_owner": _breakdown(s.by_owner),
    }


def _breakdown(sums: dict[str, dict[str, float]]) -> dict[str, dict[str, float | int]]:
    """Largest loss first (then most failures, then name, so the order is stable)."""
    ordered = sorted(sums.items(), key=lambda kv: (-kv[1]["lost_gh"], -kv[1]["failures"], kv[0]))
    return {
        key: {
            "count": int(row["failures"]),
            "gpu_hours": row["gpu_h"],
            "gpu_hours_lost": row["lost_gh"],
        }
        for key, row in ordered
        if row["failures"] or row["gpu_h"]
    }
