"""Ranking cases small enough to compute by hand (docs/priorities.md explains the formulas)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pytest

from fleetmedic.kpi.priorities import priorities_report, rank_priorities
from fleetmedic.kpi.priorities_model import PriorityRow
from fleetmedic.kpi.priorities_owners import load_owner_map, parse_owner_map
from fleetmedic.model.errors import InputError
from fleetmedic.store import Store

T0 = datetime(2024, 1, 8)  # the ranked window is [T0, T0 + 7 days); the previous one the week before
WEEK = timedelta(days=7)


def at(hours: float, base: datetime = T0) -> datetime:
    return base + timedelta(hours=hours)


class Fleet:
    """Writes jobs, attempts, diagnoses, nodes and tickets into a real store with plain SQL."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.con = self.store.con

    def job(
        self,
        job_id: str,
        start: datetime,
        end: datetime | None,
        *,
        gpus: float = 8,
        status: str = "failed",
        user: str = "alice",
        pool: str | None = None,
    ) -> None:
        self.con.execute(
            'INSERT INTO jobs (job_id, "user", num_gpus, node_pool, started_at, ended_at, status)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [job_id, user, gpus, pool, start, end, status],
        )

    def attempt(
        self,
        job_id: str,
        attempt: int,
        start: datetime,
        end: datetime,
        *,
        nodes: Sequence[str] = (),
        status: str = "failed",
        checkpoint: datetime | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status,"
            " last_checkpoint_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [job_id, attempt, ",".join(nodes) or None, start, end, status, checkpoint],
        )

    def diagnose(
        self,
        job_id: str,
        category: str,
        signature: str | None = None,
        *,
        attempt: int = 1,
        node: str | None = None,
        owner: str = "user",
    ) -> None:
        self.con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, signature, node_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [job_id, attempt, category, owner, signature, node],
        )

    def failure(
        self,
        job_id: str,
        category: str | None,
        signature: str | None = None,
        *,
        hours: float,
        gpus: float = 8,
        start: datetime = T0,
        **diagnosis: Any,
    ) -> None:
        """A one-attempt failed job (no attempt rows, as imported traces have) and its diagnosis."""
        self.job(job_id, start, start + timedelta(hours=hours), gpus=gpus, user=job_id)
        if category is not None:
            self.diagnose(job_id, category, signature, **diagnosis)

    def node(self, node_id: str, pool: str) -> None:
        self.con.execute("INSERT INTO nodes (node_id, pool) VALUES (?, ?)", [node_id, pool])

    def ticket(
        self,
        ticket_id: str,
        created: datetime,
        job_ids: Sequence[str] | None = None,
        category: str | None = None,
    ) -> None:
        self.con.execute(
            "INSERT INTO tickets (ticket_id, created_at, text, job_ids, category)"
            " VALUES (?, ?, 'help', ?, ?)",
            [ticket_id, created, json.dumps(list(job_ids)) if job_ids else None, category],
        )

    def backend(self) -> Any:
        return ibis.duckdb.from_connection(self.con)

    def rank(self, **kwargs: Any) -> list[PriorityRow]:
        return rank_priorities(self.backend(), T0, T0 + WEEK, **kwargs)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    built = Fleet(tmp_path / "fleet.duckdb")
    yield built
    built.store.close()


def by_cause(rows: list[PriorityRow]) -> dict[str, PriorityRow]:
    return {row.cause: row for row in rows}


def test_more_lost_gpu_hours_ranks_first_even_with_fewer_jobs(fleet: Fleet) -> None:
    fleet.failure("big", "nccl_comm", "nccl_watchdog", hours=10, gpus=8, owner="platform")  # 80
    for name in ("s1", "s2", "s3"):
        fleet.failure(name, "gpu_oom", "cuda_oom", hours=5, gpus=1)  # 3 x 5 = 15

    rows = fleet.rank()

    assert [r.cause for r in rows] == ["nccl_comm/nccl_watchdog", "gpu_oom/cuda_oom"]
    assert rows[0].gpu_hours_lost == 80.0 and rows[0].jobs_affected == 1
    assert rows[1].gpu_hours_lost == 15.0
    assert (rows[1].failures, rows[1].jobs_affected, rows[1].users_affected) == (3, 3, 3)
    assert rows[0].team == "ML platform" and rows[1].team == "ML users / job owners"


