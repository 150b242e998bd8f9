"""The API's response and request bodies: what the OpenAPI spec promises and schemathesis checks.

Times are timezone-aware UTC (the store keeps naive UTC; :func:`utc` marks them), so the JSON
carries an offset and any client parses it unambiguously.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Out):
    status: int
    code: str = Field(description="Stable machine-readable reason, e.g. not_found, forbidden.")
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(_Out):
    """Every 4xx/5xx answer of the API has this shape."""

    error: ErrorDetail


class Page(_Out, Generic[T]):
    """One page of a list: ``items`` from ``offset``; ``next_offset`` is null on the last page."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def page(items: list[T], total: int, limit: int, offset: int) -> Page[T]:
    more = offset + len(items) < total
    return Page[T](
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=offset + len(items) if more else None,
    )


class JobSummary(_Out):
    job_id: str
    user: str | None
    team: str | None
    status: str
    num_gpus: float
    attempts: int
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class JobOut(JobSummary):
    source: str | None
    cluster: str | None
    project: str | None
    kind: str | None
    framework: str | None
    num_nodes: int | None
    priority: int | None
    queue: str | None
    gpu_model: str | None
    node_pool: str | None
    exit_code: int | None
    gpu_util: float | None


class EvidenceOut(_Out):
    file: str
    line: int
    text: str


class SecondaryOut(_Out):
    category: str
    signature: str | None = None
    summary: str | None = None


class DiagnosisOut(_Out):
    category: str
    owner: str
    confidence: float | None
    signature: str | None
    summary: str | None
    evidence: list[EvidenceOut]
    action_kind: str | None
    retryable: bool | None
    secondary: list[SecondaryOut]
    node_id: str | None
    diagnosed_at: datetime | None
    highlight: list[str] = Field(description="Words of the summary to highlight in the evidence.")


class AttemptOut(_Out):
    attempt: int
    nodes: list[str]
    started_at: datetime | None
    ended_at: datetime | None
    status: str | None
    exit_code: int | None
    reason: str | None
    last_checkpoint_at: datetime | None
    gpu_hours: float | None
    diagnosis: DiagnosisOut | None


class ActionOut(_Out):
    action_id: str
    kind: str
    target: str
    because: list[str]
    mode: str
    state: str
    created_at: datetime
    updated_at: datetime
    result: str | None


class TicketOut(_Out):
    ticket_id: str
    created_at: datetime | None
    user: str | None
    title: str | None
    status: str | None
    category: str | None
    severity: str | None
    team: str | None
    incident_id: str | None
    job_ids: list[str]


class JobDetail(_Out):
    job: JobOut
    attempts: list[AttemptOut]
    actions: list[ActionOut]
    tickets: list[TicketOut]
    control_store: bool = Field(description="False when no control store was found: no actions.")


class CauseJob(_Out):
    """A failed attempt of one root cause, for the Failures page's drill-down."""

    job_id: str
    attempt: int
    user: str | None
    team: str | None
    num_gpus: float
    status: str | None
    ended_at: datetime | None
    gpu_hours: float | None
    summary: str | None


class NodeOut(_Out):
    node_id: str
    pool: str | None
    gpu_model: str | None
    gpus: int | None
    cordoned: bool
    cordon_reason: str | None
    ready: bool | None
    failures: int = Field(description="Platform/hardware failures blamed on the node (all data).")
    lemon: bool
    health: str = Field(description="cordoned, not_ready, lemon, failing or healthy.")


class NodeMapPool(_Out):
    pool: str
    nodes: list[str]
    health: list[str]
    failures: list[int]


class NodeMap(_Out):
    pools: list[NodeMapPool]
    counts: dict[str, int]
    shown: int
    total: int


class LemonOut(_Out):
    node: str
    failures: int
    exposure_hours: float
    expected: float
    p_value: float
    q_value: float
    flagged: bool
    evidence: list[NodeFailure]


class NodeFailure(_Out):
    job_id: str
    attempt: int
    category: str
    owner: str
    summary: str | None
    diagnosed_at: datetime | None


class NodeDetail(_Out):
    node: NodeOut
    failures: list[NodeFailure]
    cordon_history: list[ActionOut]


class SwitchOut(_Out):
    engaged: bool
    changed_at: str | None
    changed_by: str | None
    reason: str | None


class ControlOut(_Out):
    control_store: bool
    path: str
    switches: dict[str, SwitchOut]
    actions_by_state: dict[str, int]
    awaiting_approval: int
    guard: dict[str, Any] = Field(description="Limits of the packaged policies' guard.")


class TriageIn(BaseModel):
    """A ticket to triage: what a tracker's webhook or a form sends."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1_000_000)
    title: str | None = Field(default=None, max_length=1000)
    user: str | None = Field(default=None, max_length=200)
    created_at: datetime | None = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    why: str = Field(default="", max_length=500)


class KillSwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engaged: bool
    reason: str = Field(default="", max_length=500)


class Me(_Out):
    name: str
    role: str
    csrf_token: str | None = Field(description="Send as X-CSRF-Token on POSTs made with cookies.")


LemonOut.model_rebuild()
