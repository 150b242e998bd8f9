"""The whole KPI suite as one JSON-ready object: the ``fleetmedic kpi --format json`` contract.

Why one entry point: the CLI, the web API (``GET /api/v1/kpi``), the report and the priorities all
need the same numbers; :func:`compute_kpis` is the only place that decides which queries run.
A run is one *pass* for the whole fleet plus, with ``by``, one pass grouped by that dimension;
each pass executes a fixed, small number of queries whatever the data size (see cubes.py).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ibis.backends import BaseBackend

from fleetmedic.kpi import capacity, goodput, outcomes, reliability, velocity
from fleetmedic.kpi.cubes import Cubes, execute
from fleetmedic.kpi.facts import GROUP_BY, job_facts, run_facts
from fleetmedic.kpi.period import Period, resolve_period
from fleetmedic.kpi.quality import orphans, quality_section
from fleetmedic.kpi.sums import GroupSums, group_sums
from fleetmedic.kpi.tables import KpiTables, as_backend, load_tables
from fleetmedic.model.errors import InputError
from fleetmedic.store import Store

Moment = datetime | date | str


@dataclass(frozen=True)
class _Pass:
    """Everything one grouping needs, executed: cubes plus the non-additive side queries."""

    cubes: Cubes
    sums: dict[str, GroupSums]
    waits: dict[str, dict[str, Any]]
    waits_by_size: dict[str, dict[str, Any]]
    capacity: dict[str, capacity.NodeCapacity]
    keys: list[str]


def compute_kpis(
    backend: Store | BaseBackend,
    since: Moment | None = None,
    until: Moment | None = None,
    by: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Compute every KPI over ``[since, until)``, fleet-wide and, with ``by``, per group.

    ``backend`` is the store or any Ibis backend holding the store's tables (DuckDB, Spark...).
    Naive datetimes are UTC. Without ``until`` the period ends at the last timestamp in the
    data, or at ``now`` (default: the current time) while jobs are still running.
    """
    if by is not None and by not in GROUP_BY:
        raise InputError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_BY)}")
    tables = load_tables(as_backend(backend))
    period = resolve_period(tables, since, until, now)
    fleet = _run_pass(tables, period, None)
    result: dict[str, Any] = {"period": period.as_json(), "by": by}
    result.update(_fleet_sections(tables, period, fleet))
    if by is not None:
        grouped = _run_pass(tables, period, by)
        result["groups"] = {
            key: _group_sections(grouped, key, with_capacity=capacity.groups_with_capacity(by))
            for key in grouped.keys
        }
    cleaned: dict[str, Any] = _clean(result)
    return cleaned


def _run_pass(tables: KpiTables, period: Period, by: str | None) -> _Pass:
    windows = period.windows(weekly=by == "week")
    jobs = job_facts(tables, windows, by)
    runs = run_facts(tables, windows, by)
    cubes = execute(tables.backend, jobs, runs, by_size=by is None)
    waits, by_size = velocity.queue_waits(tables.backend, jobs, by_size=by is None)
    keys = [w.key for w in windows] if by == "week" else cubes.groups()
    return _Pass(
        cubes=cubes,
        sums=group_sums(cubes),
        waits=waits,
        waits_by_size=by_size,
        capacity=capacity.node_capacity(tables, windows, by),
        keys=keys if by is not None else ["all"],
    )


def _group_sections(p: _Pass, key: str, *, with_capacity: bool) -> dict[str, Any]:
    """The KPIs that make sense for any slice of the fleet."""
    s = p.sums.get(key, GroupSums())
    out: dict[str, Any] = {
        "jobs": outcomes.jobs_section(s),
        "gpu_hours": outcomes.gpu_hours_section(s),
        **goodput.goodput_section(s),
        "ettr": goodput.ettr(s),
        **reliability.repair_section(s),
        "queue_wait_hours": p.waits.get(key, _empty_waits()),
        "failures": outcomes.failures_section(s),
        "attempts_per_success": velocity.attempts_per_success(s),
        "users": velocity.users_section(s),
    }
    if with_capacity:
        out["capacity"] = capacity.capacity_section(
            p.capacity.get(key, capacity.NodeCapacity()),
            allocated=s.run("gpu_h"),
            util_gh=s.run("util_gh"),
            util_cov_gh=s.run("util_cov_gh"),
        )
    return out


def _fleet_sections(tables: KpiTables, period: Period, fleet: _Pass) -> dict[str, Any]:
    """Group sections for the whole fleet, plus what only makes sense fleet-wide."""
    out = _group_sections(fleet, "all", with_capacity=True)
    out["ettr_by_size"] = goodput.ettr_by_size(fleet.cubes.runs)
    nodes = fleet.capacity.get("all", capacity.NodeCapacity())
    repairs = {k: out.pop(k) for k in ("recovered_failures", "unrecovered_failures")}
    out["reliability"] = {
        **reliability.reliability_section(
            fleet.cubes.runs, fleet.cubes.jobs, nodes.node_hours, nodes.gpu_hours
        ),
        **repairs,
    }
    out["velocity"] = {
        "queue_wait_hours_by_size": fleet.waits_by_size,
        "attempts_per_success": out.pop("attempts_per_success"),
        "users": out.pop("users"),
        **velocity.iteration(tables, period),
    }
    out["data_quality"] = quality_section(fleet.cubes, tables, orphans(tables))
    return out


def _empty_waits() -> dict[str, Any]:
    return {"p50": None, "p90": None, "p99": None, "mean": None, "jobs": 0}


def _clean(value: Any) -> Any:
    """JSON-ready: plain floats rounded to 6 decimals, NaN as ``None``, numpy scalars unwrapped."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return None if math.isnan(number) else round(number, 6)
    return value
