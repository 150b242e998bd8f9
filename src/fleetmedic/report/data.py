"""Everything the report shows, gathered as aggregates: a few rows per chart, never raw jobs.

The KPI suite (``compute_kpis(..., by="week")``) supplies the weekly outcome, goodput and ETTR
series and the per-size queue waits and MTTF, so the report shows exactly the numbers of
``fleetmedic kpi``; the priorities ranking supplies the Pareto and the table; the worst nodes come
from the same failure attribution as the ranking's node concentration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetmedic.kpi import SIZE_BUCKETS, STATUSES, as_backend, compute_kpis, load_tables
from fleetmedic.kpi.priorities import priorities_report, resolve_window
from fleetmedic.kpi.priorities_model import PriorityReport, Window
from fleetmedic.report.queries import NodeLoss, worst_nodes


@dataclass(frozen=True)
class Headline:
    """The numbers at the top of the page."""

    goodput: float | None
    ettr: float | None
    gpu_hours: float
    gpu_hours_lost: float
    jobs: int
    failures: int
    mttr_hours: float | None


@dataclass(frozen=True)
class WeeklySeries:
    """One value per ISO week (Monday, UTC): outcome GPU-hours, goodput and ETTR."""

    weeks: tuple[str, ...]
    hours_by_status: dict[str, tuple[float, ...]]
    goodput: tuple[float | None, ...]
    ettr: tuple[float | None, ...]


@dataclass(frozen=True)
class SizeRow:
    """Queue wait percentiles and MTTF for one job-size bucket (GPUs)."""

    bucket: str
    jobs_started: int
    wait_p50: float | None
    wait_p90: float | None
    wait_p99: float | None
    mttf_hours: float | None
    interruptions: int
    run_hours: float


@dataclass(frozen=True)
class ReportData:
    window: Window
    headline: Headline
    weekly: WeeklySeries
    sizes: tuple[SizeRow, ...]
    worst_nodes: tuple[NodeLoss, ...]
    priorities: PriorityReport


def _weekly(kpis: dict[str, Any]) -> WeeklySeries:
    groups: dict[str, Any] = kpis.get("groups") or {}
    weeks = tuple(sorted(groups))
    hours = {
        status: tuple(
            float(groups[w]["gpu_hours"]["hours_by_status"].get(status) or 0.0) for w in weeks
        )
        for status in STATUSES
    }
    return WeeklySeries(
        weeks=weeks,
        hours_by_status={s: v for s, v in hours.items() if any(v)},
        goodput=tuple(groups[w].get("goodput") for w in weeks),
        ettr=tuple(groups[w].get("ettr") for w in weeks),
    )


def _sizes(kpis: dict[str, Any]) -> tuple[SizeRow, ...]:
    waits: dict[str, Any] = kpis["velocity"]["queue_wait_hours_by_size"]
    reliability: dict[str, Any] = kpis["reliability"]["by_size"]
    out = []
    for bucket in SIZE_BUCKETS:
        if bucket not in waits and bucket not in reliability:
            continue
        wait, rel = waits.get(bucket, {}), reliability.get(bucket, {})
        out.append(
            SizeRow(
                bucket=bucket,
                jobs_started=int(wait.get("jobs") or 0),
                wait_p50=wait.get("p50"),
                wait_p90=wait.get("p90"),
                wait_p99=wait.get("p99"),
                mttf_hours=rel.get("mttf_hours"),
                interruptions=int(rel.get("interruptions") or 0),
                run_hours=float(rel.get("run_hours") or 0.0),
            )
        )
    return tuple(out)


def _window(kpis: dict[str, Any]) -> Window:
    """The KPI period as a ranking window; an empty store's zero-length period becomes one day."""
    since = datetime.fromisoformat(kpis["period"]["since"])
    until = datetime.fromisoformat(kpis["period"]["until"])
    return Window(since=since, until=max(until, since + timedelta(seconds=1)))


def _default_until(backend: Any, now: datetime | None) -> datetime:
    """The midnight after the latest data (so the last failure is inside the half-open period),
    but never later than now, so running jobs are not counted into the future."""
    latest = resolve_window(load_tables(as_backend(backend)), now=now).until
    current = now or datetime.now(UTC)
    if current.tzinfo is not None:
        current = current.astimezone(UTC).replace(tzinfo=None)
    return min(latest, current)


def gather(
    backend: Any,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    limit: int = 20,
    nodes: int = 15,
    now: datetime | None = None,
) -> ReportData:
    """Run the report's queries over ``[since, until)`` (default: all the data)."""
    if until is None:
        until = _default_until(backend, now)
    kpis = compute_kpis(backend, since, until, by="week", now=now)
    window = _window(kpis)
    ranking = priorities_report(backend, window.since, window.until, limit)
    failures = kpis.get("failures") or {}
    headline = Headline(
        goodput=kpis.get("goodput"),
        ettr=kpis.get("ettr"),
        gpu_hours=float(kpis["gpu_hours"]["total"] or 0.0),
        gpu_hours_lost=float(failures.get("gpu_hours_lost") or 0.0),
        jobs=int(kpis["jobs"]["total"] or 0),
        failures=int(failures.get("count") or 0),
        mttr_hours=kpis.get("mttr_hours"),
    )
    return ReportData(
        window=window,
        headline=headline,
        weekly=_weekly(kpis),
        sizes=_sizes(kpis),
        worst_nodes=tuple(worst_nodes(backend, window, nodes)),
        priorities=ranking,
    )
