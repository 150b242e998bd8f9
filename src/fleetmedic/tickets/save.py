"""Keep tickets in the store: the ``tickets`` row and its ``ticket_terms`` postings, together.

A ticket and its postings are written in one transaction, so similar-ticket search never sees a
ticket without its words or words without their ticket. Saving a ticket id again replaces it.
Bulk imports stage Arrow tables and move them with set-based SQL: no row-by-row INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from fleetmedic.tickets.models import TicketIn, Triage
from fleetmedic.tickets.text import term_counts

_TICKET_COLUMNS = (
    "ticket_id",
    '"user"',
    "created_at",
    "text",
    "job_ids",
    "diagnoses",
    '"similar"',
    "draft_answer",
    "status",
    "category",
    "title",
    "source",
    "signature",
    "owner",
    "team",
    "severity",
    "confidence",
    "incident_id",
    "duplicate_of",
    "nodes",
    "auto_answered",
    "first_answer_at",
    "resolved_at",
    "triaged_at",
    "terms",
)


def naive(value: datetime | None) -> datetime | None:
    """Naive UTC, how the store keeps times."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _index_text(ticket: TicketIn) -> str:
    return f"{ticket.title}\n{ticket.text}" if ticket.title else ticket.text


def _row(result: Triage, now: datetime) -> dict[str, Any]:
    ticket = result.ticket
    jobs = [link.job_id for link in result.jobs]
    diagnosed = [f"{link.job_id}#{link.attempt}" for link in result.jobs if link.category]
    nodes = sorted({n for link in result.jobs for n in link.nodes} | set(result.entities.nodes))
    return {
        "ticket_id": ticket.ticket_id,
        '"user"': ticket.user or (result.entities.users[0] if result.entities.users else None),
        "created_at": naive(ticket.created_at),
        "text": ticket.text,
        "job_ids": json.dumps(jobs),
        "diagnoses": json.dumps(diagnosed),
        '"similar"': json.dumps([s.ticket_id for s in result.similar]),
        "draft_answer": result.draft,
        "status": ticket.status,
        "category": result.verdict.category,
        "title": ticket.title,
        "source": ticket.source,
        "signature": result.verdict.signature,
        "owner": result.route.owner,
        "team": result.route.team,
        "severity": result.route.severity,
        "confidence": result.verdict.confidence,
        "incident_id": result.incident.incident_id if result.incident else None,
        "duplicate_of": result.duplicate_of,
        "nodes": json.dumps(nodes),
        "auto_answered": result.auto_answered,
        "first_answer_at": naive(ticket.first_answer_at),
        "resolved_at": naive(ticket.resolved_at),
        "triaged_at": naive(now),
        "terms": 0,
    }


