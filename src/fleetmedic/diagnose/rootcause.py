"""The cause/symptom model: which finding is the root cause, which are its consequences.

A finding is *explained* by another when that other one happened no later and can produce it: any
cause explains a symptom (an NCCL watchdog timeout, torchrun's ChildFailedError, a SIGTERM from the
launcher), and a cause explains another cause when ``causality.yaml`` says so (a CUDA OOM on rank 3
explains the NCCL errors that follow on the other ranks; an Xid 79 explains "CUDA error: unknown
error"). The root cause is the unexplained finding of highest priority; ties go to the earliest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from fleetmedic.diagnose.findings import Finding, order, sort_key


@cache
def explains_table() -> dict[str, frozenset[str]]:
    text = resources.files("fleetmedic.diagnose").joinpath("causality.yaml").read_text("utf-8")
    return {cause: frozenset(effects) for cause, effects in yaml.safe_load(text).items()}


def explains(a: Finding, b: Finding) -> bool:
    """Whether ``a`` accounts for ``b``."""
    if a is b:
        return False
    if (a.first.doc, a.first.line) == (b.first.doc, b.first.line):
        # Two readings of one line: the stronger cause stands.
        return a.role == "cause" and a.priority > b.priority
    if a.role != "cause":
        return False
    when = order(a.first, b.first)
    if when > 0:
        return False
    if b.role == "symptom":
        return True
    if b.category not in explains_table().get(a.category, frozenset()):
        return False
    if when < 0:
        return True
    return a.priority > b.priority


@dataclass(frozen=True, slots=True)
class Verdict:
    root: Finding
    unexplained: tuple[Finding, ...]
    others: tuple[Finding, ...]


def without_restatements(findings: list[Finding]) -> list[Finding]:
    """Drop the catch-all rule's hits on lines that a specific signature also read.

    "RuntimeError: DataLoader worker ... is killed by signal: Bus error" is a Python exception,
    but what it says is the specific signature's business; only exception lines nothing else
    recognised are left to the generic rule.
    """
    specific = {
        (h.doc, h.line)
        for f in findings
        if not f.signature.fallback and f.role != "progress"
        for h in f.hits
    }
    kept = []
    for finding in findings:
        if finding.signature.fallback:
            finding.hits = [h for h in finding.hits if (h.doc, h.line) not in specific]
        if finding.hits:
            kept.append(finding)
    return kept


def choose_root(findings: list[Finding]) -> Verdict | None:
    """Pick the root cause among findings; None when there is nothing to go on."""
    candidates = [f for f in without_restatements(findings) if f.role != "progress"]
    if not candidates:
        return None
    unexplained = [f for f in candidates if not any(explains(g, f) for g in candidates)]
    pool = unexplained or candidates
    ranked = sorted(pool, key=lambda f: (-f.priority, sort_key(f.first)))
    root = ranked[0]
    others = tuple(
        sorted((f for f in candidates if f is not root), key=lambda f: sort_key(f.first))
    )
    return Verdict(root=root, unexplained=tuple(ranked[1:]), others=others)


def confidence(verdict: Verdict) -> float:
    """How much to trust the verdict, from the signature's specificity, corroboration across files
    and signatures, and how close the strongest competing unexplained cause comes. The constants
    are checked against real logs by ``bench/eval_dev.py`` (reliability table in docs)."""
    root = verdict.root
    value = root.signature.confidence
    if root.role == "symptom":
        value *= 0.85
    same = [f for f in verdict.others if f.category == root.category]
    if len(root.docs | {d for f in same for d in f.docs}) > 1:
        value += 0.04
    if same:
        value += 0.04
    rivals = [f for f in verdict.unexplained if f.category != root.category]
    if rivals:
        gap = root.priority - max(f.priority for f in rivals)
        value *= 0.7 if gap <= 10 else 0.85 if gap <= 25 else 0.95
    return round(min(value, 0.99), 2)
