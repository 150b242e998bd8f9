"""Bulk import links named jobs in SQL; the KPIs follow their formulas on a hand-made set."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ticketkit import T0

from fleetmedic.store import Store
from fleetmedic.tickets.importers import parse_jsonl
from fleetmedic.tickets.ingest import ingest
from fleetmedic.tickets.kpis import ticket_kpis
from fleetmedic.tickets.triage import Settings


def _export(rows: list[dict[str, object]]) -> bytes:
    return "\n".join(json.dumps(r, default=str) for r in rows).encode()


def test_bulk_import_links_named_jobs_and_takes_their_diagnosis(store: Store) -> None:
    rows = [
        {"id": "A", "text": "train-llama-0042 died", "created_at": T0 + timedelta(hours=2)},
        {"id": "B", "text": "pod research-eval-96-worker-0 dead", "created_at": T0},
        {"id": "C", "text": "pending for hours, Insufficient nvidia.com/gpu", "created_at": T0},
        {"id": "A", "text": "train-llama-0042 died (edited)", "created_at": T0},
    ]
    report = ingest(
        store, parse_jsonl(_export(rows), "x"), fmt="jsonl", path="x", settings=Settings()
    )

    assert (report.read, report.imported, report.linked) == (4, 3, 1)
    got = dict(store.con.execute("SELECT ticket_id, category FROM tickets").fetchall())
    assert got == {"A": "gpu_oom", "B": None, "C": "scheduling"}
    text = store.con.execute("SELECT text FROM tickets WHERE ticket_id = 'A'").fetchone()
    assert text is not None and text[0].endswith("(edited)")  # the later row wins
    terms = store.con.execute("SELECT count(DISTINCT ticket_id) FROM ticket_terms").fetchone()
    assert terms == (3,)


def test_ticket_kpis_follow_their_formulas(store: Store) -> None:
    def ticket(tid: str, hours: float, category: str | None, **extra: object) -> None:
        store.con.execute(
            "INSERT INTO tickets (ticket_id, created_at, text, category, signature, status, "
            "auto_answered, triaged_at, first_answer_at, job_ids) "
            "VALUES (?, ?, 'x', ?, ?, ?, ?, ?, ?, ?)",
            [
                tid,
                T0 + timedelta(hours=hours),
                category,
                extra.get("signature"),
                extra.get("status", "open"),
                extra.get("auto"),
                extra.get("triaged"),
                T0 + timedelta(hours=hours + extra["answer"]) if "answer" in extra else None,
                json.dumps(extra.get("jobs", [])),
            ],
        )

    ticket("t1", 0, "storage_io", signature="nfs", auto=True, triaged=T0, answer=1)
    ticket("t2", 2, "storage_io", signature="nfs", auto=False, triaged=T0, answer=3)
    ticket("t3", 30, "storage_io", signature="nfs", answer=5, status="closed")
    ticket("t4", 40, None, jobs=["train-llama-0042"])
    result = ticket_kpis(store.con)

    assert result["tickets"]["total"] == 4 and result["tickets"]["open"] == 3
    assert result["tickets"]["by_category"] == {"storage_io": 3, "untriaged": 1}
    assert result["auto_answered"]["share_of_triaged"] == 0.5
    assert result["time_to_first_answer_hours"]["p50"] == 3.0
    assert result["repeat_tickets"]["total"] == 1  # t3: 30 h after t1
    assert result["repeat_tickets"]["by_cause"][0] == {
        "cause": "storage_io/nfs",
        "tickets": 3,
        "repeats": 1,
    }
    jobs = store.con.execute(
        "SELECT count(*) FROM jobs WHERE submitted_at <= ?", [T0 + timedelta(hours=40)]
    ).fetchone()
    assert jobs is not None
    assert result["tickets_per_1000_jobs"] == round(4 / jobs[0] * 1000, 3)
    assert result["tickets"]["linked_to_jobs"] == 1
    assert (
        ticket_kpis(store.con, datetime(2030, 1, 1), datetime(2030, 2, 1))["tickets"]["total"] == 0
    )
