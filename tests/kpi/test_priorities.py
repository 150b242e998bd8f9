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

T0 = datetime(
    2024, 1, 8
)  # the ranked window is [T0, T0 + 7 days); the previous one the week before
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


def by_cause(rows: Sequence[PriorityRow]) -> dict[str, PriorityRow]:
    return {row.cause: row for row in rows}


@pytest.fixture
def fleet_db(tmp_path: Path) -> Iterator[Fleet]:
    built = Fleet(tmp_path / "fleet.duckdb")
    yield built
    built.store.close()


def _ranking_cases(fleet: Fleet) -> None:
    # A: one 8-GPU job losing 10h = 80 GPU-h; B: three 1-GPU jobs losing 5h each = 15 GPU-h
    fleet.failure("big", "nccl_comm", "rank_a", hours=10, gpus=8, owner="platform")
    for name in ("s1", "s2", "s3"):
        fleet.failure(name, "gpu_oom", "rank_b", hours=5, gpus=1)


def _checkpoint_cases(fleet: Fleet) -> None:
    fleet.job("j", at(0), at(10), gpus=8)
    # attempt 1: 0h-4h, checkpoint at 3h -> 8 x 1h; retried at 4.5h on the same nodes -> 8 x 0.5h
    fleet.attempt("j", 1, at(0), at(4), nodes=["c1", "c2"], checkpoint=at(3))
    # attempt 2: 4.5h-10h, no checkpoint -> 8 x 5.5h; nothing follows it
    fleet.attempt("j", 2, at(4.5), at(10), nodes=["c1", "c2"])
    fleet.diagnose("j", "gpu_hardware", "ckpt_same_nodes", attempt=1, node="c1", owner="hardware")
    fleet.diagnose("j", "nccl_comm", "ckpt_none", attempt=2, owner="platform")
    # checkpoint from before the attempt started: the whole attempt (2h-4h) is lost; the retry
    # runs elsewhere, so the gap before it is not held GPU time
    fleet.job("k", at(0), at(10), gpus=4)
    fleet.attempt("k", 1, at(2), at(4), nodes=["c3"], checkpoint=at(1))
    fleet.attempt("k", 2, at(6), at(10), nodes=["c9"], status="succeeded")
    fleet.diagnose("k", "gpu_hardware", "ckpt_other_nodes", node="c3", owner="hardware")


def _trend_cases(fleet: Fleet) -> None:
    before = T0 - WEEK
    fleet.failure("up0", "storage_io", "trend_up", hours=10, gpus=1, start=before)
    fleet.failure("up1", "storage_io", "trend_up", hours=20, gpus=1)
    fleet.failure("down0", "hang", "trend_down", hours=20, gpus=1, start=before)
    fleet.failure("down1", "hang", "trend_down", hours=10, gpus=1)
    fleet.failure("flat0", "rendezvous", "trend_flat", hours=10, gpus=1, start=before)
    fleet.failure("flat1", "rendezvous", "trend_flat", hours=10.5, gpus=1)
    fleet.failure("new1", "shm_exhausted", "trend_new", hours=1, gpus=1)
    fleet.failure("old0", "data_error", "trend_gone", hours=99, gpus=1, start=before)


def _place_cases(fleet: Fleet) -> None:
    fleet.node("gpu-17", "pool-a")
    fleet.node("gpu-18", "pool-a")
    fleet.failure("p1", "gpu_hardware", "place_node", hours=6, gpus=1, node="gpu-17")
    fleet.failure("p2", "gpu_hardware", "place_node", hours=6, gpus=1, node="gpu-17")
    fleet.failure("p3", "gpu_hardware", "place_node", hours=4, gpus=1, node="gpu-18")
    # spread evenly over two nodes by attempt membership: no node carries more than half
    fleet.job("p4", at(0), at(4), gpus=2)
    fleet.attempt("p4", 1, at(0), at(4), nodes=["gpu-17", "gpu-18"])
    fleet.diagnose("p4", "nccl_comm", "place_spread", owner="platform")
    fleet.con.execute("ALTER TABLE jobs ADD COLUMN image VARCHAR")
    fleet.failure("i1", "dependency_error", "place_image", hours=3, gpus=1)
    fleet.failure("i2", "dependency_error", "place_image", hours=1, gpus=1)
    fleet.con.execute("UPDATE jobs SET image = 'torch:2.4' WHERE job_id = 'i1'")
    fleet.con.execute("UPDATE jobs SET image = 'other' WHERE job_id = 'i2'")