def test_loss_counts_from_last_checkpoint_plus_restart_on_same_nodes(fleet: Fleet) -> None:
    fleet.job("j", at(0), at(10), gpus=8)
    # attempt 1: 0h-4h, checkpoint at 3h -> 8 x 1h; retried at 4.5h on the same nodes -> 8 x 0.5h
    fleet.attempt("j", 1, at(0), at(4), nodes=["n1", "n2"], checkpoint=at(3))
    # attempt 2: 4.5h-10h, no checkpoint -> 8 x 5.5h; nothing follows it
    fleet.attempt("j", 2, at(4.5), at(10), nodes=["n1", "n2"])
    fleet.diagnose("j", "gpu_hardware", "xid79", attempt=1, node="n1", owner="hardware")
    fleet.diagnose("j", "nccl_comm", "nccl_watchdog", attempt=2, owner="platform")

    rows = by_cause(fleet.rank())

    assert rows["gpu_hardware/xid79"].gpu_hours_lost == pytest.approx(12.0)
    assert rows["nccl_comm/nccl_watchdog"].gpu_hours_lost == pytest.approx(44.0)


def test_restart_on_other_nodes_adds_no_overhead_and_old_checkpoint_is_ignored(
    fleet: Fleet,
) -> None:
    fleet.job("j", at(0), at(10), gpus=4)
    # checkpoint from before the attempt started: the whole attempt (2h-4h) is lost
    fleet.attempt("j", 1, at(2), at(4), nodes=["n1"], checkpoint=at(1))
    fleet.attempt("j", 2, at(6), at(10), nodes=["n9"], status="succeeded")
    fleet.diagnose("j", "gpu_hardware", "xid79", node="n1", owner="hardware")

    (row,) = fleet.rank()

    assert row.gpu_hours_lost == pytest.approx(4 * 2.0)


def test_trend_against_previous_period_of_equal_length(fleet: Fleet) -> None:
    before = T0 - WEEK
    fleet.failure("up0", "storage_io", "eio", hours=10, gpus=1, start=before)
    fleet.failure("up1", "storage_io", "eio", hours=20, gpus=1)
    fleet.failure("down0", "hang", "no_progress", hours=20, gpus=1, start=before)
    fleet.failure("down1", "hang", "no_progress", hours=10, gpus=1)
    fleet.failure("flat0", "rendezvous", "timeout", hours=10, gpus=1, start=before)
    fleet.failure("flat1", "rendezvous", "timeout", hours=10.5, gpus=1)
    fleet.failure("new1", "shm_exhausted", "bus_error", hours=1, gpus=1)
    fleet.failure("old0", "data_error", "missing", hours=99, gpus=1, start=before)

    rows = by_cause(fleet.rank())

    assert rows["storage_io/eio"].trend.direction == "up"
    assert rows["storage_io/eio"].trend.change_pct == 100.0
    assert rows["hang/no_progress"].trend.direction == "down"
    assert rows["hang/no_progress"].trend.change_pct == -50.0
    assert rows["rendezvous/timeout"].trend.direction == "flat"
    assert rows["rendezvous/timeout"].trend.previous_gpu_hours_lost == 10.0
    assert rows["shm_exhausted/bus_error"].trend.direction == "new"
    assert rows["shm_exhausted/bus_error"].trend.change_pct is None
    assert "data_error/missing" not in rows  # nothing lost in the ranked period


def test_cause_concentrated_on_one_node_and_pool_is_named(fleet: Fleet) -> None:
    fleet.node("gpu-17", "pool-a")
    fleet.node("gpu-18", "pool-a")
    fleet.failure("a", "gpu_hardware", "xid79", hours=6, gpus=1, node="gpu-17")
    fleet.failure("b", "gpu_hardware", "xid79", hours=6, gpus=1, node="gpu-17")
    fleet.failure("c", "gpu_hardware", "xid79", hours=4, gpus=1, node="gpu-18")
    # spread evenly over two nodes by attempt membership: no node carries more than half
    fleet.job("d", at(0), at(4), gpus=2)
    fleet.attempt("d", 1, at(0), at(4), nodes=["gpu-17", "gpu-18"])
    fleet.diagnose("d", "nccl_comm", "nccl_watchdog", owner="platform")

    rows = by_cause(fleet.rank())

    hardware = rows["gpu_hardware/xid79"]
    assert hardware.node is not None
    assert (hardware.node.name, hardware.node.share) == ("gpu-17", 0.75)
    assert hardware.pool is not None and hardware.pool.name == "pool-a"
    assert hardware.where == "node gpu-17 (75%), pool pool-a (100%)"
    spread = rows["nccl_comm/nccl_watchdog"]
    assert spread.node is None
    assert spread.pool is not None and spread.pool.share == 1.0


