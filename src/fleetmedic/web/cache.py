"""Computed answers kept for a while, so a dashboard refresh does not rerun a 10-second KPI suite.

Each entry is keyed by what was asked (e.g. ``("kpi", "30d")``) and remembers the identity of the
store file it was computed from. A request gets:

* ``hit``: the entry is younger than the TTL and the file is unchanged;
* ``stale``: the entry is older, or the file changed. The old answer is returned at once and one
  background thread recomputes it (stale-while-revalidate): a refresh never waits 10 s;
* ``miss``: nothing yet. The first caller computes; callers arriving meanwhile wait for that same
  computation instead of starting their own (single flight), so a burst of cold requests costs
  one KPI run, not one per request.

A TTL of 0 turns caching off (every call computes): the benchmark's reference.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["hit", "stale", "miss", "off"]


@dataclass(frozen=True)
class Cached:
    value: Any
    state: State
    age_seconds: float
    compute_seconds: float


@dataclass(frozen=True)
class _Entry:
    value: Any
    identity: Hashable
    at: float
    seconds: float


class ResultCache:
    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, Future[_Entry]] = {}

    def lookup(
        self, key: Hashable, identity: Hashable, compute: Callable[[], Any]
    ) -> Cached | None:
        """A held answer (hit, or stale with a refresh started) without ever blocking; None on a
        miss, which the caller then computes with :meth:`get` off the event loop."""
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            return self._held(key, entry, identity, compute)

    def _held(
        self, key: Hashable, entry: _Entry, identity: Hashable, compute: Callable[[], Any]
    ) -> Cached:
        """Answer from a held entry, starting its refresh when stale (caller holds the lock)."""
        self._entries.move_to_end(key)
        fresh = entry.identity == identity and self.clock() - entry.at < self.ttl
        if not fresh:
            self._start(key, identity, compute, background=True)
        state: State = "hit" if fresh else "stale"
        return Cached(entry.value, state, self.clock() - entry.at, entry.seconds)

    def get(self, key: Hashable, identity: Hashable, compute: Callable[[], Any]) -> Cached:
        """The answer for ``key`` computed from the store whose identity is ``identity``."""
        if self.ttl <= 0:
            started = self.clock()
            value = compute()
            return Cached(value, "off", 0.0, self.clock() - started)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                return self._held(key, entry, identity, compute)
            flight, mine = self._start(key, identity, compute, background=False)
        if mine:
            self._run(key, identity, compute, flight)
        done = flight.result()
        return Cached(done.value, "miss", 0.0, done.seconds)

    def peek(self, key: Hashable) -> Any | None:
        """The value held for ``key`` whatever its age, without computing (for /metrics)."""
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry.value

    def _start(
        self, key: Hashable, identity: Hashable, compute: Callable[[], Any], *, background: bool
    ) -> tuple[Future[_Entry], bool]:
        """Join the computation running for ``key`` or register a new one (caller holds the lock)."""
        running = self._flights.get(key)
        if running is not None:
            return running, False
        flight: Future[_Entry] = Future()
        self._flights[key] = flight
        if background:
            threading.Thread(
                target=self._run, args=(key, identity, compute, flight), daemon=True
            ).start()
        return flight, True

    def _run(
        self, key: Hashable, identity: Hashable, compute: Callable[[], Any], flight: Future[_Entry]
    ) -> None:
        started = self.clock()
        try:
            value = compute()
        except BaseException as exc:  # handed to every waiter, who re-raises it
            with self._lock:
                self._flights.pop(key, None)
            flight.set_exception(exc)
            return
        entry = _Entry(value, identity, self.clock(), self.clock() - started)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self._flights.pop(key, None)
        flight.set_result(entry)
