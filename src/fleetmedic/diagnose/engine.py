"""Diagnose one job's bundle: scan every document, order the findings, name the root cause."""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache

from fleetmedic.diagnose.catalog import load_catalog
from fleetmedic.diagnose.findings import Finding, group_hits, sort_key
from fleetmedic.diagnose.hang import detect_stall
from fleetmedic.diagnose.rootcause import Verdict, choose_root, confidence
from fleetmedic.diagnose.scan import CompiledCatalog, DocScan, Hit, scan_facts, scan_log
from fleetmedic.model.inputs import Document
from fleetmedic.model.records import ActionRef, Diagnosis, Evidence, Secondary
from fleetmedic.model.taxonomy import category as taxonomy_category

MAX_EVIDENCE = 6
MAX_SECONDARY = 10
# A symptom this unspecific (a launcher's epilogue) does not name a cause on its own.
WEAK_SYMPTOM = 0.35


@cache
def compiled_catalog(engine: str = "auto") -> CompiledCatalog:
    return CompiledCatalog(load_catalog(), engine)


def scan_documents(documents: Sequence[Document], engine: str = "auto") -> list[DocScan]:
    compiled = compiled_catalog(engine)
    year = datetime.now(UTC).year
    scans = []
    for index, document in enumerate(documents):
        if document.kind == "k8s":
            scan = scan_facts(compiled, document, index)
        elif document.opener is None:
            scan = DocScan(doc=index, name=document.name)
        else:
            scan = scan_log(compiled, document, index, year)
        scan.warnings[:0] = list(document.warnings)
        scans.append(scan)
    return scans


def diagnose(documents: Sequence[Document], name: str, engine: str = "auto") -> Diagnosis:
    """The diagnosis of the bundle made of ``documents``, reported under ``name``."""
    scans = scan_documents(documents, engine)
    compiled = compiled_catalog(engine)
    findings = group_hits([h for s in scans for h in s.hits], compiled.signatures)
    stall = detect_stall(scans, findings)
    if stall is not None:
        findings.append(stall)
    warnings = tuple(w for s in scans for w in s.warnings)
    verdict = choose_root(findings)
    files = [d.name for d in documents]
    if verdict is None:
        return _unknown(name, warnings)
    if verdict.root.role == "symptom" and verdict.root.signature.confidence < WEAK_SYMPTOM:
        # Only an epilogue ("ChildFailedError", "BackoffLimitExceeded", "exit status 1"): the
        # cause was not in the bundle. Say so, and list what was seen.
        return _unknown(
            name,
            warnings,
            _secondary(verdict, files, include_root=True),
            summary="only the closing report of a launcher or controller was found; the log of "
            "the process that failed first is not in the input",
        )
    return _build(verdict, files, name, warnings)


def _unknown(
    name: str,
    warnings: tuple[str, ...],
    secondary: tuple[Secondary, ...] = (),
    summary: str = "no known failure signature found in the input",
) -> Diagnosis:
    entry = taxonomy_category("unknown")
    return Diagnosis(
        input=name,
        category="unknown",
        owner=entry.owner,
        confidence=0.0,
        summary=summary,
        action=ActionRef(kind=entry.action, advice=entry.advice),
        retryable=False,
        signature=None,
        secondary=secondary,
        warnings=warnings,
    )


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def summarize(finding: Finding, hits: list[Hit] | None = None) -> str:
    details = _Defaults()
    for hit in reversed(hits or finding.hits):
        details.update(hit.details)
    try:
        return string.Formatter().vformat(finding.signature.summary, (), details)
    except (ValueError, IndexError):
        return finding.signature.summary


def _evidence(hits: list[Hit], files: list[str]) -> tuple[Evidence, ...]:
    seen: set[tuple[int, int]] = set()
    out = []
    for hit in sorted(hits, key=sort_key):
        if (hit.doc, hit.line) in seen:
            continue
        seen.add((hit.doc, hit.line))
        out.append(Evidence(file=files[hit.doc], line=hit.line, text=hit.text))
    return tuple(out[:MAX_EVIDENCE])


def _secondary(
    verdict: Verdict, files: list[str], include_root: bool = False
) -> tuple[Secondary, ...]:
    """Other findings, minus what merely restates the root cause's own lines."""
    root = verdict.root
    taken = {(h.doc, h.line) for h in root.hits}
    out = [_as_secondary(root, root.hits, files)] if include_root else []
    for finding in verdict.others:
        if not include_root and finding.category == root.category and finding.role == "cause":
            continue
        hits = [h for h in finding.hits if (h.doc, h.line) not in taken]
        if not hits:
            continue
        out.append(_as_secondary(finding, hits, files))
    return tuple(out[:MAX_SECONDARY])


def _as_secondary(finding: Finding, hits: list[Hit], files: list[str]) -> Secondary:
    return Secondary(
        category=finding.category,
        signature=finding.signature.id,
        summary=summarize(finding, hits),
        evidence=_evidence(hits[:2], files),
    )


def _build(verdict: Verdict, files: list[str], name: str, warnings: tuple[str, ...]) -> Diagnosis:
    root = verdict.root
    sig = root.signature
    entry = taxonomy_category(sig.category)
    support = [
        h
        for f in verdict.others
        if f.category == root.category and f.role == "cause"
        for h in f.hits[:2]
    ]
    details: dict[str, str] = {}
    for hit in root.hits:
        for key, value in hit.details.items():
            details.setdefault(key, value)
    details["files"] = str(len(root.docs))
    details["first_seen"] = f"{files[root.first.doc]}:{root.first.line}"
    secondary = _secondary(verdict, files)
    return Diagnosis(
        input=name,
        category=sig.category,
        owner=sig.owner or entry.owner,
        confidence=confidence(verdict),
        summary=summarize(root),
        evidence=_evidence(root.hits[:4] + support, files),
        action=ActionRef(kind=sig.action or entry.action, advice=sig.advice or entry.advice),
        retryable=entry.retryable if sig.retryable is None else sig.retryable,
        signature=sig.id,
        secondary=secondary,
        details=details,
        warnings=warnings,
    )
