"""Data quality: what the KPIs had to repair or could not use, so numbers can be trusted or not.

Why a section of its own: a KPI silently computed over skewed clocks, duplicate imports or jobs
without end times is worse than no KPI; every repair the formulas make is counted here.
"""

from __future__ import annotations

from typing import Any

import ibis

from fleetmedic.kpi.cubes import Cubes
from fleetmedic.kpi.tables import STATUSES, KpiTables


def orphans(tables: KpiTables) -> dict[str, int]:
    """Attempts whose job is unknown, and jobs with neither submit nor start time (both unused)."""
    j, a = tables.jobs, tables.attempts
    lost = a.anti_join(j, "job_id")
    timeless = j.filter(j.sub.isnull() & j.start.isnull())
    frame = tables.backend.execute(
        ibis.union(
            lost.aggregate(kind=ibis.literal("orphan_attempts"), n=lost.count()),
            timeless.aggregate(kind=ibis.literal("jobs_without_times"), n=timeless.count()),
        )
    )
    return {str(row.kind): int(row.n) for row in frame.itertuples()}


def quality_section(cubes: Cubes, tables: KpiTables, extra: dict[str, int]) -> dict[str, Any]:
    """Counts of every repair: clock skew → 0 duration, duplicates dropped, unknown statuses."""
    jobs, runs = cubes.jobs, cubes.runs
    return {
        "duplicate_rows": dict(tables.duplicates),
        "clock_skew_jobs": int(jobs["skew"].sum()),
        "clock_skew_attempts": int(runs["skew"].sum()),
        "negative_queue_wait_jobs": int(jobs["negative_wait"].sum()),
        "missing_end_jobs": int(jobs["missing_end"].sum()),
        "missing_end_attempts": int(runs["missing_end"].sum()),
        "unknown_status_jobs": int(jobs.loc[~jobs["status"].isin(STATUSES), "n"].sum()),
        "zero_gpu_jobs": int(jobs["zero_gpu"].sum()),
        "orphan_attempts": extra.get("orphan_attempts", 0),
        "jobs_without_times": extra.get("jobs_without_times", 0),
    }
