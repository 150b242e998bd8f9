"""Multi-pattern matching over chunks of a log.

Hyperscan compiles every signature's patterns into one automaton and scans a chunk once, at
gigabytes per second, whatever the number of patterns; Python only sees the few matches. Each
pattern reports at most its first match per chunk (``HS_FLAG_SINGLEMATCH``), which bounds the work
on a log that repeats one warning a million times. ``RegexMatcher`` is the portable fallback with the
same results (tested against each other), used where Hyperscan has no wheel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

hyperscan: ModuleType | None
try:  # Hyperscan ships wheels for x86-64 Linux/macOS only.
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None


class Matcher(Protocol):
    def scan(self, chunk: bytes) -> list[tuple[int, int]]:
        """(pattern index, end offset) of the first match of each pattern that matches; of every
        match when built with ``every_match`` (with Hyperscan: every end offset)."""
        ...


class HyperscanMatcher:
    def __init__(
        self, patterns: Sequence[bytes], caseless: Sequence[bool], *, every_match: bool = False
    ) -> None:
        if hyperscan is None:
            raise RuntimeError("hyperscan is not installed")
        base = hyperscan.HS_FLAG_MULTILINE | (0 if every_match else hyperscan.HS_FLAG_SINGLEMATCH)
        flags = [base | (hyperscan.HS_FLAG_CASELESS if c else 0) for c in caseless]
        self._db = hyperscan.Database()
        self._db.compile(
            expressions=list(patterns),
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=flags,
        )
        self._scratch = hyperscan.Scratch(self._db)

    def scan(self, chunk: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []

        def on_match(pattern_id: int, start: int, end: int, flags: int, context: object) -> None:
            hits.append((pattern_id, end))

        self._db.scan(chunk, match_event_handler=on_match, scratch=self._scratch)
        return hits


class RegexMatcher:
    def __init__(
        self, patterns: Sequence[bytes], caseless: Sequence[bool], *, every_match: bool = False
    ) -> None:
        self._compiled = [
            re.compile(p, re.MULTILINE | (re.IGNORECASE if c else 0))
            for p, c in zip(patterns, caseless, strict=True)
        ]
        self._every_match = every_match

    def scan(self, chunk: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []
        for index, regex in enumerate(self._compiled):
            if self._every_match:
                hits.extend((index, match.end()) for match in regex.finditer(chunk))
                continue
            match = regex.search(chunk)
            if match:
                hits.append((index, match.end()))
        return hits


def build_matcher(
    patterns: Sequence[bytes],
    caseless: Sequence[bool],
    engine: str = "auto",
    *,
    every_match: bool = False,
) -> Matcher:
    """The fastest matcher available; ``engine`` forces ``hyperscan`` or ``regex`` (tests, benches).
    ``every_match`` reports every match, not only each pattern's first (for small windows)."""
    if engine == "regex" or (engine == "auto" and hyperscan is None):
        return RegexMatcher(patterns, caseless, every_match=every_match)
    return HyperscanMatcher(patterns, caseless, every_match=every_match)
