"""Bulk-load parsed tickets into the store, fast enough for a tracker's whole history.

Per ticket, Python only runs the entity regexes (job-id candidates) and the known-issue match
that guesses a category when no job is named; linking to jobs and diagnoses is one set-based
join in DuckDB (:func:`fleetmedic.tickets.save.save_bulk`). ``triage=True`` runs the full triage on
every ticket instead, oldest first so each sees only its past: thorough, about a hundred times
slower, meant for small exports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetmedic.store.db import Store
from fleetmedic.store.writer import ImportRecord, Writer
from fleetmedic.tickets.extract import extract
from fleetmedic.tickets.importers import Parsed
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.save import Staged, save_bulk, save_triage
from fleetmedic.tickets.text import plain
from fleetmedic.tickets.triage import MIN_ISSUE_SCORE, Settings, triage

CHUNK = 20_000
_REPLICA = re.compile(r"-(?:worker|master|launcher|chief|ps|evaluator|driver|executor|head)-\d+$")


@dataclass(frozen=True)
class IngestReport:
    read: int
    imported: int
    bad: int
    linked: int
    seconds: float
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "imported": self.imported,
            "bad": self.bad,
            "linked": self.linked,
            "seconds": round(self.seconds, 3),
            "problems": list(self.problems),
        }


def _candidates(ticket: TicketIn, text: str) -> list[str]:
    entities = extract(text, ticket.created_at)
    found = [*entities.job_ids, *entities.tokens, *entities.pods]
    found += [_REPLICA.sub("", p) for p in entities.pods]
    return list(dict.fromkeys(found))[:50]


def _guess(settings: Settings, text: str) -> str | None:
    hits = settings.catalog.search(text, k=1)
    return hits[0].categories[0] if hits and hits[0].score >= MIN_ISSUE_SCORE else None


def _unique(tickets: list[TicketIn]) -> list[TicketIn]:
    """One ticket per id, the last one read (a later export row is the newer state)."""
    return list({t.ticket_id: t for t in tickets}.values())


def ingest(
    store: Store,
    parsed: Parsed,
    *,
    fmt: str,
    path: str,
    settings: Settings,
    full_triage: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> IngestReport:
    """Store every parsed ticket; with ``full_triage``, each is triaged and saved on its own."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    tickets = _unique(parsed.tickets)
    if full_triage:
        tickets.sort(key=lambda t: (t.created_at, t.ticket_id))
        for number, ticket in enumerate(tickets, start=1):
            save_triage(store.con, triage(store.con, ticket, settings), datetime.now(UTC))
            if progress is not None:
                progress("triage", number / len(tickets))
    else:
        for start in range(0, len(tickets), CHUNK):
            chunk = tickets[start : start + CHUNK]
            texts = [plain(f"{t.title}\n{t.text}" if t.title else t.text) for t in chunk]
            save_bulk(
                store.con,
                Staged(
                    tickets=chunk,
                    candidates=[_candidates(t, x) for t, x in zip(chunk, texts, strict=True)],
                    categories=[_guess(settings, x) for x in texts],
                ),
            )
            if progress is not None:
                progress("import", min(1.0, (start + CHUNK) / len(tickets)))
    linked = _linked(store, [t.ticket_id for t in tickets])
    finished = datetime.now(UTC)
    Writer(store).record_import(
        ImportRecord(
            format=f"tickets-{fmt}",
            path=path,
            rows_read=parsed.read,
            rows_ok=len(tickets),
            rows_bad=parsed.bad,
            started_at=started,
            finished_at=finished,
        )
    )
    return IngestReport(
        read=parsed.read,
        imported=len(tickets),
        bad=parsed.bad,
        linked=linked,
        seconds=time.perf_counter() - clock,
        problems=tuple(parsed.problems),
    )


def _linked(store: Store, ids: list[str]) -> int:
    if not ids:
        return 0
    row = store.con.execute(
        "SELECT count(*) FROM tickets WHERE ticket_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND json_array_length(job_ids) > 0",
        [ids],
    ).fetchone()
    return int(row[0]) if row else 0
