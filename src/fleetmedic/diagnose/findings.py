"""Findings: the hits of one signature across a bundle, ordered in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleetmedic.diagnose.catalog import Signature
from fleetmedic.diagnose.scan import Hit

# Clocks of different nodes disagree a little; closer than this counts as "at the same time".
SLACK = timedelta(seconds=2)


@dataclass(slots=True)
class Finding:
    """One signature's hits, the earliest first. Synthetic findings (hang detection) have an id of
    their own and no catalog signature index."""

    signature: Signature
    hits: list[Hit] = field(default_factory=list)

    @property
    def first(self) -> Hit:
        return self.hits[0]

    @property
    def category(self) -> str:
        return self.signature.category

    @property
    def priority(self) -> int:
        return self.signature.priority

    @property
    def role(self) -> str:
        return self.signature.role

    @property
    def docs(self) -> set[int]:
        return {hit.doc for hit in self.hits}


def order(a: Hit, b: Hit) -> int:
    """-1 if ``a`` happened before ``b``, 1 if after, 0 if at the same time or unknown.

    Timestamps decide when both lines carry one; within one file the line order decides; across
    files without times the order is unknown.
    """
    if a.ts is not None and b.ts is not None:
        if a.ts + SLACK < b.ts:
            return -1
        if b.ts + SLACK < a.ts:
            return 1
    if a.doc == b.doc:
        return (a.line > b.line) - (a.line < b.line)
    return 0


def sort_key(hit: Hit) -> tuple[float, int, int]:
    """Time first (files without times sort by their position), then file, then line."""
    ts = hit.ts.timestamp() if isinstance(hit.ts, datetime) else float("inf")
    return (ts, hit.doc, hit.line)


def group_hits(hits: list[Hit], signatures: tuple[Signature, ...]) -> list[Finding]:
    by_signature: dict[int, Finding] = {}
    for hit in hits:
        finding = by_signature.get(hit.signature)
        if finding is None:
            finding = by_signature[hit.signature] = Finding(signatures[hit.signature])
        finding.hits.append(hit)
    for finding in by_signature.values():
        finding.hits.sort(key=sort_key)
    return sorted(by_signature.values(), key=lambda f: sort_key(f.first))