def _unknown_and_ticket_cases(fleet: Fleet) -> None:
    fleet.failure("mystery", None, hours=2, gpus=4)
    fleet.job("ok", at(0), at(50), gpus=8, status="succeeded")
    fleet.job("stopped", at(0), at(50), gpus=8, status="cancelled")
    fleet.job("running", at(0), None, gpus=8, status="running")
    fleet.failure("t_a", "host_oom", "tickets", hours=1, gpus=1)
    fleet.failure("t_b", "host_oom", "tickets", hours=1, gpus=1)
    fleet.failure("t_c", "device_assert", "no_tickets", hours=1, gpus=1)
    fleet.ticket("t1", at(1), ["t_a", "t_b"])  # one ticket about two jobs of the same cause
    fleet.ticket("t2", at(2), ["t_b"])
    fleet.ticket("t3", at(3), category="host_oom")  # no job named: counted by category
    fleet.ticket("t4", T0 - 2 * WEEK, category="host_oom")  # filed outside the window


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PriorityRow]:
    """Every hand-computed case in one store, ranked once (each case has its own signature)."""
    fleet = Fleet(tmp_path_factory.mktemp("scenario") / "fleet.duckdb")
    for build in (
        _ranking_cases,
        _checkpoint_cases,
        _trend_cases,
        _place_cases,
        _unknown_and_ticket_cases,
    ):
        build(fleet)
    rows = fleet.rank(limit=100)
    fleet.store.close()
    return by_cause(rows)


def test_more_lost_gpu_hours_ranks_first_even_with_fewer_jobs(
    ranked: dict[str, PriorityRow],
) -> None:
    big, small = ranked["nccl_comm/rank_a"], ranked["gpu_oom/rank_b"]

    assert big.rank < small.rank
    assert (big.gpu_hours_lost, big.jobs_affected) == (80.0, 1)
    assert (small.gpu_hours_lost, small.failures, small.jobs_affected) == (15.0, 3, 3)
    assert small.users_affected == 3
    assert big.team == "ML platform" and small.team == "ML users / job owners"
    ranks = [row.rank for row in sorted(ranked.values(), key=lambda r: -r.gpu_hours_lost)]
    assert ranks == sorted(ranks)


def test_loss_counts_from_last_checkpoint_plus_restart_on_same_nodes(
    ranked: dict[str, PriorityRow],
) -> None:
    assert ranked["gpu_hardware/ckpt_same_nodes"].gpu_hours_lost == pytest.approx(8 + 4)
    assert ranked["nccl_comm/ckpt_none"].gpu_hours_lost == pytest.approx(8 * 5.5)
    assert ranked["gpu_hardware/ckpt_other_nodes"].gpu_hours_lost == pytest.approx(4 * 2)


def test_trend_against_previous_period_of_equal_length(ranked: dict[str, PriorityRow]) -> None:
    up, down = ranked["storage_io/trend_up"].trend, ranked["hang/trend_down"].trend
    flat, new = ranked["rendezvous/trend_flat"].trend, ranked["shm_exhausted/trend_new"].trend

    assert (up.direction, up.change_pct, up.previous_gpu_hours_lost) == ("up", 100.0, 10.0)
    assert (down.direction, down.change_pct) == ("down", -50.0)
    assert (flat.direction, flat.change_pct) == ("flat", 5.0)
    assert (new.direction, new.change_pct) == ("new", None)
    assert "data_error/trend_gone" not in ranked  # nothing lost in the ranked period


