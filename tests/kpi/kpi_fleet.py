"""A tiny fleet written into a real store with plain SQL, for KPI cases computed by hand.

Times are given in hours after ``T0`` (Monday 2024-01-01 00:00 UTC) so the expected numbers in the
tests' comments stay readable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from fleetmedic.kpi import compute_kpis
from fleetmedic.model import category as taxonomy
from fleetmedic.store import Store

QUIET = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*infer_string"),
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]
"""Third-party noise (ibis 12 on duckdb 2 and pandas 3, PySpark on pandas 3), not our warnings."""

T0 = datetime(2024, 1, 1)
NOW = 100.0
"""The injected clock, in hours after T0, unless a test passes its own."""


def at(hours: float | None) -> datetime | None:
    return None if hours is None else T0 + timedelta(hours=hours)


class Fleet:
    """Writes jobs, attempts, nodes and diagnoses; :meth:`kpis` runs the suite on them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con

    def job(
        self,
        job_id: str,
        *,
        status: str = "succeeded",
        gpus: float = 1,
        sub: float | None = 0,
        start: float | None = 0,
        end: float | None = 1,
        user: str | None = "alice",
        team: str | None = "vision",
        project: str | None = "p1",
        cluster: str | None = "c1",
        gpu_model: str | None = "A100",
        pool: str | None = "main",
        attempts: int = 1,
        gpu_util: float | None = None,
    ) -> None:
        self.con.execute(
            'INSERT INTO jobs (job_id, "user", team, project, cluster, gpu_model, node_pool,'
            " num_gpus, submitted_at, started_at, ended_at, status, attempts, gpu_util)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [job_id, user, team, project, cluster, gpu_model, pool, gpus, at(sub), at(start),
             at(end), status, attempts, gpu_util],
        )

    def attempt(
        self,
        job_id: str,
        attempt: int,
        start: float | None,
        end: float | None,
        status: str | None,
        *,
        ckpt: float | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO attempts (job_id, attempt, started_at, ended_at, status,"
            " last_checkpoint_at) VALUES (?, ?, ?, ?, ?, ?)",
            [job_id, attempt, at(start), at(end), status, at(ckpt)],
        )

    def diagnosis(
        self,
        job_id: str,
        attempt: int,
        category: str,
        *,
        owner: str | None = None,
        diagnosed: float | None = None,
        node: str | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, node_id, diagnosed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [job_id, attempt, category, owner or taxonomy(category).owner, node, at(diagnosed)],
        )

    def node(
        self,
        node_id: str,
        gpus: int = 8,
        *,
        pool: str | None = "main",
        gpu_model: str | None = "A100",
        first: float | None = None,
        last: float | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO nodes (node_id, gpus, pool, gpu_model, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [node_id, gpus, pool, gpu_model, at(first), at(last)],
        )

    def kpis(
        self,
        since: float | None = None,
        until: float | None = None,
        by: str | None = None,
        now: float = NOW,
    ) -> dict[str, Any]:
        result: dict[str, Any] = compute_kpis(self.store, at(since), at(until), by, now=at(now))
        return result
