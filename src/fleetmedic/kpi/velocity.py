"""Developer velocity: how long people wait, how many tries a result takes, how fast they iterate,
and how many of them the platform itself held back.

Why these: GPU efficiency can look fine while researchers wait days in the queue or resubmit the
same job five times; these KPIs measure the platform from its users' side. Percentiles are
exact (``quantile_cont`` on DuckDB, ``percentile`` on Spark: the same linear interpolation).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from fleetmedic.kpi.facts import HOUR, SIZE_BUCKETS
from fleetmedic.kpi.numbers import num, ratio
from fleetmedic.kpi.period import Period
from fleetmedic.kpi.sums import GroupSums
from fleetmedic.kpi.tables import KpiTables

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def _spread(values: ir.NumericColumn, probs: dict[str, float]) -> dict[str, ir.Scalar]:
    return {name: values.quantile(p) for name, p in probs.items()} | {"mean": values.mean()}


def queue_waits(
    backend: BaseBackend, jobs: ir.Table, *, by_size: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Queue wait (start - submit) percentiles of jobs that started in the period, in hours.

    Returns them per group, and per size bucket when ``by_size``; one query for both.
    """
    started = jobs.filter(jobs.wait_h.notnull())
    parts = [_waits(started, "g", started.g)]
    if by_size:
        parts.append(_waits(started, "size", started.bucket))
    frame = backend.execute(ibis.union(*parts))
    groups: dict[str, dict[str, Any]] = {}
    sizes: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        target = groups if row["kind"] == "g" else sizes
        target[str(row["key"])] = {
            **{name: num(row[name]) for name in (*QUANTILES, "mean")},
            "jobs": int(row["jobs"]),
        }
    ordered = {b: sizes[b] for b in SIZE_BUCKETS if b in sizes}
    return groups, ordered


def _waits(started: ir.Table, kind: str, key: ir.Value) -> ir.Table:
    return started.group_by(key=key.cast("string")).aggregate(
        kind=ibis.literal(kind), jobs=started.count(), **_spread(started.wait_h, QUANTILES)
    )


def users_section(s: GroupSums) -> dict[str, Any]:
    """Active users of one group, and how many had an attempt fail for a platform-owned cause."""
    return {
        "active": s.users,
        "blocked_by_platform": s.blocked_users,
        "blocked_share": ratio(s.blocked_users, s.users),
    }


def attempts_per_success(s: GroupSums) -> float | None:
    """Attempts of all jobs in the period per job that succeeded: the cost of one result."""
    return ratio(s.job("attempts"), s.job_status.get("succeeded", 0.0))


def iteration(tables: KpiTables, period: Period) -> dict[str, dict[str, Any]]:
    """Time to first success per project, and the cycle time between a user's submissions.

    Both look at the whole history (a project's first submission may precede the period), then
    keep what happened in the period: projects first submitted in it, gaps ending in it.
    """
    j = tables.jobs
    project = j.project.fill_null("user:" + j.user.fill_null(""))
    first = j.sub.fill_null(j.start)
    per_project = j.group_by(project=project).aggregate(
        first_sub=first.min(),
        first_ok=ibis.ifelse(j.status == "succeeded", j.end, ibis.null("float64")).min(),
    )
    new = per_project.filter((per_project.first_sub >= period.start) &
                             (per_project.first_sub < period.end))
    reached = new.first_ok.notnull() & (new.first_ok < period.end)
    hours = ibis.ifelse(
        reached, ibis.greatest(new.first_ok - new.first_sub, 0.0) / HOUR, ibis.null("float64")
    )
    new = new.mutate(hours=hours)
    first_success = new.aggregate(
        kind=ibis.literal("first_success"), n=new.count(), measured=new.hours.count(),
        **_spread(new.hours, {"p50": 0.5, "p90": 0.9}),
    )
    subs = j.filter(j.user.notnull() & j.sub.notnull())
    cycle = ibis.window(group_by=[subs.user, subs.project.fill_null("")], order_by=subs.sub)
    gaps = subs.mutate(gap_h=(subs.sub - subs.sub.lag().over(cycle)) / HOUR)
    gaps = gaps.filter(gaps.gap_h.notnull() & (gaps.sub >= period.start) & (gaps.sub < period.end))
    cycles = gaps.aggregate(
        kind=ibis.literal("cycle"), n=gaps.count(), measured=gaps.user.nunique(),
        **_spread(gaps.gap_h, {"p50": 0.5, "p90": 0.9}),
    )
    frame = tables.backend.execute(ibis.union(first_success, cycles))
    rows = {str(r["kind"]): r for r in frame.to_dict("records")}
    fs, cy = rows["first_success"], rows["cycle"]
    return {
        "time_to_first_success_hours": {
            "projects": int(fs["n"]), "succeeded": int(fs["measured"]),
            "p50": num(fs["p50"]), "p90": num(fs["p90"]), "mean": num(fs["mean"]),
        },
        "iteration_cycle_hours": {
            "gaps": int(cy["n"]), "users": int(cy["measured"]),
            "p50": num(cy["p50"]), "p90": num(cy["p90"]), "mean": num(cy["mean"]),
        },
    }
