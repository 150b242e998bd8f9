"""Triage one ticket: extract, link, diagnose, group, retrieve, route, draft.

The verdict (the ticket's category) comes from the most direct evidence available, in this order:
a linked failed job's stored diagnosis, the diagnosis of text pasted in the ticket, the status of
a linked job that did not fail (pending means scheduling), the best known-issue match, then the
category most similar past tickets were given. Each step is recorded in ``Verdict.source``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import duckdb

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.kpi.priorities_owners import OwnerMap, default_owner_map
from fleetmedic.model import CATEGORIES
from fleetmedic.model.inputs import Document
from fleetmedic.model.records import Diagnosis
from fleetmedic.tickets import draft
from fleetmedic.tickets.catalog import Catalog, default_catalog
from fleetmedic.tickets.extract import PatternSet, default_patterns, extract
from fleetmedic.tickets.incidents import find_incident
from fleetmedic.tickets.link import by_category, describe, link_jobs
from fleetmedic.tickets.models import (
    Incident,
    JobLink,
    KnownIssueHit,
    SimilarTicket,
    TicketIn,
    Triage,
    Verdict,
    VerdictSource,
)
from fleetmedic.tickets.route import route
from fleetmedic.tickets.rules import Rules, default_rules
from fleetmedic.tickets.similar import similar_tickets
from fleetmedic.tickets.text import plain

MIN_LOG_CONFIDENCE = 0.5
MIN_ISSUE_SCORE = 0.25
MIN_SIMILAR_SCORE = 0.45
_STATUS_CATEGORY = {
    "pending": ("scheduling", 0.6),
    "preempted": ("preemption", 0.7),
    "timeout": ("timeout", 0.7),
    "cancelled": ("cancelled", 0.6),
}


@dataclass(frozen=True)
class Settings:
    """The data triage reads besides the store; defaults are the packaged files."""

    catalog: Catalog = field(default_factory=default_catalog)
    rules: Rules = field(default_factory=default_rules)
    owners: OwnerMap = field(default_factory=default_owner_map)
    patterns: PatternSet = field(default_factory=default_patterns)
    similar_k: int = 5


def diagnose_text(text: str, name: str) -> Diagnosis:
    """The diagnosis engine over the ticket's text, read as one log (pasted lines included)."""
    data = text.encode("utf-8", errors="replace")
    document = Document(name=name, kind="log", opener=lambda: io.BytesIO(data))
    return diagnose([document], name)


def _verdict_of(category: str, confidence: float, source: VerdictSource, summary: str) -> Verdict:
    entry = CATEGORIES[category]
    return Verdict(
        category=category,
        owner=entry.owner,
        confidence=round(confidence, 3),
        source=source,
        summary=summary,
        advice=entry.advice,
    )


def _from_job(links: Sequence[JobLink], log: Diagnosis | None) -> Verdict | None:
    diagnosed = [link for link in links if link.category and link.category in CATEGORIES]
    if not diagnosed:
        return None
    best = max(
        diagnosed, key=lambda link: (link.score, link.ended_at.timestamp() if link.ended_at else 0)
    )
    confidence = (best.confidence or 0.5) * best.score
    if log is not None and log.category == best.category:
        confidence = min(1.0, confidence + 0.05)
    entry = CATEGORIES[best.category or "unknown"]
    return Verdict(
        category=entry.id,
        signature=best.signature,
        owner=best.owner or entry.owner,
        confidence=round(confidence, 3),
        source="job",
        summary=f"job {best.job_id} failed: {best.summary or entry.meaning}",
        advice=entry.advice,
    )


def _from_log(log: Diagnosis | None) -> Verdict | None:
    if log is None or log.category == "unknown" or log.confidence < MIN_LOG_CONFIDENCE:
        return None
    return Verdict(
        category=log.category,
        signature=log.signature,
        owner=log.owner,
        confidence=round(log.confidence * 0.9, 3),
        source="log",
        summary=f"the text in the ticket shows {log.summary}",
        advice=log.action.advice,
    )


def _from_status(links: Sequence[JobLink]) -> Verdict | None:
    for link in links:
        found = _STATUS_CATEGORY.get(link.status or "")
        if found is not None:
            category, confidence = found
            summary = f"job {link.job_id} is {link.status}: {CATEGORIES[category].meaning}"
            return _verdict_of(category, confidence * link.score, "job_status", summary)
    return None


def _from_issue(known: Sequence[KnownIssueHit]) -> Verdict | None:
    if not known or known[0].score < MIN_ISSUE_SCORE:
        return None
    top = known[0]
    confidence = min(0.3 + 0.6 * top.score, 0.75)
    return _verdict_of(
        top.categories[0],
        confidence,
        "known_issue",
        f"the ticket matches the known issue: {top.title}",
    )


def _from_similar(similar: Sequence[SimilarTicket]) -> Verdict | None:
    votes: dict[str, float] = {}
    for item in similar:
        if item.score >= MIN_SIMILAR_SCORE and item.category in CATEGORIES:
            key = item.category or "unknown"
            votes[key] = votes.get(key, 0.0) + item.score
    votes.pop("unknown", None)
    if not votes:
        return None
    category, weight = max(votes.items(), key=lambda p: (p[1], p[0]))
    summary = f"similar past tickets were {category}: {CATEGORIES[category].meaning}"
    return _verdict_of(category, min(0.25 + 0.3 * weight, 0.6), "similar", summary)


