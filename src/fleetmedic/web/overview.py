"""The Overview page's numbers, shaped from two runs of the KPI suite (this period and the last).

Nothing is computed here that ``fleetmedic kpi`` does not compute: the cards are the suite's fleet
figures for the selected period beside the same figures for the previous period of equal length,
and the series are its weekly groups. Only the job success rate is derived: succeeded jobs among
the jobs that finished in a way that counts (succeeded, failed, timed out, preempted); cancelled
jobs were the user's decision and running or pending ones have no outcome yet.
"""

from __future__ import annotations

from typing import Any

from fleetmedic.kpi import SIZE_BUCKETS, STATUSES
from fleetmedic.web.periods import Bounds

_FINISHED = ("succeeded", "failed", "timeout", "preempted")

# key, label, unit, which direction is good
CARDS: tuple[tuple[str, str, str, str], ...] = (
    ("goodput", "Goodput", "ratio", "up"),
    ("ettr", "ETTR", "ratio", "up"),
    ("success_rate", "Job success rate", "ratio", "up"),
    ("utilization", "GPU utilization", "ratio", "up"),
    ("allocation_rate", "GPU allocation", "ratio", "up"),
    ("gpu_hours", "GPU-hours", "number", "none"),
    ("gpu_hours_lost", "GPU-hours lost", "number", "down"),
    ("mttr_hours", "MTTR", "hours", "down"),
    ("queue_wait_p50", "Queue wait p50", "hours", "down"),
    ("failures", "Failures", "count", "down"),
)


def success_rate(section: dict[str, Any]) -> float | None:
    counts = section.get("jobs", {}).get("count_by_status", {})
    finished = sum(int(counts.get(s) or 0) for s in _FINISHED)
    return None if not finished else round(int(counts.get("succeeded") or 0) / finished, 6)


def figures(section: dict[str, Any]) -> dict[str, float | None]:
    """The card values of one KPI section (the fleet, or one weekly group)."""
    capacity = section.get("capacity") or {}
    failures = section.get("failures") or {}
    return {
        "goodput": section.get("goodput"),
        "ettr": section.get("ettr"),
        "success_rate": success_rate(section),
        "utilization": capacity.get("utilization"),
        "allocation_rate": capacity.get("allocation_rate"),
        "gpu_hours": section.get("gpu_hours", {}).get("total"),
        "gpu_hours_lost": failures.get("gpu_hours_lost"),
        "mttr_hours": section.get("mttr_hours"),
        "queue_wait_p50": (section.get("queue_wait_hours") or {}).get("p50"),
        "failures": failures.get("count"),
    }


def _change(value: float | None, previous: float | None) -> float | None:
    """Relative change against the previous period; None when either side is missing or 0."""
    if value is None or previous is None or previous == 0:
        return None
    return round((value - previous) / abs(previous), 6)


def cards(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    now, before = figures(current), figures(previous) if previous else {}
    return [
        {
            "key": key,
            "label": label,
            "unit": unit,
            "better": better,
            "value": now[key],
            "previous": before.get(key),
            "change": _change(now[key], before.get(key)),
        }
        for key, label, unit, better in CARDS
    ]


def weekly(current: dict[str, Any]) -> dict[str, Any]:
    """One value per ISO week of the period, for the trend lines and the stacked outcome bars."""
    groups: dict[str, Any] = current.get("groups") or {}
    weeks = sorted(groups)
    per_week = [figures(groups[w]) for w in weeks]
    series: dict[str, Any] = {"weeks": weeks}
    for key, _, _, _ in CARDS:
        series[key] = [row[key] for row in per_week]
    series["hours_by_status"] = {
        status: [
            float(groups[w]["gpu_hours"].get("hours_by_status", {}).get(status) or 0.0)
            for w in weeks
        ]
        for status in STATUSES
    }
    return series


def queue_wait_by_size(current: dict[str, Any]) -> list[dict[str, Any]]:
    waits: dict[str, Any] = current.get("velocity", {}).get("queue_wait_hours_by_size") or {}
    return [
        {"bucket": bucket, **{k: waits[bucket].get(k) for k in ("p50", "p90", "p99", "jobs")}}
        for bucket in SIZE_BUCKETS
        if bucket in waits
    ]


def build(
    bounds: Bounds,
    current: dict[str, Any],
    previous: dict[str, Any] | None,
    open_incidents: int | None,
) -> dict[str, Any]:
    """The payload of ``GET /api/v1/overview``."""
    return {
        "period": bounds.as_json(),
        "cards": cards(current, previous),
        "weekly": weekly(current),
        "queue_wait_by_size": queue_wait_by_size(current),
        "open_incidents": open_incidents,
        "jobs": current.get("jobs", {}).get("total"),
    }
