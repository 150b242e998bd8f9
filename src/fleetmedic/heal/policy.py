"""Remediation policies as data: ``policies/*.yaml`` validated strictly, matched against diagnoses.

A policy says *when* (category/owner/signature of the diagnosis, how often the node has failed
that way) and *what* (one action kind from :data:`ACTION_KINDS`) and *how far to go* (``mode``:
``dry-run`` unless stated). Retries carry a budget per job and per cause. Validation refuses a
retry on a cause that is not retryable or that the user owns: re-running a user's bug only burns
GPU-hours. Every problem in a file becomes one :class:`~fleetmedic.model.errors.InputError` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fleetmedic.model.errors import InputError
from fleetmedic.model.records import ActionMode, Diagnosis
from fleetmedic.model.taxonomy import CATEGORIES, OWNERS

ActionKind = Literal[
    "retry_from_checkpoint",
    "requeue_excluding_node",
    "cordon_and_drain",
    "health_check_then_uncordon",
    "notify",
    "suggest_fix",
]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)
RETRY_KINDS: frozenset[str] = frozenset({"retry_from_checkpoint", "requeue_excluding_node"})
NODE_KINDS: frozenset[str] = frozenset({"cordon_and_drain", "health_check_then_uncordon"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """What a diagnosis must look like for the policy to apply. Empty lists match anything."""

    categories: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    signature: str | None = Field(default=None, description="regex, searched in the signature id")
    min_node_repeats: int = Field(default=1, ge=1)
    within_hours: float | None = Field(
        default=None, gt=0, description="count only repeats this recent (default: all)"
    )

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown categories {unknown}")
        return value

    @field_validator("owners")
    @classmethod
    def _known_owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [o for o in value if o not in OWNERS]
        if unknown:
            raise ValueError(f"unknown owners {unknown}")
        return value

    @field_validator("signature")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad signature regex {value!r}: {exc}") from None
        return value

    def matches(
        self, diagnosis: Diagnosis, history: Sequence[datetime] = (), now: datetime | None = None
    ) -> bool:
        """``history``: when each distinct failure of this category hit the node (this one too)."""
        if self.categories and diagnosis.category not in self.categories:
            return False
        if self.owners and diagnosis.owner not in self.owners:
            return False
        if self.signature is not None and not re.search(self.signature, diagnosis.signature or ""):
            return False
        if self.min_node_repeats == 1:
            return True
        if self.within_hours is not None and now is not None:
            start = now - timedelta(hours=self.within_hours)
            history = [t for t in history if t >= start]
        return len(history) >= self.min_node_repeats


class RetryBudget(_Strict):
    """Retries allowed per job and per (job, cause); a crash loop stops at the budget.

    With ``window_hours`` only the retries that recent count, so a month-long pre-training run
    is not abandoned after its third infrastructure fault while a job failing every ten minutes
    still stops quickly.
    """

    per_job: int = Field(ge=0)
    per_cause: int = Field(ge=0)
    window_hours: float | None = Field(default=None, gt=0)


class Policy(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    match: Match
    action: ActionKind
    mode: ActionMode = "dry-run"
    retry_budget: RetryBudget | None = None

    @model_validator(mode="after")
    def _retry_rules(self) -> Policy:
        if self.action in RETRY_KINDS:
            if self.retry_budget is None:
                raise ValueError(f"{self.action} needs a retry_budget")
            if not self.match.categories:
                raise ValueError(f"{self.action} must name the categories it retries")
            bad = [
                c
                for c in self.match.categories
                if not CATEGORIES[c].retryable or CATEGORIES[c].owner == "user"
            ]
            if bad:
                raise ValueError(f"{self.action} on non-retryable or user-owned causes {bad}")
            if "user" in self.match.owners:
                raise ValueError(f"{self.action} may not match owner 'user'")
        elif self.retry_budget is not None:
            raise ValueError(f"retry_budget only applies to retries, not {self.action}")
        return self


class GuardConfig(_Strict):
    """Limits for :class:`~fleetmedic.heal.guard.Guard` (see docs/healing.md)."""

    rate_per_kind: dict[ActionKind, float] = Field(default_factory=dict)
    """Tokens per hour for each kind; a kind not listed uses ``default_rate_per_hour``."""
    default_rate_per_hour: float = Field(default=30, gt=0)
    burst: int = Field(default=5, ge=1)
    max_cordoned_fraction: float = Field(default=0.05, gt=0, le=1)
    max_cordoned_fraction_per_pool: float = Field(default=0.2, gt=0, le=1)
    min_schedulable_per_pool: int = Field(default=1, ge=0)
    cooldown_seconds: float = Field(default=1800, ge=0)
    storm_actions: int = Field(default=20, ge=1)
    storm_window_seconds: float = Field(default=600, gt=0)
    storm_kinds: tuple[ActionKind, ...] = (
        "retry_from_checkpoint",
        "requeue_excluding_node",
        "cordon_and_drain",
        "health_check_then_uncordon",
    )
    """Kinds that count toward a storm: those that change the cluster (messages are rate-limited)."""


class PolicySet(_Strict):
    version: Literal[1] = 1
    guard: GuardConfig = Field(default_factory=GuardConfig)
    policies: tuple[Policy, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> PolicySet:
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate policy names {dupes}")
        return self

    def matching(
        self, diagnosis: Diagnosis, history: Sequence[datetime] = (), now: datetime | None = None
    ) -> Iterator[Policy]:
        """Every policy that applies, in file order (one diagnosis may cordon *and* requeue)."""
        return (p for p in self.policies if p.match.matches(diagnosis, history, now))

    def with_mode(self, mode: ActionMode) -> PolicySet:
        """The same policies, all in ``mode`` (the simulator's ``--heal auto`` switches all on)."""
        policies = tuple(p.model_copy(update={"mode": mode}) for p in self.policies)
        return self.model_copy(update={"policies": policies})


def _one_line(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        where = ".".join(str(x) for x in err["loc"]) or "(top)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_policies(text: str, source: str = "<policies>") -> PolicySet:
    """Validate a policy document; any problem raises one-line :class:`InputError`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise InputError(f"{source}: not valid YAML: {reason}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping with 'policies', got {type(raw).__name__}")
    try:
        return PolicySet.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{source}: {_one_line(exc)}") from None


def load_policies(path: str | Path | None = None) -> PolicySet:
    """Load a policy file, or the packaged ``policies/default.yaml`` when ``path`` is None."""
    if path is None:
        text = (
            resources.files("fleetmedic.heal").joinpath("policies/default.yaml").read_text("utf-8")
        )
        return parse_policies(text, "policies/default.yaml")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read policy file {path}: {exc.strerror}") from None
    return parse_policies(text, str(path))