def decide(
    links: Sequence[JobLink],
    log: Diagnosis | None,
    known: Sequence[KnownIssueHit],
    similar: Sequence[SimilarTicket],
) -> Verdict:
    for verdict in (
        _from_job(links, log),
        _from_log(log),
        _from_status(links),
        _from_issue(known),
        _from_similar(similar),
    ):
        if verdict is not None:
            return verdict
    unknown = CATEGORIES["unknown"]
    return Verdict(
        category="unknown",
        owner=unknown.owner,
        confidence=0.0,
        source="none",
        summary="we could not tell what failed from the ticket alone",
        advice=unknown.advice,
    )


def _duplicate(
    ticket: TicketIn,
    user: str | None,
    similar: Sequence[SimilarTicket],
    rules: Rules,
) -> str | None:
    """An earlier ticket about the same job, or by the same person in nearly the same words."""
    horizon = ticket.created_at - timedelta(days=rules.answer.duplicate_days)
    for item in similar:
        recent = item.created_at is None or horizon <= item.created_at <= ticket.created_at
        if not recent:
            continue
        if item.shared_jobs:
            return item.ticket_id
        if user and item.user == user and item.score >= rules.answer.duplicate_similarity:
            return item.ticket_id
    return None


def _same_job_ticket(
    con: duckdb.DuckDBPyConnection, ticket: TicketIn, links: Sequence[JobLink], rules: Rules
) -> str | None:
    """The first recent ticket about one of the same jobs (the root of its duplicate chain)."""
    jobs = [link.job_id for link in links]
    if not jobs:
        return None
    created = ticket.created_at.astimezone(UTC).replace(tzinfo=None)
    row = con.execute(
        "SELECT coalesce(duplicate_of, ticket_id) FROM tickets "
        "WHERE ticket_id <> $self AND created_at BETWEEN $lo AND $hi "
        "AND list_has_any(CAST(job_ids AS VARCHAR[]), $jobs) ORDER BY created_at LIMIT 1",
        {
            "self": ticket.ticket_id,
            "lo": created - timedelta(days=rules.answer.duplicate_days),
            "hi": created,
            "jobs": jobs,
        },
    ).fetchone()
    return str(row[0]) if row else None


def _incident_tickets(con: duckdb.DuckDBPyConnection, incident: Incident | None) -> Incident | None:
    if incident is None:
        return None
    row = con.execute(
        "SELECT count(*) FROM tickets WHERE incident_id = ?", [incident.incident_id]
    ).fetchone()
    return incident.model_copy(update={"tickets": int(row[0]) if row else 0})


def triage(con: duckdb.DuckDBPyConnection, ticket: TicketIn, settings: Settings) -> Triage:
    """Everything the store and the catalogs say about ``ticket``, and a drafted answer."""
    text = plain(f"{ticket.title}\n{ticket.text}" if ticket.title else ticket.text)
    entities = extract(text, ticket.created_at, settings.patterns)
    user = ticket.user or (entities.users[0] if entities.users else None)
    at = entities.times[0] if entities.times else ticket.created_at
    links = link_jobs(con, entities, user, at, ticket.created_at)
    log = diagnose_text(text, ticket.ticket_id)
    similar = similar_tickets(
        con,
        text,
        k=settings.similar_k,
        exclude=ticket.ticket_id,
        jobs=[link.job_id for link in links],
    )
    known = settings.catalog.search(text)
    verdict = decide(links, log, known, similar)
    if not links and user and verdict.source in ("log", "known_issue"):
        found = by_category(con, user, verdict.category, at)
        links = describe(con, found, ticket.created_at)
        verdict = decide(links, log, known, similar) if links else verdict
    if verdict.category != "unknown":
        known = settings.catalog.search(text, verdict.category)
    nodes = [*entities.nodes]
    incident = find_incident(con, links, verdict.category, at, nodes, settings.rules.incidents)
    incident = _incident_tickets(con, incident)
    duplicate = _same_job_ticket(con, ticket, links, settings.rules) or _duplicate(
        ticket, user, similar, settings.rules
    )
    routed = route(verdict, links, incident, settings.rules, settings.owners)
    grounded = verdict.source in ("job", "log", "job_status")
    auto = grounded and verdict.confidence >= settings.rules.answer.min_confidence
    values = draft.context(
        user=user,
        verdict=verdict,
        links=links,
        incident=incident,
        known=known,
        team=routed.team,
        duplicate=duplicate,
    )
    return Triage(
        ticket=ticket,
        entities=entities,
        jobs=tuple(links),
        log_diagnosis=_log_json(log),
        verdict=verdict,
        incident=incident,
        similar=tuple(similar),
        duplicate_of=duplicate,
        known_issues=tuple(known),
        route=routed,
        auto_answered=auto,
        draft=draft.render(values, "markdown"),
        warnings=log.warnings,
    )


def _log_json(log: Diagnosis) -> dict[str, object] | None:
    if log.category == "unknown":
        return None
    return {
        "category": log.category,
        "signature": log.signature,
        "confidence": log.confidence,
        "summary": log.summary,
        "evidence": [e.text for e in log.evidence[:3]],
    }


def render_draft(result: Triage, settings: Settings, fmt: draft.Format) -> str:
    """The answer of a finished triage in another format (text, HTML)."""
    values = draft.context(
        user=result.ticket.user or (result.entities.users[0] if result.entities.users else None),
        verdict=result.verdict,
        links=list(result.jobs),
        incident=result.incident,
        known=list(result.known_issues),
        team=result.route.team,
        duplicate=result.duplicate_of,
    )
    return draft.render(values, fmt)