def test_cause_concentrated_on_one_node_pool_or_image_is_named(
    ranked: dict[str, PriorityRow],
) -> None:
    node = ranked["gpu_hardware/place_node"]
    assert node.node is not None and (node.node.name, node.node.share) == ("gpu-17", 0.75)
    assert node.where == "node gpu-17 (75%), pool pool-a (100%)"
    spread = ranked["nccl_comm/place_spread"]
    assert spread.node is None
    assert spread.pool is not None and spread.pool.share == 1.0
    image = ranked["dependency_error/place_image"].image
    assert image is not None and (image.name, image.share) == ("torch:2.4", 0.75)
    assert ranked["gpu_oom/rank_b"].where == ""


def test_undiagnosed_failure_is_unknown_and_successes_and_cancels_are_not_losses(
    ranked: dict[str, PriorityRow],
) -> None:
    unknown = ranked["unknown"]

    assert (unknown.category, unknown.signature, unknown.owner) == ("unknown", None, "—")
    assert unknown.team == "Unassigned (triage)"
    assert (unknown.gpu_hours_lost, unknown.jobs_affected) == (8.0, 1)


def test_ticket_counts_linked_jobs_and_unlinked_same_category(
    ranked: dict[str, PriorityRow],
) -> None:
    assert ranked["host_oom/tickets"].tickets == 3
    assert ranked["device_assert/no_tickets"].tickets == 0


def test_goodput_points_are_lost_over_total_and_no_tickets_is_unknown(fleet_db: Fleet) -> None:
    fleet_db.failure("bad", "gpu_oom", "cuda_oom", hours=10, gpus=2)  # 20 lost
    fleet_db.job("good", at(0), at(10), gpus=18, status="succeeded")  # 180 useful -> 200 in all

    report = priorities_report(fleet_db.backend(), T0, T0 + WEEK)

    (row,) = report.rows
    assert report.total_gpu_hours == 200.0
    assert (row.gain_gpu_hours, row.gain_goodput_points) == (20.0, 10.0)
    assert row.tickets is None  # the store holds no ticket at all


def test_limit_owner_override_and_window_defaults(fleet_db: Fleet, tmp_path: Path) -> None:
    fleet_db.failure("a", "image_pull", "not_found", hours=3, gpus=1, owner="platform")
    fleet_db.failure("b", "gpu_oom", "cuda_oom", hours=2, gpus=1)
    mapping = tmp_path / "owners.yaml"
    mapping.write_text(
        "owners: {user: Research, platform: Infra}\ncategories: {image_pull: Build team}\n"
    )

    report = priorities_report(fleet_db.backend(), limit=1, owners=load_owner_map(mapping))

    assert [r.cause for r in report.rows] == ["image_pull/not_found"]
    assert report.rows[0].team == "Build team"
    # default: 30 days up to the midnight after the latest end (T0 + 3h)
    assert report.window.until == T0 + timedelta(days=1)
    assert report.window.since == T0 + timedelta(days=1) - timedelta(days=30)


def test_bad_inputs_are_input_errors(fleet_db: Fleet) -> None:
    with pytest.raises(InputError, match="must be before"):
        priorities_report(fleet_db.backend(), T0, T0)
    with pytest.raises(InputError, match="at least 1"):
        priorities_report(fleet_db.backend(), limit=0)
    with pytest.raises(InputError, match="unknown taxonomy"):
        parse_owner_map("owners: {}\ncategories: {gpu_oomm: X}\n", "owners.yaml")
    with pytest.raises(InputError, match="unknown owner"):
        parse_owner_map("owners: {users: X}\n", "owners.yaml")
    with pytest.raises(InputError, match="cannot read"):
        load_owner_map("/nonexistent/owners.yaml")


def test_empty_store_ranks_nothing(fleet_db: Fleet) -> None:
    report = priorities_report(fleet_db.backend(), now=datetime(2025, 3, 4, 15, 0))

    assert report.rows == ()
    assert report.window.until == datetime(2025, 3, 5)
