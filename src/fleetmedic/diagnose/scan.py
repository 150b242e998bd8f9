"""Stream one document through the compiled catalog and collect hits.

A log is read in chunks of a few MiB cut at line ends; the matcher scans each chunk once, and only
lines that match are decoded and looked at in Python. Memory is bounded by the chunk size whatever
the file size or line length (a line longer than ``MAX_LINE`` is scanned in pieces).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime

from fleetmedic.diagnose.catalog import Catalog, Signature, line_bound
from fleetmedic.diagnose.matcher import Matcher, build_matcher
from fleetmedic.diagnose.timestamps import full_year, parse_line_time
from fleetmedic.model.inputs import Document

CHUNK = 4 * 1024 * 1024
MAX_LINE = 1024 * 1024
MAX_TEXT = 2000  # characters of an evidence line kept
HITS_PER_SIGNATURE = 4  # per document: the first three and the last
LOOKBACK_LINES = 30  # lines searched upwards for a timestamp when a hit line has none
TAIL_BYTES = 64 * 1024


@dataclass(slots=True)
class Hit:
    signature: int
    doc: int
    line: int
    text: str
    ts: datetime | None
    details: dict[str, str]


@dataclass(slots=True)
class DocScan:
    """What one document showed: hits, its last timestamp, its progress lines, problems met."""

    doc: int
    name: str
    hits: list[Hit] = field(default_factory=list)
    lines: int = 0
    bytes_read: int = 0
    last_ts: datetime | None = None
    last_line_text: str = ""
    progress: list[Hit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class CompiledCatalog:
    """The catalog turned into one matcher for logs and plain regexes for the rest."""

    def __init__(self, catalog: Catalog, engine: str = "auto") -> None:
        self.signatures: tuple[Signature, ...] = catalog.signatures
        self.regexes = [
            [
                re.compile(line_bound(p), 0 if s.case_sensitive else re.IGNORECASE)
                for p in s.patterns
            ]
            for s in self.signatures
        ]
        self.pattern_owner: list[int] = []
        patterns: list[bytes] = []
        caseless: list[bool] = []
        for index, sig in enumerate(self.signatures):
            if "log" not in sig.sources:
                continue
            for pattern in sig.patterns:
                patterns.append(line_bound(pattern).encode("utf-8"))
                caseless.append(not sig.case_sensitive)
                self.pattern_owner.append(index)
        self.matcher: Matcher = build_matcher(patterns, caseless, engine)
        self.k8s_signatures = [i for i, s in enumerate(self.signatures) if "k8s" in s.sources]

    def match_line(self, signature: int, text: str) -> dict[str, str] | None:
        """Details (named groups) if the line matches the signature, else None."""
        for regex in self.regexes[signature]:
            found = regex.search(text)
            if found:
                return {k: v for k, v in found.groupdict().items() if v is not None}
        return None


class _LogScanner:
    def __init__(self, compiled: CompiledCatalog, doc_index: int, name: str, year: int) -> None:
        self.compiled = compiled
        self.result = DocScan(doc=doc_index, name=name)
        self.year = year
        self.line_base = 0
        self.per_signature: dict[int, int] = {}
        self.latest: dict[int, Hit] = {}  # the last hit of a signature seen more than the cap
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        if self.line_base == 0 and not self.result.hits:
            self._anchor_year(chunk[:65536])
        found = sorted(
            (self._line_start(chunk, end), self.compiled.pattern_owner[pid], end)
            for pid, end in self.compiled.matcher.scan(chunk)
        )
        counted, newlines = 0, 0
        for start, signature, end in found:
            newlines += chunk.count(b"\n", counted, start)
            counted = start
            self._hit(chunk, start, end, signature, self.line_base + newlines + 1)
        self.line_base += chunk.count(b"\n")
        self.tail = (
            chunk[-TAIL_BYTES:] if len(chunk) >= TAIL_BYTES else (self.tail + chunk)[-TAIL_BYTES:]
        )

    def long_line(self, limit: int) -> None:
        note = f"{self.result.name}: a line longer than {limit // 1024} KiB was scanned in pieces"
        if note not in self.result.warnings:
            self.result.warnings.append(note)

    @staticmethod
    def _line_start(chunk: bytes, end: int) -> int:
        return chunk.rfind(b"\n", 0, max(end - 1, 0)) + 1

    def _anchor_year(self, head: bytes) -> None:
        for raw in head.split(b"\n", 200)[:200]:
            year = full_year(raw.decode("utf-8", "replace"))
            if year:
                self.year = year
                return

    def _hit(self, chunk: bytes, start: int, end: int, signature: int, line_no: int) -> None:
        stop = chunk.find(b"\n", end)
        stop = len(chunk) if stop < 0 else stop
        text = (
            chunk[start : min(stop, start + MAX_TEXT * 2)].decode("utf-8", "replace").rstrip("\r")
        )
        details = self.compiled.match_line(signature, text)
        if details is None:
            return
        ts = parse_line_time(text, self.year) or self._lookback_time(chunk, start)
        hit = Hit(signature, self.result.doc, line_no, text[:MAX_TEXT], ts, details)
        if self.compiled.signatures[signature].role == "progress":
            self._progress(chunk, hit)
            return
        seen = self.per_signature.get(signature, 0)
        self.per_signature[signature] = seen + 1
        if seen < HITS_PER_SIGNATURE - 1:
            self.result.hits.append(hit)
        else:
            self.latest[signature] = hit

    def _lookback_time(self, chunk: bytes, start: int) -> datetime | None:
        position = start
        for _ in range(LOOKBACK_LINES):
            if position <= 0:
                return None
            previous = chunk.rfind(b"\n", 0, position - 1) + 1
            ts = parse_line_time(
                chunk[previous : previous + 100].decode("utf-8", "replace"), self.year
            )
            if ts is not None:
                return ts
            position = previous
        return None

    def _progress(self, chunk: bytes, first: Hit) -> None:
        """Keep the last progress lines of the chunk with their times (for hang detection)."""
        window_start = max(0, len(chunk) - TAIL_BYTES)
        region = chunk[window_start:]
        regexes = self.compiled.regexes[first.signature]
        text = region.decode("utf-8", "replace")
        lines = text.split("\n")
        base = self.line_base + chunk.count(b"\n", 0, window_start) + 1
        found: list[Hit] = []
        for offset, line in enumerate(lines):
            if any(r.search(line) for r in regexes):
                ts = parse_line_time(line, self.year)
                if ts is not None:
                    found.append(
                        Hit(first.signature, first.doc, base + offset, line[:MAX_TEXT], ts, {})
                    )
        progress = self.result.progress
        progress.extend(found or [first])
        del progress[:-64]

    def finish(self) -> DocScan:
        self.result.lines = self.line_base
        self.result.hits.extend(self.latest.values())
        for raw in reversed(self.tail.split(b"\n")[-40:]):
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            if not self.result.last_line_text:
                self.result.last_line_text = text[:MAX_TEXT]
            ts = parse_line_time(text, self.year)
            if ts is not None:
                self.result.last_ts = ts
                break
        return self.result


def scan_log(compiled: CompiledCatalog, document: Document, doc_index: int, year: int) -> DocScan:
    """Scan a log document chunk by chunk; a read error mid-way keeps what was read."""
    scanner = _LogScanner(compiled, doc_index, document.name, year)
    carry = b""
    with document.open() as stream:
        while True:
            try:
                block = stream.read(CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                scanner.result.warnings.append(
                    f"{document.name}: read stopped after {scanner.result.bytes_read} bytes "
                    f"({exc}); diagnosed what was readable"
                )
                block = b""
            if not block:
                if carry:
                    scanner.feed(carry if carry.endswith(b"\n") else carry + b"\n")
                break
            scanner.result.bytes_read += len(block)
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0 and len(data) <= MAX_LINE:
                carry = data
                continue
            if cut < 0:
                scanner.long_line(MAX_LINE)
                scanner.feed(data)
                carry = b""
                continue
            scanner.feed(data[: cut + 1])
            carry = data[cut + 1 :]
    return scanner.finish()


def scan_facts(compiled: CompiledCatalog, document: Document, doc_index: int) -> DocScan:
    """Match Kubernetes fact lines against the signatures that apply to them."""
    result = DocScan(doc=doc_index, name=document.name, lines=len(document.facts))
    for fact in document.facts:
        for signature in compiled.k8s_signatures:
            details = compiled.match_line(signature, fact.text)
            if details is not None and compiled.signatures[signature].role != "progress":
                result.hits.append(
                    Hit(signature, doc_index, fact.line, fact.text, fact.ts, details)
                )
        if fact.ts and (result.last_ts is None or fact.ts > result.last_ts):
            result.last_ts = fact.ts
    return result
