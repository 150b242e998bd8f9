"""The two aggregate "cubes" every additive KPI is read from, each one scan of its facts.

Why: on 5M attempts (or on Spark, where every query has a fixed start-up cost) scanning the facts
once per KPI would dominate the run time. Instead the engine sums every additive term at the
finest grain the KPIs slice by (group, size bucket, status, failure category, owner, lost-work
kind); that result has at most a few thousand rows and the KPI modules only add rows up and
divide. Distinct users ride along each cube row (:func:`_per_group`); percentiles are separate
small queries (velocity.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis.backends import BaseBackend

from fleetmedic.kpi.facts import PLATFORM_OWNERS

_JOB_KEYS = ["g", "bucket", "status"]
_RUN_KEYS = ["g", "jstatus", "category", "owner", "lost_kind"]


@dataclass(frozen=True)
class Cubes:
    """Executed cubes (``pandas`` frames, NULL sums as 0) for one grouping."""

    jobs: pd.DataFrame
    runs: pd.DataFrame

    def groups(self) -> list[str]:
        return sorted(set(self.jobs["g"]) | set(self.runs["g"]))


def _count(flag: ir.BooleanValue) -> ir.IntegerScalar:
    """How many rows have ``flag`` true (a portable SUM(CASE ...))."""
    return ibis.ifelse(flag, 1, 0).sum().cast("int64")


def _job_measures(jobs: ir.Table) -> dict[str, ir.Scalar]:
    return {
        "n": jobs.count(),
        "attempts": jobs.attempts.sum().cast("int64"),
        "zero_gpu": _count(jobs.gpus == 0),
        "skew": _count(jobs.skew),
        "negative_wait": _count(jobs.negative_wait),
        "missing_end": _count(jobs.missing_end),
        "started": _count(jobs.started_here),
        "wait_sum_h": jobs.wait_h.sum(),
        "interrupted_jobs": _count(jobs.interrupted_job),
    }


def job_cube(jobs: ir.Table) -> ir.Table:
    """Job counts and job-level terms by group, size bucket and final status, and on every row
    the group's distinct active users (``g_users``)."""
    cube = jobs.group_by(_JOB_KEYS).aggregate(**_job_measures(jobs))
    active = jobs.filter(jobs.user.notnull())
    return _per_group(cube, active.group_by("g").aggregate(g_users=active.user.nunique()))


def _run_measures(runs: ir.Table) -> dict[str, ir.Scalar]:
    return {
        "runs": runs.count(),
        "failures": _count(runs.fail_here),
        "run_h": runs.run_h.sum(),
        "gpu_h": runs.gpu_h.sum(),
        "prod_gh": runs.prod_gh.sum(),
        "lost_gh": runs.lost_gh.sum(),
        "requeue_gh": runs.requeue_gh.sum(),
        "window_gh": runs.window_gh.sum(),
        "repair_sum_h": runs.repair_h.sum(),
        "repairs": runs.repair_h.count(),
        "detect_sum_h": runs.detect_h.sum(),
        "detections": runs.detect_h.count(),
        "util_gh": runs.util_gh.sum(),
        "util_cov_gh": runs.util_cov_gh.sum(),
        "skew": _count(runs.skew),
        "missing_end": _count(runs.missing_end),
    }


def run_cube(runs: ir.Table, keys: list[str]) -> ir.Table:
    """Run-level sums by group, job status, failure category, owner, lost kind (and size
    bucket for the fleet), and on every row the group's users blocked by a platform-owned
    failure (``g_blocked``)."""
    cube = runs.group_by(keys).aggregate(**_run_measures(runs))
    hit = runs.filter(runs.fail_here & runs.owner.isin(PLATFORM_OWNERS) & runs.user.notnull())
    return _per_group(cube, hit.group_by("g").aggregate(g_blocked=hit.user.nunique()))


def _per_group(cube: ir.Table, distinct: ir.Table) -> ir.Table:
    """Attach a per-group distinct count to every cube row, in the same query as the cube.

    Distinct counts do not add up across cube rows, so they travel alongside (read them with
    ``max``, never ``sum``). One query instead of two: one round trip, and on DuckDB the facts
    are computed once (a shared common table expression).
    """
    (name,) = [c for c in distinct.columns if c != "g"]
    joined = cube.left_join(distinct, "g")
    return joined.select(*cube.columns, **{name: joined[name].fill_null(0)})


def execute(backend: BaseBackend, jobs: ir.Table, runs: ir.Table, *, by_size: bool) -> Cubes:
    """Run both cubes and fill NULL sums (empty groups) with 0 so the rollups are plain sums.

    ``by_size`` keeps the size bucket in the run cube (the fleet's per-size KPIs); a grouped
    pass leaves it out, which keeps the cube small with thousands of groups.
    """
    run_keys = [*_RUN_KEYS, "bucket"] if by_size else _RUN_KEYS
    job_frame = backend.execute(job_cube(jobs))
    run_frame = backend.execute(run_cube(runs, run_keys))
    return Cubes(jobs=_zero_nulls(job_frame, _JOB_KEYS), runs=_zero_nulls(run_frame, run_keys))


def _zero_nulls(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Measures as float64 with 0 for NULL (an empty sum), whatever numeric type the engine used."""
    for column in frame.columns:
        if column not in keys:
            frame[column] = pd.to_numeric(frame[column]).astype("float64").fillna(0.0)
    return frame
