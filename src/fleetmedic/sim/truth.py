"""The injected ground truth, kept apart from everything the cluster shows.

Why separate: the diagnoser must only see what a real platform would show (``emit.py``); the truth
of each interrupted attempt (category, owner, culprit node, whether that node is a lemon) is recorded
here so that diagnosis accuracy and the healer's cordons can be scored afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fleetmedic.model.taxonomy import category as taxonomy_category


@dataclass(frozen=True, slots=True)
class Injected:
    """What really ended one attempt."""

    job_id: str
    attempt: int
    category: str
    owner: str
    node: str | None  # culprit node (hardware, node-scoped faults)
    detail: str  # e.g. "xid 79", "lemon", "storage incident"
    at: float  # simulated seconds when the cause happened
    end: float
    gpus: int
    lemon: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def owner_of(category: str, user_side: bool = False) -> str:
    """The taxonomy owner, refined like DESIGN.md says (a missing image tag is the user's)."""
    if category == "image_pull" and user_side:
        return "user"
    return taxonomy_category(category).owner


@dataclass(frozen=True)
class Score:
    """Diagnosis accuracy against the truth: overall and per injected category."""

    total: int
    correct: int
    by_category: dict[str, tuple[int, int]]  # category -> (attempts, correctly diagnosed)
    confusion: dict[str, dict[str, int]]  # injected -> diagnosed -> count (errors only)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "by_category": {
                c: {"attempts": n, "correct": k, "accuracy": k / n if n else None}
                for c, (n, k) in sorted(self.by_category.items())
            },
            "confusion": self.confusion,
        }


def score(truth: Iterable[Injected], diagnosed: Mapping[tuple[str, int], str]) -> Score:
    """Compare each injected attempt with the category diagnosed for it (missing = wrong)."""
    counts: Counter[str] = Counter()
    right: Counter[str] = Counter()
    confusion: dict[str, Counter[str]] = {}
    for item in truth:
        got = diagnosed.get((item.job_id, item.attempt), "missing")
        counts[item.category] += 1
        if got == item.category:
            right[item.category] += 1
        else:
            confusion.setdefault(item.category, Counter())[got] += 1
    return Score(
        total=sum(counts.values()),
        correct=sum(right.values()),
        by_category={c: (counts[c], right[c]) for c in counts},
        confusion={c: dict(v.most_common()) for c, v in sorted(confusion.items())},
    )
