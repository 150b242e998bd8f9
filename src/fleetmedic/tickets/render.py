"""A triage as people read it: a plain-text report for the terminal, or Markdown for a tracker.

Every value that came from the ticket or the store goes through the format's neutralizer
(:func:`~fleetmedic.tickets.draft.neutral_text`, :func:`~fleetmedic.tickets.draft.neutral_markdown`),
so a ``<script>`` in a ticket is shown, never run, wherever the output is pasted.
"""

from __future__ import annotations

from collections.abc import Callable

from fleetmedic.tickets.draft import inline, neutral_markdown, neutral_text
from fleetmedic.tickets.models import Triage


def _lines(result: Triage, esc: Callable[[object], str]) -> list[tuple[str, list[str]]]:
    """(section title, escaped lines) pairs, shared by both formats."""
    e = result.entities
    v = result.verdict
    r = result.route
    entities = [
        f"{label}: {esc(', '.join(inline(x) for x in values))}"
        for label, values in (
            ("job ids", e.job_ids),
            ("pods", e.pods),
            ("nodes", e.nodes),
            ("namespaces", e.namespaces),
            ("users", e.users),
            ("times", [t.isoformat() for t in e.times]),
            ("errors", e.errors[:3]),
        )
        if values
    ]
    jobs = [
        esc(
            inline(
                f"{j.job_id} [{j.how}, from {j.mention!r}] {j.status or '?'}"
                f"{', user ' + j.user if j.user else ''}"
                f"{', ' + j.category + '/' + (j.signature or '') if j.category else ''}"
                f"{': ' + j.summary if j.summary else ''}"
            )
        )
        for j in result.jobs
    ]
    verdict = [
        esc(
            inline(
                f"{v.category} (owner {v.owner}, confidence {v.confidence:.2f}, from {v.source})"
            )
        ),
        esc(inline(v.summary)),
    ]
    incident = []
    if result.incident is not None:
        i = result.incident
        incident = [esc(inline(f"{i.incident_id}: {i.summary}; {i.tickets} earlier ticket(s)"))]
    similar = [
        esc(inline(f"{s.ticket_id} ({s.score:.2f}, {s.category or 'untriaged'}): {s.title or ''}"))
        for s in result.similar
    ]
    if result.duplicate_of:
        similar.insert(0, esc(f"duplicate of {result.duplicate_of}"))
    known = [
        esc(inline(f"{k.id} ({k.score:.2f}) {k.title}: {k.runbook}")) for k in result.known_issues
    ]
    route = [
        esc(inline(f"{r.team}, {r.severity}{' (auto-answered)' if result.auto_answered else ''}")),
        *(esc(inline(reason)) for reason in r.reasons),
    ]
    return [
        ("Entities", entities or ["none found"]),
        ("Linked jobs", jobs or ["none"]),
        ("Verdict", verdict),
        ("Incident", incident or ["none"]),
        ("Similar tickets", similar or ["none"]),
        ("Known issues", known or ["none"]),
        ("Route", route),
        ("Warnings", [esc(inline(w)) for w in result.warnings]),
    ]


def to_text(result: Triage, answer: str) -> str:
    """The terminal report; ``answer`` is the draft in text form (already neutralized)."""
    out = [f"Ticket {neutral_text(inline(result.ticket.ticket_id))}"]
    for title, lines in _lines(result, neutral_text):
        if lines:
            out.append(f"\n{title}")
            out += [f"  {line}" for line in lines]
    out += ["\nDraft answer", answer.rstrip()]
    return "\n".join(out) + "\n"


def to_markdown(result: Triage) -> str:
    """The report as Markdown, ending with the Markdown draft (its values escaped already)."""
    out = [f"## Triage of ticket {neutral_markdown(inline(result.ticket.ticket_id))}"]
    for title, lines in _lines(result, neutral_markdown):
        if lines:
            out.append(f"\n**{title}**\n")
            out += [f"- {line}" for line in lines]
    out += ["\n**Draft answer**\n", result.draft.rstrip()]
    return "\n".join(out) + "\n"
