"""Records that cross stage boundaries (DESIGN.md "Data model").

They are Pydantic models so that what comes from files, the store or the API is validated once, at
the edge. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal[
    "pending", "running", "succeeded", "failed", "cancelled", "timeout", "preempted"
]
JobKind = Literal["train", "finetune", "eval", "inference", "notebook", "other"]
ActionMode = Literal["dry-run", "approval", "auto"]
ActionState = Literal[
    "proposed", "approved", "rejected", "refused", "executing", "done", "failed", "rolled_back"
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Job(_Record):
    job_id: str
    user: str | None = None
    team: str | None = None
    project: str | None = None
    kind: JobKind | None = None
    framework: str | None = None
    num_gpus: float = 0
    num_nodes: int | None = None
    priority: int | None = None
    queue: str | None = None
    gpu_model: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    status: JobStatus
    attempts: int = 1


class Attempt(_Record):
    job_id: str
    attempt: int
    nodes: tuple[str, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    last_checkpoint_at: datetime | None = None


class Node(_Record):
    node_id: str
    gpu_model: str | None = None
    gpus: int = 0
    pool: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    conditions: dict[str, str] = Field(default_factory=dict)
    cordoned: bool = False
    cordon_reason: str | None = None


class Event(_Record):
    ts: datetime
    source: str
    kind: str
    object: str
    reason: str = ""
    message: str = ""
    severity: Literal["info", "warning", "error"] = "info"
    raw: dict[str, Any] | None = None


class Evidence(_Record):
    """One line that supports a finding: where it is and what it says."""

    file: str
    line: int
    text: str


class Secondary(_Record):
    """A finding that is not the root cause: a symptom, a cascade, or a competing cause."""

    category: str
    signature: str
    summary: str
    evidence: tuple[Evidence, ...] = ()


class ActionRef(_Record):
    kind: str
    advice: str


class Diagnosis(_Record):
    """The engine's answer for one input: DESIGN.md's ``diagnose`` JSON, field for field."""

    input: str
    category: str
    owner: str
    confidence: float
    summary: str
    evidence: tuple[Evidence, ...] = ()
    action: ActionRef
    retryable: bool
    signature: str | None
    secondary: tuple[Secondary, ...] = ()
    details: dict[str, str] = Field(default_factory=dict)
    job_id: str | None = None
    attempt: int | None = None
    warnings: tuple[str, ...] = ()


class Action(_Record):
    action_id: str
    kind: str
    target: str
    because: tuple[str, ...] = ()
    mode: ActionMode = "dry-run"
    state: ActionState = "proposed"
    created_at: datetime
    updated_at: datetime
    result: str | None = None


class Ticket(_Record):
    ticket_id: str
    user: str | None = None
    created_at: datetime
    text: str
    job_ids: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    similar: tuple[str, ...] = ()
    draft_answer: str | None = None
    status: str = "open"
