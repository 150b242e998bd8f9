"""The records of ticket triage: what comes in, what is found in it, and the answer that goes out.

They are Pydantic models like the rest of ``model``, so what arrives from a tracker export, the
command line or (later) the API is validated once, at the edge, and the JSON output of
``fleetmedic ticket triage --format json`` is :meth:`Triage.model_dump` field for field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["sev1", "sev2", "sev3", "sev4"]
VerdictSource = Literal["job", "log", "job_status", "known_issue", "similar", "none"]
LinkHow = Literal["exact", "pod", "suffix", "prefix", "fuzzy", "user_time"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketIn(_Record):
    """A ticket as a tracker or a person hands it over (text already cleaned, see ``text``)."""

    ticket_id: str
    text: str
    title: str | None = None
    user: str | None = None
    created_at: datetime
    status: str = "open"
    source: str = "cli"
    first_answer_at: datetime | None = None
    resolved_at: datetime | None = None


class Entities(_Record):
    """What the ticket names. Candidates, not facts: linking checks each against the store."""

    job_ids: tuple[str, ...] = ()
    fuzzy_job_ids: tuple[str, ...] = Field(default=(), exclude=True)
    """The job ids whose shape is specific enough for typo recovery (``fuzzy`` patterns)."""
    pods: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    times: tuple[datetime, ...] = ()
    errors: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    """Other id-like words (letters, digits, dashes) checked against the store as exact ids."""


class JobLink(_Record):
    """A stored job the ticket is about, how it was found, and what the store knows of it."""

    job_id: str
    how: LinkHow
    mention: str
    score: float
    user: str | None = None
    status: str | None = None
    num_gpus: float = 0.0
    submitted_at: datetime | None = None
    ended_at: datetime | None = None
    attempt: int | None = None
    attempts: int = 1
    category: str | None = None
    signature: str | None = None
    owner: str | None = None
    confidence: float | None = None
    summary: str | None = None
    evidence: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    diagnosis_node: str | None = None
    gpu_hours: float = 0.0
    last_checkpoint_at: datetime | None = None
    actions: tuple[str, ...] = ()


class Incident(_Record):
    """Failures that share one root cause: a burst of one category, or one bad node."""

    incident_id: str
    kind: Literal["burst", "node"]
    category: str
    node: str | None = None
    since: datetime
    until: datetime
    jobs: int
    users: int
    gpu_hours_lost: float
    tickets: int = 0
    summary: str


class SimilarTicket(_Record):
    ticket_id: str
    score: float
    """BM25 score divided by the query's score against itself: about 0..1, 1 is the same text."""
    title: str | None = None
    category: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    user: str | None = None
    shared_jobs: tuple[str, ...] = ()


class KnownIssueHit(_Record):
    id: str
    title: str
    score: float
    categories: tuple[str, ...]
    fix: str
    runbook: str


class Route(_Record):
    owner: str
    team: str
    severity: Severity
    reasons: tuple[str, ...] = ()


class Verdict(_Record):
    """The ticket's category and where it came from (linked job, pasted log, catalog, ...)."""

    category: str
    signature: str | None = None
    owner: str
    confidence: float
    source: VerdictSource
    summary: str
    advice: str


class Triage(_Record):
    """Everything ``fleetmedic ticket triage`` found, and the drafted answer."""

    ticket: TicketIn
    entities: Entities
    jobs: tuple[JobLink, ...] = ()
    log_diagnosis: dict[str, object] | None = None
    verdict: Verdict
    incident: Incident | None = None
    similar: tuple[SimilarTicket, ...] = ()
    duplicate_of: str | None = None
    known_issues: tuple[KnownIssueHit, ...] = ()
    route: Route
    auto_answered: bool
    draft: str
    warnings: tuple[str, ...] = Field(default=())
