"""Find what a ticket names: job ids, pods, nodes, namespaces, users, times and error lines.

The patterns are data (``patterns.yaml``) so a deployment's own id format is one entry, validated
when loaded: a pattern that does not compile, or an unknown kind, fails loudly. Everything found is
a candidate; :mod:`fleetmedic.tickets.link` keeps only what the store confirms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.models import Entities

MAX_PER_KIND = 50
EXTRACT_HEAD = 150_000
EXTRACT_TAIL = 50_000
"""Characters searched for entities: people name their job at the top, logs end with the error."""
MAX_ERROR_CHARS = 300
KINDS = (
    "job_id",
    "pod",
    "node",
    "namespace",
    "user",
    "time",
    "clock_time",
    "relative_time",
    "error",
    "token",
)


class Pattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pattern: str
    fuzzy: bool = False
    hours: float | None = None
    """For ``relative_time``: hours back per unit (the group ``v`` is the count, else 1)."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class PatternSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: tuple[Pattern, ...] = ()
    pod: tuple[Pattern, ...] = ()
    node: tuple[Pattern, ...] = ()
    namespace: tuple[Pattern, ...] = ()
    user: tuple[Pattern, ...] = ()
    time: tuple[Pattern, ...] = ()
    clock_time: tuple[Pattern, ...] = ()
    relative_time: tuple[Pattern, ...] = ()
    error: tuple[Pattern, ...] = ()
    token: tuple[Pattern, ...] = ()

    @field_validator("relative_time")
    @classmethod
    def _has_hours(cls, value: tuple[Pattern, ...]) -> tuple[Pattern, ...]:
        missing = [p.name for p in value if p.hours is None]
        if missing:
            raise ValueError(f"relative_time patterns need `hours`: {missing}")
        return value


def parse_patterns(text: str, origin: str) -> PatternSet:
    try:
        return PatternSet.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise InputError(f"{origin}: not a valid patterns file: {_one_line(exc)}") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


@cache
def default_patterns() -> PatternSet:
    text = resources.files("fleetmedic.tickets").joinpath("patterns.yaml").read_text("utf-8")
    return parse_patterns(text, "fleetmedic/tickets/patterns.yaml")


def load_patterns(path: str | Path | None) -> PatternSet:
    if path is None:
        return default_patterns()
    try:
        return parse_patterns(Path(path).read_text("utf-8"), str(path))
    except OSError as exc:
        raise InputError(f"cannot read patterns file {path}: {exc.strerror}") from exc


def _values(patterns: Iterable[Pattern], text: str) -> list[str]:
    found: dict[str, None] = {}
    for pattern in patterns:
        regex = pattern.regex
        has_group = "v" in regex.groupindex
        for match in regex.finditer(text):
            value = (match.group("v") if has_group else match.group(0)) or ""
            value = value.strip().rstrip(".:,")
            if value:
                found.setdefault(value, None)
            if len(found) >= MAX_PER_KIND:
                return list(found)
    return list(found)


def _parse_time(value: str) -> datetime | None:
    text = value.replace(" UTC", "Z").replace("UTC", "Z").strip()
    text = text.replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _times(patterns: PatternSet, text: str, created_at: datetime) -> list[datetime]:
    found: dict[datetime, None] = {}
    for value in _values(patterns.time, text):
        when = _parse_time(value)
        if when is not None and abs((when - created_at).days) < 3650:
            found.setdefault(when, None)
    for value in _values(patterns.clock_time, text):
        hour, minute = (int(part) for part in value.split(":")[:2])
        if hour < 24:
            when = created_at.replace(hour=hour, minute=minute, second=0, microsecond=0)
            found.setdefault(when - timedelta(days=1) if when > created_at else when, None)
    for pattern in patterns.relative_time:
        regex = pattern.regex
        for match in regex.finditer(text):
            count = float(match.group("v")) if "v" in regex.groupindex else 1.0
            found.setdefault(created_at - timedelta(hours=count * float(pattern.hours or 0)), None)
    return list(found)[:MAX_PER_KIND]


def _errors(patterns: PatternSet, text: str) -> list[str]:
    lines = _values(patterns.error, text)
    return [" ".join(line.split())[:MAX_ERROR_CHARS] for line in lines][:10]


def extract(text: str, created_at: datetime, patterns: PatternSet | None = None) -> Entities:
    """The entities of a cleaned ticket text; ``created_at`` anchors "yesterday" and "2h ago"."""
    patterns = patterns or default_patterns()
    if len(text) > EXTRACT_HEAD + EXTRACT_TAIL:
        text = f"{text[:EXTRACT_HEAD]}\n{text[-EXTRACT_TAIL:]}"
    job_ids = _values(patterns.job_id, text)
    fuzzy = _values([p for p in patterns.job_id if p.fuzzy], text)
    pods = _values(patterns.pod, text)
    nodes = [n for n in _values(patterns.node, text) if n not in pods]
    named = set(job_ids) | set(pods) | set(nodes)
    tokens = [t for t in _values(patterns.token, text.lower()) if t not in named]
    return Entities(
        job_ids=tuple(job_ids),
        fuzzy_job_ids=tuple(fuzzy),
        pods=tuple(pods),
        nodes=tuple(nodes),
        namespaces=tuple(_values(patterns.namespace, text)),
        users=tuple(_values(patterns.user, text)),
        times=tuple(_times(patterns, text, created_at)),
        errors=tuple(_errors(patterns, text)),
        tokens=tuple(tokens),
    )
