"""End to end over the scenario: category, incident, duplicates, routing, auto-answer."""

from __future__ import annotations

from datetime import datetime

from ticketkit import aware

from fleetmedic.store import Store
from fleetmedic.tickets.models import TicketIn, Triage
from fleetmedic.tickets.save import save_triage
from fleetmedic.tickets.triage import Settings, triage


def run(
    store: Store,
    text: str,
    *,
    user: str | None = None,
    hours: float = 80,
    ticket_id: str = "T-new",
    save: bool = False,
) -> Triage:
    ticket = TicketIn(ticket_id=ticket_id, text=text, user=user, created_at=aware(hours))
    result = triage(store.con, ticket, Settings())
    if save:
        save_triage(store.con, result, datetime(2024, 6, 10))
    return result


def test_a_ticket_about_an_oom_job_is_the_users_and_answered(store: Store) -> None:
    result = run(store, "hey, train-llama-0042 crashed overnight, what happened?", user="alice")

    assert (result.verdict.category, result.verdict.source) == ("gpu_oom", "job")
    assert result.route.team == "ML users / job owners" and result.route.severity == "sev4"
    assert result.auto_answered
    assert result.known_issues[0].id == "KI-GPU-OOM"


def test_storage_tickets_join_one_incident(store: Store) -> None:
    first = run(
        store,
        "etl-002 failed: stale file handle??",
        user="erin",
        hours=10.5,
        ticket_id="T-1",
        save=True,
    )
    second = run(
        store, "my etl job etl-005 also died, I/O error", user="dave", hours=11, ticket_id="T-2"
    )

    assert first.incident is not None and second.incident is not None
    assert first.incident.incident_id == second.incident.incident_id
    assert second.incident.tickets == 1  # the first ticket, saved
    assert second.route.team == "ML platform" and second.route.severity == "sev2"


def test_a_second_ticket_about_the_same_job_is_a_duplicate(store: Store) -> None:
    run(
        store,
        "ft-bert-0007 failed with KeyError labels",
        user="bob",
        hours=4,
        ticket_id="T-1",
        save=True,
    )
    again = run(store, "hello? ft-bert-0007 still broken", user="bob", hours=6, ticket_id="T-2")
    other = run(store, "train-llama-0042 died", user="alice", hours=6, ticket_id="T-3")

    assert again.duplicate_of == "T-1"
    assert again.similar[0].shared_jobs == ("ft-bert-0007",)
    assert other.duplicate_of is None


def test_a_pasted_log_is_diagnosed_when_no_job_is_named(store: Store) -> None:
    text = """my finetune died, here is the end of the log:
    File "/app/train.py", line 88, in <module>
        batch = next(loader)
    OSError: [Errno 28] No space left on device: '/scratch/cache'
    """
    result = run(store, text, user="zoe")

    assert result.jobs == ()
    assert (result.verdict.category, result.verdict.source) == ("storage_io", "log")
    assert result.log_diagnosis is not None


def test_a_pending_job_is_a_scheduling_question(store: Store) -> None:
    result = run(store, "sweep-0003 has been waiting forever", user="carol")

    assert (result.verdict.category, result.verdict.source) == ("scheduling", "job_status")


def test_a_ticket_without_ids_or_logs_is_classified_by_the_catalog(store: Store) -> None:
    result = run(store, "waiting in the queue for 6 hours, not enough GPUs?", user="zoe")

    assert (result.verdict.category, result.verdict.source) == ("scheduling", "known_issue")
    assert not result.auto_answered  # a guess from words is a draft to check, not an answer


def test_nothing_to_go_on_is_unknown_and_goes_to_triage(store: Store) -> None:
    result = run(store, "hello, something is off, please call me", user="zoe")

    assert result.verdict.category == "unknown"
    assert result.route.team == "Unassigned (triage)"
