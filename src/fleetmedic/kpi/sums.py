"""Per-group sums of the cubes, computed for all groups at once.

Why: the KPI sections need a handful of sums per group (by status, by category, by owner, by
lost-work kind). Slicing the cube frame once per group costs a few milliseconds per group in
pandas, which adds up to minutes with ``--by user`` on thousands of users; grouping each slice
once for every group and handing the sections plain dicts keeps it linear in the cube size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from fleetmedic.kpi.cubes import Cubes

JOB_MEASURES = ("n", "attempts", "zero_gpu")
RUN_MEASURES = (
    "runs", "failures", "run_h", "gpu_h", "prod_gh", "lost_gh", "requeue_gh", "window_gh",
    "repair_sum_h", "repairs", "detect_sum_h", "detections", "util_gh", "util_cov_gh",
)
FAILURE_MEASURES = ("failures", "gpu_h", "lost_gh")


@dataclass
class GroupSums:
    """The sums one group's KPI sections read; every missing entry is 0."""

    jobs: dict[str, float] = field(default_factory=dict)
    runs: dict[str, float] = field(default_factory=dict)
    job_status: dict[str, float] = field(default_factory=dict)
    gpu_job_status: dict[str, float] = field(default_factory=dict)
    gpu_hours_status: dict[str, float] = field(default_factory=dict)
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)
    by_owner: dict[str, dict[str, float]] = field(default_factory=dict)
    lost_kind: dict[str, float] = field(default_factory=dict)
    users: int = 0
    blocked_users: int = 0

    def job(self, name: str) -> float:
        return self.jobs.get(name, 0.0)

    def run(self, name: str) -> float:
        return self.runs.get(name, 0.0)


def group_sums(cubes: Cubes) -> dict[str, GroupSums]:
    """Sums for every group of the cubes, each slice grouped once for all groups."""
    out: defaultdict[str, GroupSums] = defaultdict(GroupSums)
    jobs, runs = cubes.jobs, cubes.runs
    failed = runs[runs["category"] != ""]
    for g, row in jobs.groupby("g")[list(JOB_MEASURES)].sum().iterrows():
        out[str(g)].jobs = {k: float(v) for k, v in row.items()}
    for g, row in runs.groupby("g")[list(RUN_MEASURES)].sum().iterrows():
        out[str(g)].runs = {k: float(v) for k, v in row.items()}
    _spread(out, jobs, "status", "n", "job_status")
    _spread(out, jobs[jobs["bucket"] != "0"], "status", "n", "gpu_job_status")
    _spread(out, runs, "jstatus", "gpu_h", "gpu_hours_status")
    _spread(out, runs, "lost_kind", "lost_gh", "lost_kind")
    for column, attr in (("category", "by_category"), ("owner", "by_owner")):
        sums = failed.groupby(["g", column])[list(FAILURE_MEASURES)].sum()
        for (g, key), row in sums.iterrows():
            getattr(out[str(g)], attr)[str(key)] = {k: float(v) for k, v in row.items()}
    for g, n in jobs.groupby("g")["g_users"].max().items():
        out[str(g)].users = int(n)
    for g, n in runs.groupby("g")["g_blocked"].max().items():
        out[str(g)].blocked_users = int(n)
    return dict(out)


def _spread(
    out: defaultdict[str, GroupSums], frame: pd.DataFrame, key: str, measure: str, attr: str
) -> None:
    """Sum ``measure`` by (group, ``key``) into each group's ``attr`` dict."""
    for (g, value), total in frame.groupby(["g", key])[measure].sum().items():
        getattr(out[str(g)], attr)[str(value)] = float(total)