def test_image_named_when_the_store_has_an_image_column(fleet: Fleet) -> None:
    fleet.con.execute("ALTER TABLE jobs ADD COLUMN image VARCHAR")
    fleet.failure("a", "dependency_error", "undefined_symbol", hours=3, gpus=1)
    fleet.failure("b", "dependency_error", "undefined_symbol", hours=1, gpus=1)
    fleet.con.execute("UPDATE jobs SET image = CASE job_id WHEN 'a' THEN 'torch:2.4' ELSE 'x' END")

    (row,) = fleet.rank()

    assert row.image is not None and (row.image.name, row.image.share) == ("torch:2.4", 0.75)


def test_undiagnosed_failure_is_unknown_and_successes_and_cancels_are_not_losses(
    fleet: Fleet,
) -> None:
    fleet.failure("mystery", None, hours=2, gpus=4)
    fleet.job("ok", at(0), at(50), gpus=8, status="succeeded")
    fleet.job("stopped", at(0), at(50), gpus=8, status="cancelled")
    fleet.job("running", at(0), None, gpus=8, status="running")

    (row,) = fleet.rank()

    assert (row.category, row.signature, row.owner) == ("unknown", None, "—")
    assert row.team == "Unassigned (triage)"
    assert row.gpu_hours_lost == 8.0


def test_ticket_counts_linked_jobs_and_unlinked_same_category(fleet: Fleet) -> None:
    fleet.failure("a", "gpu_oom", "cuda_oom", hours=1, gpus=1)
    fleet.failure("b", "gpu_oom", "cuda_oom", hours=1, gpus=1)
    fleet.failure("c", "host_oom", "oom_killed", hours=1, gpus=1)
    fleet.ticket("t1", at(1), ["a", "b"])  # one ticket about two jobs of the same cause
    fleet.ticket("t2", at(2), ["b"])
    fleet.ticket("t3", at(3), category="gpu_oom")  # no job named: counted by category
    fleet.ticket("t4", T0 - 2 * WEEK, category="gpu_oom")  # outside the window

    rows = by_cause(fleet.rank())

    assert rows["gpu_oom/cuda_oom"].tickets == 3
    assert rows["host_oom/oom_killed"].tickets == 0


def test_no_tickets_in_store_means_unknown_not_zero(fleet: Fleet) -> None:
    fleet.failure("a", "gpu_oom", "cuda_oom", hours=1, gpus=1)

    (row,) = fleet.rank()

    assert row.tickets is None


def test_gain_in_goodput_points_is_lost_over_total(fleet: Fleet) -> None:
    fleet.failure("bad", "gpu_oom", "cuda_oom", hours=10, gpus=2)  # 20 lost
    fleet.job("good", at(0), at(10), gpus=18, status="succeeded")  # 180 useful -> 200 in all

    report = priorities_report(fleet.backend(), T0, T0 + WEEK)

    (row,) = report.rows
    assert report.total_gpu_hours == 200.0
    assert (row.gain_gpu_hours, row.gain_goodput_points) == (20.0, 10.0)


def test_limit_owner_override_and_window_defaults(fleet: Fleet, tmp_path: Path) -> None:
    fleet.failure("a", "image_pull", "not_found", hours=3, gpus=1, owner="platform")
    fleet.failure("b", "gpu_oom", "cuda_oom", hours=2, gpus=1)
    mapping = tmp_path / "owners.yaml"
    mapping.write_text(
        "owners: {user: Research, platform: Infra}\ncategories: {image_pull: Build team}\n"
    )

    report = priorities_report(fleet.backend(), limit=1, owners=load_owner_map(mapping))

    assert [r.cause for r in report.rows] == ["image_pull/not_found"]
    assert report.rows[0].team == "Build team"
    # default: 30 days up to the midnight after the latest end (T0 + 3h)
    assert report.window.until == T0 + timedelta(days=1)
    assert report.window.since == T0 + timedelta(days=1) - timedelta(days=30)


def test_bad_inputs_are_input_errors(fleet: Fleet) -> None:
    with pytest.raises(InputError, match="must be before"):
        priorities_report(fleet.backend(), T0, T0)
    with pytest.raises(InputError, match="unknown taxonomy"):
        parse_owner_map("owners: {}\ncategories: {gpu_oomm: X}\n", "owners.yaml")
    with pytest.raises(InputError, match="unknown owner"):
        parse_owner_map("owners: {users: X}\n", "owners.yaml")
    with pytest.raises(InputError, match="cannot read"):
        load_owner_map("/nonexistent/owners.yaml")


def test_empty_store_ranks_nothing(fleet: Fleet) -> None:
    report = priorities_report(fleet.backend(), now=datetime(2025, 3, 4, 15, 0))

    assert report.rows == ()
    assert report.window.until == datetime(2025, 3, 5)
