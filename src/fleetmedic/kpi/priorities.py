"""Rank root causes by what they cost, so the next fix is the one that returns most GPU-hours.

A cause is a taxonomy category plus the signature that decided it. Each is scored on the period
asked for (default: the 30 days up to the latest data) and compared with the period of equal length
before it. All aggregation runs in the backend (Ibis); only one row per cause comes back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis.expr.types as ir

from fleetmedic.kpi.period import to_datetime
from fleetmedic.kpi.priorities_loss import (
    CURRENT,
    NO_OWNER,
    latest_end,
    loss_facts,
    window_gpu_hours,
)
from fleetmedic.kpi.priorities_model import (
    Concentration,
    PriorityReport,
    PriorityRow,
    Trend,
    TrendDirection,
    Window,
)
from fleetmedic.kpi.priorities_owners import OwnerMap, default_owner_map
from fleetmedic.kpi.priorities_queries import (
    Key,
    cause_stats,
    materialized,
    ticket_counts,
    top_places,
)
from fleetmedic.kpi.tables import KpiTables, as_backend, load_tables
from fleetmedic.model import CATEGORIES
from fleetmedic.model.errors import InputError

DEFAULT_DAYS = 30
FLAT_PCT = 10.0
CONCENTRATION = 0.5

__all__ = [
    "CONCENTRATION",
    "DEFAULT_DAYS",
    "FLAT_PCT",
    "priorities_report",
    "rank_priorities",
    "resolve_window",
]


def _utc_naive(value: datetime) -> datetime:
    """The store keeps naive UTC timestamps; aware inputs are converted, naive ones taken as UTC."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def resolve_window(
    tables: KpiTables,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
) -> Window:
    """The period to rank: missing ends default to ``days`` days up to the latest data.

    The default end is the midnight after the latest job or attempt end (``now`` on an empty
    store), not the wall clock, so an imported trace from years ago still gets a meaningful month.
    """
    if until is None and since is not None:
        until = since + timedelta(days=days)
    if until is None:
        found = latest_end(tables)
        latest = to_datetime(found) if found is not None else _utc_naive(now or datetime.now(UTC))
        until = datetime(latest.year, latest.month, latest.day) + timedelta(days=1)
    until = _utc_naive(until)
    since = _utc_naive(since) if since is not None else until - timedelta(days=days)
    if since >= until:
        raise InputError(
            f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})"
        )
    return Window(since=since, until=until)


# What the three queries read of the failed runs, so only that is materialized.
_FACT_COLUMNS = (
    "pkey",
    "job_id",
    "attempt",
    "user",
    "node_pool",
    "image",
    "category",
    "sig",
    "owner",
    "diag_node",
    "lost_gpu_hours",
    "window_gpu_hours",
)


def _keyed(table: ir.Table) -> ir.Table:
    """Add ``sig``: the signature with null as '' so causes join on it (null never equals null)."""
    return table.mutate(sig=table.signature.coalesce(""))


def _trend(current: float, previous: float, flat_pct: float) -> Trend:
    if previous <= 0:
        return Trend(direction="new", change_pct=None, previous_gpu_hours_lost=0.0)
    change = (current - previous) / previous * 100.0
    direction: TrendDirection = "flat"
    if change >= flat_pct:
        direction = "up"
    elif change <= -flat_pct:
        direction = "down"
    return Trend(
        direction=direction, change_pct=round(change, 1), previous_gpu_hours_lost=round(previous, 3)
    )


def _owner(category: str, stored: str | None) -> str:
    """The diagnosis' owner (it may be refined by evidence), else the taxonomy's."""
    if stored and stored != NO_OWNER:
        return stored
    known = CATEGORIES.get(category)
    return known.owner if known is not None else NO_OWNER


def _concentration(
    places: dict[Key, tuple[str, float]],
    key: Key,
    lost: float,
    threshold: float,
) -> Concentration | None:
    found = places.get(key)
    if found is None or lost <= 0:
        return None
    share = found[1] / lost
    return Concentration(name=found[0], share=round(share, 3)) if share > threshold else None


def priorities_report(
    backend: Any,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    *,
    owners: OwnerMap | None = None,
    concentration: float = CONCENTRATION,
    flat_pct: float = FLAT_PCT,
    now: datetime | None = None,
) -> PriorityReport:
    """Rank causes of the window by lost GPU-hours, with the totals they are measured against.

    ``backend`` is the ``Store`` or any Ibis backend holding its tables (DuckDB, Spark...).
    Ties rank by jobs affected, then failures, then name, so the order is stable between runs.
    """
    if limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    tables = load_tables(as_backend(backend))
    window = resolve_window(tables, since, until, now=now)
    owners = owners or default_owner_map()
    facts = _keyed(loss_facts(tables, window)).select(*_FACT_COLUMNS)
    with materialized(tables.backend, facts) as failed:
        current = failed.filter(failed.pkey == CURRENT)
        stats = cause_stats(failed)
        causes = stats.current
        places = top_places(tables.backend, current) if causes else {}
        tickets = ticket_counts(tables.backend, current, window) if causes else None
    # No failure in either window left a row to carry the total: computed on its own then.
    total = stats.total_gpu_hours
    if total is None:
        total = window_gpu_hours(tables, window)
    total_lost = sum(float(c["lost"] or 0.0) for c in causes)

    causes.sort(
        key=lambda c: (
            -float(c["lost"] or 0.0),
            -c["jobs"],
            -c["failures"],
            c["category"],
            c["sig"],
        )
    )
    rows = []
    for rank, cause in enumerate(causes[:limit], start=1):
        key = (cause["category"], cause["sig"])
        lost = float(cause["lost"] or 0.0)
        owner = _owner(cause["category"], cause["owner"])
        rows.append(
            PriorityRow(
                rank=rank,
                category=cause["category"],
                signature=cause["sig"] or None,
                owner=owner,
                team=owners.team(cause["category"], owner),
                gpu_hours_lost=round(lost, 3),
                failures=int(cause["failures"]),
                jobs_affected=int(cause["jobs"]),
                users_affected=int(cause["users"]),
                tickets=tickets.count(key) if tickets is not None else None,
                trend=_trend(lost, stats.previous.get(key, 0.0), flat_pct),
                gain_gpu_hours=round(lost, 3),
                gain_goodput_points=round(lost / total * 100.0, 3) if total > 0 else 0.0,
                node=_concentration(places.get("node", {}), key, lost, concentration),
                pool=_concentration(places.get("pool", {}), key, lost, concentration),
                image=_concentration(places.get("image", {}), key, lost, concentration),
                repeat_tickets=tickets.repeats(key) if tickets is not None else None,
            )
        )
    return PriorityReport(
        window=window,
        total_gpu_hours=round(total, 3),
        total_gpu_hours_lost=round(total_lost, 3),
        rows=tuple(rows),
    )


def rank_priorities(
    backend: Any,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
) -> list[PriorityRow]:
    """The ranked rows of :func:`priorities_report` with the packaged owner mapping."""
    return list(priorities_report(backend, since, until, limit).rows)