def save_triage(con: duckdb.DuckDBPyConnection, result: Triage, now: datetime) -> None:
    """Keep a triaged ticket (replacing an earlier save of the same id) and index its words."""
    counts, length = term_counts(_index_text(result.ticket))
    row = _row(result, now)
    row["terms"] = length
    ticket_id = result.ticket.ticket_id
    marks = ", ".join("?" for _ in _TICKET_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM ticket_terms WHERE ticket_id = ?", [ticket_id])
        con.execute(
            f"INSERT OR REPLACE INTO tickets ({', '.join(_TICKET_COLUMNS)}) VALUES ({marks})",
            [row[c] for c in _TICKET_COLUMNS],
        )
        if counts:
            con.execute(
                "INSERT INTO ticket_terms SELECT ?, unnest(?::VARCHAR[]), unnest(?::INTEGER[])",
                [ticket_id, list(counts), list(counts.values())],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class Staged:
    """A bulk import's tickets as columns, plus the job-id candidates found in each."""

    tickets: Sequence[TicketIn]
    candidates: Sequence[Sequence[str]]
    categories: Sequence[str | None]


def _arrow_tickets(staged: Staged) -> tuple[pa.Table, pa.Table]:
    ids: list[str] = []
    terms: list[str] = []
    tfs: list[int] = []
    lengths: list[int] = []
    for ticket in staged.tickets:
        counts, length = term_counts(_index_text(ticket))
        lengths.append(length)
        ids.extend([ticket.ticket_id] * len(counts))
        terms.extend(counts)
        tfs.extend(counts.values())
    stamp = pa.timestamp("us")
    t = staged.tickets
    tickets = pa.table(
        {
            "ticket_id": [x.ticket_id for x in t],
            "user": [x.user for x in t],
            "created_at": pa.array([naive(x.created_at) for x in t], stamp),
            "text": [x.text for x in t],
            "status": [x.status for x in t],
            "title": [x.title for x in t],
            "source": [x.source for x in t],
            "first_answer_at": pa.array([naive(x.first_answer_at) for x in t], stamp),
            "resolved_at": pa.array([naive(x.resolved_at) for x in t], stamp),
            "terms": pa.array(lengths, pa.int32()),
            "candidates": pa.array([list(c) for c in staged.candidates], pa.list_(pa.string())),
            "guess": pa.array(list(staged.categories), pa.string()),
        }
    )
    postings = pa.table({"ticket_id": ids, "term": terms, "tf": pa.array(tfs, pa.int32())})
    return tickets, postings


_LINK_SQL = """
CREATE OR REPLACE TEMP TABLE _fm_ticket_links AS
WITH c AS (SELECT ticket_id, unnest(candidates) AS job_id FROM _fm_tickets),
linked AS (
    SELECT c.ticket_id, c.job_id, d.category, d.signature, d.owner, d.confidence, d.attempt
    FROM c JOIN jobs j USING (job_id)
    LEFT JOIN diagnoses d ON d.job_id = j.job_id
    QUALIFY row_number() OVER (PARTITION BY c.ticket_id, c.job_id ORDER BY d.attempt DESC) = 1
)
SELECT ticket_id, to_json(list(DISTINCT job_id ORDER BY job_id)) AS job_ids,
       to_json(list(DISTINCT job_id || '#' || attempt ORDER BY job_id || '#' || attempt)
           FILTER (WHERE category IS NOT NULL)) AS diagnoses,
       arg_max(category, coalesce(confidence, -1)) AS category,
       arg_max(signature, coalesce(confidence, -1)) AS signature,
       arg_max(owner, coalesce(confidence, -1)) AS owner
FROM linked GROUP BY ticket_id
"""

_INSERT_SQL = """
INSERT INTO tickets (ticket_id, "user", created_at, text, status, title, source,
                     first_answer_at, resolved_at, terms, job_ids, diagnoses, category, signature,
                     owner)
SELECT t.ticket_id, t."user", t.created_at, t.text, t.status, t.title, t.source,
       t.first_answer_at, t.resolved_at, t.terms, coalesce(l.job_ids, '[]'),
       coalesce(l.diagnoses, '[]'), coalesce(l.category, t.guess), l.signature, l.owner
FROM _fm_tickets t LEFT JOIN _fm_ticket_links l USING (ticket_id)
"""


def _stage(con: duckdb.DuckDBPyConnection, name: str, frame: pa.Table) -> None:
    """Copy an Arrow table into a temp table; DuckDB finds ``frame`` by name (replacement scan),
    which, unlike ``register``, works while the connection holds an unread result."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM frame")


def save_bulk(con: duckdb.DuckDBPyConnection, staged: Staged) -> int:
    """Insert many tickets, replacing stored ones with the same id, linked to the jobs they name.

    The link is exact (a named id that is a stored job); the category is the linked job's
    diagnosis, else the caller's guess (the known-issue match). ``ticket triage`` does the rest.
    """
    if not staged.tickets:
        return 0
    tickets, postings = _arrow_tickets(staged)
    _stage(con, "_fm_tickets", tickets)
    _stage(con, "_fm_ticket_terms", postings)
    try:
        con.execute(_LINK_SQL)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "DELETE FROM ticket_terms WHERE ticket_id IN (SELECT ticket_id FROM _fm_tickets)"
            )
            con.execute(
                "DELETE FROM tickets WHERE ticket_id IN (SELECT ticket_id FROM _fm_tickets)"
            )
            con.execute(_INSERT_SQL)
            con.execute("INSERT INTO ticket_terms SELECT * FROM _fm_ticket_terms")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        for name in ("_fm_tickets", "_fm_ticket_terms", "_fm_ticket_links"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return len(staged.tickets)
