"""Stream one document through the compiled catalog and collect hits.

A log is read in chunks of a few MiB cut at line ends; the matcher scans each chunk once, and only
lines that match are decoded and looked at in Python. Memory is bounded by the chunk size whatever
the file size or line length (a line longer than ``MAX_LINE`` is scanned in pieces).
"""

from __future__ import annotations

import re
import zlib
from bisect import bisect_right
from collections.abc import Iterator
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
PROGRESS_KEPT = 64  # progress lines kept per document (the newest)


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
        self.excludes = [
            [re.compile(p, 0 if s.case_sensitive else re.IGNORECASE) for p in s.exclude]
            for s in self.signatures
        ]
        self._byte_regexes: dict[int, list[re.Pattern[bytes]]] = {}
        # Progress signatures (steps, progress bars) match most lines of a training log: in the
        # main matcher they halve Hyperscan's speed. Only the newest progress lines of a chunk are
        # kept, so they are looked for in the window at its end, every match in one pass; the
        # whole chunk is searched for them (first match of each pattern, as for every other
        # signature) only when that window shows none.
        progress = [
            i for i, s in enumerate(self.signatures) if s.role == "progress" and "log" in s.sources
        ]
        self.pattern_owner, self.matcher = self._matcher(
            [i for i, s in enumerate(self.signatures) if "log" in s.sources and i not in progress],
            engine,
        )
        self.progress_owner, self.progress_matcher = self._matcher(progress, engine)
        self.window_matchers: dict[int, Matcher] = {
            i: self._matcher([i], engine, every_match=True)[1] for i in progress
        }
        self.k8s_signatures = [i for i, s in enumerate(self.signatures) if "k8s" in s.sources]

    def _matcher(
        self, signatures: list[int], engine: str, *, every_match: bool = False
    ) -> tuple[list[int], Matcher]:
        """One matcher over the patterns of ``signatures``, and the signature of each pattern."""
        owner: list[int] = []
        patterns: list[bytes] = []
        caseless: list[bool] = []
        for index in signatures:
            sig = self.signatures[index]
            for pattern in sig.patterns:
                patterns.append(line_bound(pattern).encode("utf-8"))
                caseless.append(not sig.case_sensitive)
                owner.append(index)
        if not patterns:  # Hyperscan refuses an empty database; nothing to find anyway
            engine = "regex"
        return owner, build_matcher(patterns, caseless, engine, every_match=every_match)

    def matches_from(
        self, signature: int, chunk: bytes, position: int
    ) -> Iterator[tuple[int, int]]:
        """(line start, match end) of the signature's matches at or after ``position``, one per
        line, in order. Each pattern's search only moves forward, so walking a whole chunk costs
        one pass per pattern (searching again from every line made a chunk full of look-alikes
        quadratic: minutes for half a megabyte)."""
        if signature not in self._byte_regexes:
            sig = self.signatures[signature]
            flags = re.MULTILINE | (0 if sig.case_sensitive else re.IGNORECASE)
            self._byte_regexes[signature] = [
                re.compile(line_bound(p).encode("utf-8"), flags) for p in sig.patterns
            ]
        regexes = self._byte_regexes[signature]
        pending = [r.search(chunk, position) for r in regexes]
        while True:
            ends = [m.end() for m in pending if m is not None]
            if not ends:
                return
            end = min(ends)
            yield chunk.rfind(b"\n", 0, max(end - 1, 0)) + 1, end
            stop = chunk.find(b"\n", end)
            if stop < 0:
                return
            for i, m in enumerate(pending):
                if m is not None and m.start() <= stop:
                    pending[i] = regexes[i].search(chunk, stop)

    def match_line(self, signature: int, text: str) -> dict[str, str] | None:
        """Details (named groups) if the line matches the signature, else None."""
        if any(x.search(text) for x in self.excludes[signature]):
            return None
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
        self.rejected: list[tuple[int, int]] = []  # (signature, offset) of look-alike matches
        self.accepted: dict[int, set[int]] = {}  # line starts hit per signature, this chunk
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
        progress: dict[int, list[Hit]] = {}  # progress hits of this chunk, per signature
        for start, signature, end in found:
            newlines += chunk.count(b"\n", counted, start)
            counted = start
            self._hit(chunk, start, end, signature, self.line_base + newlines + 1, progress)
        total = newlines + chunk.count(b"\n", counted)
        windows = {sig: self._window(chunk, sig, total) for sig in self.compiled.window_matchers}
        if not all(windows.values()):
            self._first_progress(
                chunk, {sig for sig, kept in windows.items() if not kept}, progress
            )
        self._retry_rejected(chunk, progress)
        for signature, kept in windows.items():
            if kept or progress.get(signature):
                self.result.progress.extend(kept or progress[signature])
                del self.result.progress[:-PROGRESS_KEPT]
        self.line_base += total
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

    def _hit(
        self,
        chunk: bytes,
        start: int,
        end: int,
        signature: int,
        line_no: int,
        progress: dict[int, list[Hit]],
    ) -> bool:
        """Record the hit of ``signature`` on the line at ``start``; False for a look-alike."""
        if start in self.accepted.get(signature, ()):
            return True  # another pattern of the signature on the same line: one hit per line
        stop = chunk.find(b"\n", end)
        stop = len(chunk) if stop < 0 else stop
        # On a very long line the match can lie past the part of the line kept as text: keep
        # the part around the match instead (its time still comes from the start of the line).
        first = start if end <= start + MAX_TEXT * 2 else end - MAX_TEXT // 2
        text = (
            chunk[first : min(stop, first + MAX_TEXT * 2)].decode("utf-8", "replace").rstrip("\r")
        )
        details = self.compiled.match_line(signature, text)
        if details is None:
            self.rejected.append((signature, stop))
            return False
        self.accepted.setdefault(signature, set()).add(start)
        head = text if first == start else chunk[start : start + 200].decode("utf-8", "replace")
        ts = parse_line_time(head, self.year) or self._lookback_time(chunk, start)
        hit = Hit(signature, self.result.doc, line_no, text[:MAX_TEXT], ts, details)
        if self.compiled.signatures[signature].role == "progress":
            progress.setdefault(signature, []).append(hit)
            return True
        seen = self.per_signature.get(signature, 0)
        self.per_signature[signature] = seen + 1
        if seen < HITS_PER_SIGNATURE - 1:
            self.result.hits.append(hit)
        else:
            self.latest[signature] = hit
        return True

    def _retry_rejected(self, chunk: bytes, progress: dict[int, list[Hit]]) -> None:
        """A signature's first match in a chunk was a benign look-alike (an ``exclude`` line):
        the matcher reports one match per chunk, so search on for the next real one. One walk per
        signature, from its earliest look-alike; it ends at the first real match, or at a line
        already taken for the signature in this chunk (no duplicate hits)."""
        earliest: dict[int, int] = {}
        for signature, position in self.rejected:
            earliest[signature] = min(position, earliest.get(signature, position))
        self.rejected.clear()
        for signature, position in earliest.items():
            taken = self.accepted.get(signature, set())
            counted, newlines = 0, 0
            for start, end in self.compiled.matches_from(signature, chunk, position):
                if start in taken:
                    break
                newlines += chunk.count(b"\n", counted, start)
                counted = start
                line_no = self.line_base + newlines + 1
                if self._hit(chunk, start, end, signature, line_no, progress):
                    break
            self.rejected.clear()
        self.accepted.clear()

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

    def _first_progress(
        self, chunk: bytes, signatures: set[int], progress: dict[int, list[Hit]]
    ) -> None:
        """The first progress hit of each pattern of ``signatures`` in the chunk."""
        owner = self.compiled.progress_owner
        found = sorted(
            (self._line_start(chunk, end), owner[pid], end)
            for pid, end in self.compiled.progress_matcher.scan(chunk)
            if owner[pid] in signatures
        )
        counted, newlines = 0, 0
        for start, signature, end in found:
            newlines += chunk.count(b"\n", counted, start)
            counted = start
            self._hit(chunk, start, end, signature, self.line_base + newlines + 1, progress)

    def _window(self, chunk: bytes, signature: int, chunk_lines: int) -> list[Hit]:
        """The newest progress lines at the end of the chunk that carry a time (for hang
        detection), at most ``PROGRESS_KEPT``, oldest first.

        The signature's matcher finds the candidate lines of the window in one pass; each is
        confirmed as every hit is: by the signature's patterns, and not by its exclusions ("no
        progress since last step 1200" is not progress).
        """
        window_start = max(0, len(chunk) - TAIL_BYTES)
        region = chunk[window_start:]
        line_starts = [0]
        position = region.find(b"\n")
        while position >= 0:
            line_starts.append(position + 1)
            position = region.find(b"\n", position + 1)
        matched: dict[int, int] = {}  # line index -> a pattern that matched in it
        for pattern, end in self.compiled.window_matchers[signature].scan(region):
            matched.setdefault(bisect_right(line_starts, max(end - 1, 0)) - 1, pattern)
        regexes = self.compiled.regexes[signature]
        excludes = self.compiled.excludes[signature]
        base = self.line_base + chunk_lines - (len(line_starts) - 1) + 1
        kept: list[Hit] = []
        for index in sorted(matched, reverse=True):
            stop = line_starts[index + 1] - 1 if index + 1 < len(line_starts) else len(region)
            line = region[line_starts[index] : stop].decode("utf-8", "replace")
            if not (regexes[matched[index]].search(line) or any(r.search(line) for r in regexes)):
                continue
            ts = parse_line_time(line, self.year)
            if ts is None or any(x.search(line) for x in excludes):
                continue
            kept.append(Hit(signature, self.result.doc, base + index, line[:MAX_TEXT], ts, {}))
            if len(kept) == PROGRESS_KEPT:
                break
        kept.reverse()
        return kept

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
