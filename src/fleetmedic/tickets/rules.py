"""The triage rules (``rules.yaml``): incident thresholds, severity levels, when a draft is ready.

Data, validated strictly, so a deployment tunes its thresholds without code and a typo in a key or
a category fails when the file is loaded instead of being ignored.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleetmedic.model import CATEGORIES, OWNERS
from fleetmedic.model.errors import InputError
from fleetmedic.tickets.models import Severity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(values: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(values) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown taxonomy categor(ies) {unknown}")
    return values


class BurstRule(_Strict):
    gap_minutes: float
    min_jobs: int
    min_users: int


class IncidentRules(_Strict):
    burst_categories: tuple[str, ...]
    gap_minutes: float = 120
    min_jobs: int = 3
    min_users: int = 2
    burst_overrides: dict[str, BurstRule] = {}
    node_categories: tuple[str, ...] = (
        "gpu_hardware",
        "node_failure",
        "nccl_comm",
        "node_pressure_eviction",
        "hang",
    )
    node_days: float = 7
    node_min_jobs: int = 4
    node_min_jobs_hardware: int = 2
    hardware_categories: tuple[str, ...] = ("gpu_hardware", "node_failure")

    _burst = field_validator("burst_categories")(_known)

    @field_validator("burst_overrides")
    @classmethod
    def _known_overrides(cls, value: dict[str, BurstRule]) -> dict[str, BurstRule]:
        _known(tuple(value))
        return value

    def burst(self, category: str) -> BurstRule:
        """The thresholds of one category: its override, else the defaults."""
        default = BurstRule(
            gap_minutes=self.gap_minutes, min_jobs=self.min_jobs, min_users=self.min_users
        )
        return self.burst_overrides.get(category, default)

    _hardware = field_validator("hardware_categories")(_known)
    _node = field_validator("node_categories")(_known)


class SeverityLevel(_Strict):
    level: Severity
    min_users: int | None = None
    min_gpu_hours: float | None = None
    owners: tuple[str, ...] = ()

    @field_validator("owners")
    @classmethod
    def _known_owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(OWNERS))
        if unknown:
            raise ValueError(f"unknown owner(s) {unknown}")
        return value


class AnswerRules(_Strict):
    min_confidence: float = 0.7
    duplicate_days: float = 14
    duplicate_similarity: float = 0.55


class Rules(_Strict):
    incidents: IncidentRules
    severity: tuple[SeverityLevel, ...]
    answer: AnswerRules = AnswerRules()

    @field_validator("severity")
    @classmethod
    def _ends_with_catch_all(cls, value: tuple[SeverityLevel, ...]) -> tuple[SeverityLevel, ...]:
        if not value:
            raise ValueError("at least one severity level is needed")
        return value


def parse_rules(text: str, origin: str) -> Rules:
    try:
        return Rules.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise InputError(f"{origin}: not a valid rules file: {' '.join(str(exc).split())}") from exc


@cache
def default_rules() -> Rules:
    text = resources.files("fleetmedic.tickets").joinpath("rules.yaml").read_text("utf-8")
    return parse_rules(text, "fleetmedic/tickets/rules.yaml")


def load_rules(path: str | Path | None) -> Rules:
    if path is None:
        return default_rules()
    try:
        return parse_rules(Path(path).read_text("utf-8"), str(path))
    except OSError as exc:
        raise InputError(f"cannot read rules file {path}: {exc.strerror}") from exc
