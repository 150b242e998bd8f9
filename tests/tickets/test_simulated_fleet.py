"""Triage against a simulated fleet: tickets written the way users write them about real jobs.

Expected answers come from the store (each job's latest diagnosis, as the simulator's bundles produced), never from
constants, so the test checks linking and routing, not one seed's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from fleetmedic.sim.config import SimConfig
from fleetmedic.store import Store
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.triage import Settings, triage
from fleetmedic.workflows.simulate import run_simulation


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("sim") / "fleet.duckdb"
    run_simulation(SimConfig(gpus=128, days=2, seed=1, heal="off"), path)
    with Store(path) as store:
        yield store


def _failures(store: Store, limit: int = 12) -> list[tuple[str, str, str, object, str | None]]:
    return store.con.execute(
        """
        SELECT d.job_id, j."user", d.category, j.ended_at,
               (SELECT split_part(e.object, '/', 3) FROM events e
                WHERE json_extract_string(e.raw, '$.job_id') = d.job_id
                  AND starts_with(e.object, 'pod/') LIMIT 1) AS pod
        FROM diagnoses d JOIN jobs j USING (job_id)
        WHERE j.ended_at IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY d.job_id ORDER BY d.attempt DESC) = 1
        ORDER BY hash(d.job_id) LIMIT ?
        """,
        [limit],
    ).fetchall()


def _ticket(text: str, user: str, ended: object) -> TicketIn:
    assert hasattr(ended, "replace")
    created = ended.replace(tzinfo=UTC) + timedelta(hours=1)  # type: ignore[union-attr]
    return TicketIn(ticket_id=f"T-{abs(hash(text))}", text=text, user=user, created_at=created)


@pytest.mark.slow
def test_named_jobs_and_pods_link_to_the_right_job(sim_store: Store) -> None:
    settings = Settings()
    for job_id, user, category, ended, pod in _failures(sim_store):
        texts = [f"Hi, my job {job_id} failed, why?"]
        if pod:
            texts.append(f"kubectl logs {pod} shows it died :(")
        for text in texts:
            result = triage(sim_store.con, _ticket(text, user, ended), settings)
            assert [link.job_id for link in result.jobs][:1] == [job_id], text
            assert result.verdict.category == category
            assert result.verdict.source == "job"


@pytest.mark.slow
def test_a_dropped_digit_links_a_failed_job_of_the_reporter_usually_the_right_one(
    sim_store: Store,
) -> None:
    settings, right, cases = Settings(), 0, _failures(sim_store, 20)
    for job_id, user, _, ended, _ in cases:
        typo = job_id[:-2] + job_id[-1]
        result = triage(sim_store.con, _ticket(f"job id: {typo} crashed", user, ended), settings)
        (link,) = result.jobs
        assert (link.how, link.user) == ("fuzzy", user)
        assert link.category is not None  # a job that failed, not one that merely exists
        right += link.job_id == job_id
    assert right >= 0.75 * len(cases)  # the rest: another failed job of theirs, one edit away


@pytest.mark.slow
def test_routing_follows_the_owner_of_the_stored_cause(sim_store: Store) -> None:
    settings = Settings()
    for job_id, user, _, ended, _ in _failures(sim_store, 20):
        result = triage(sim_store.con, _ticket(f"{job_id} ??", user, ended), settings)
        expected = settings.owners.team(result.verdict.category, result.verdict.owner)
        assert result.route.team == expected
        assert result.jobs[0].owner == result.verdict.owner
