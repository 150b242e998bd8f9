"""The known-issue catalog (``known_issues.yaml``): runbooks as data, and the search over them.

Entries are validated strictly (unknown keys or categories fail on load). Search is BM25 over
each entry's title and symptoms; when triage already knows the ticket's category, entries of that
category come first, so the answer links the runbook of the cause, not of a word that matched.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleetmedic.model import CATEGORIES
from fleetmedic.model.errors import InputError
from fleetmedic.tickets.models import KnownIssueHit
from fleetmedic.tickets.similar import MemoryBM25

MIN_SCORE = 0.12
"""Below this share of the ticket's own BM25 score, an entry merely shares a common word."""


class KnownIssue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    categories: tuple[str, ...]
    symptoms: str
    fix: str
    runbook: str
    example: str

    @field_validator("categories")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown or not value:
            raise ValueError(f"unknown or missing categor(ies) {unknown}")
        return value


class Catalog:
    """The entries and their BM25 index (built once: the catalog is small)."""

    def __init__(self, issues: tuple[KnownIssue, ...]) -> None:
        ids = [i.id for i in issues]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InputError(f"known issues repeat an id: {duplicates}")
        self.issues = issues
        self.index = MemoryBM25([f"{i.title}\n{i.symptoms}" for i in issues])

    def search(self, text: str, category: str | None = None, k: int = 3) -> list[KnownIssueHit]:
        """Entries matching the ticket's words; with ``category``, that category's entries first."""
        scored = [
            (issue, score)
            for issue, score in zip(self.issues, self.index.scores(text), strict=True)
            if score >= MIN_SCORE or (category is not None and category in issue.categories)
        ]
        scored.sort(key=lambda p: (category not in p[0].categories, -p[1], p[0].id))
        if category is not None:
            scored = [p for p in scored if category in p[0].categories] or scored
        return [
            KnownIssueHit(
                id=issue.id,
                title=issue.title,
                score=round(score, 4),
                categories=issue.categories,
                fix=issue.fix,
                runbook=issue.runbook,
            )
            for issue, score in scored[:k]
        ]


def parse_catalog(text: str, origin: str) -> Catalog:
    try:
        raw = yaml.safe_load(text)
        if not isinstance(raw, list):
            raise InputError(f"{origin}: a known-issue catalog is a list of entries")
        return Catalog(tuple(KnownIssue.model_validate(item) for item in raw))
    except (yaml.YAMLError, ValidationError) as exc:
        raise InputError(
            f"{origin}: not a valid known-issue catalog: {' '.join(str(exc).split())}"
        ) from exc


@cache
def default_catalog() -> Catalog:
    text = resources.files("fleetmedic.tickets").joinpath("known_issues.yaml").read_text("utf-8")
    return parse_catalog(text, "fleetmedic/tickets/known_issues.yaml")


def load_catalog(path: str | Path | None) -> Catalog:
    if path is None:
        return default_catalog()
    try:
        return parse_catalog(Path(path).read_text("utf-8"), str(path))
    except OSError as exc:
        raise InputError(f"cannot read known-issue catalog {path}: {exc.strerror}") from exc
