"""The expensive answers (KPI suite, ranking, lemon test, node health), computed once and cached.

Each is keyed by what was asked and by the store file's identity (see cache.py), so a new import
shows up at the next request after the file changes, and a refresh of an unchanged store costs a
dictionary look-up. :meth:`Analytics.warm` starts the default period's KPIs at start-up, in the
background, so the first visitor of a large store does not wait for them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ibis
from fastapi.concurrency import run_in_threadpool

from fleetmedic.heal.lemons import LemonRow, find_lemons
from fleetmedic.kpi import compute_kpis
from fleetmedic.kpi.priorities import priorities_report
from fleetmedic.kpi.priorities_model import PriorityReport, PriorityRow
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.web import overview, queries
from fleetmedic.web.cache import Cached, ResultCache
from fleetmedic.web.periods import DEFAULT_PERIOD, Bounds, PeriodName, last_week, resolve
from fleetmedic.web.stores import StoreReader

log = logging.getLogger("fleetmedic.web")

MAX_RANKED = 100
"""Causes ranked and kept per period; ``limit`` slices this list."""


class Analytics:
    def __init__(self, reader: StoreReader, cache: ResultCache) -> None:
        self.reader = reader
        self.cache = cache

    def _compute(self, compute: Callable[[Any], Any]) -> Callable[[], Any]:
        """``compute(backend)`` on a cursor of its own, as a zero-argument job for the cache."""

        def run() -> Any:
            with self.reader.cursor() as con:
                return compute(ibis.duckdb.from_connection(con))

        return run

    def _cached(self, key: tuple[Any, ...], compute: Callable[[Any], Any]) -> Cached:
        return self.cache.get(key, self.reader.identity(), self._compute(compute))

    async def answer(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Cached:
        """For async handlers: a held answer straight away, a missing one computed in a thread,
        so the event loop never waits on a KPI run and a cached answer costs no thread hop."""
        identity = self.reader.identity()
        found = self.cache.lookup(key, identity, build)
        if found is None:
            found = await run_in_threadpool(self.cache.get, key, identity, build)
        return found

    async def kpi_json(
        self, since: datetime | None, until: datetime | None, by: str | None
    ) -> Cached:
        """``fleetmedic kpi --format json`` for the same arguments, as JSON bytes."""
        return await self.answer(
            ("kpi", since, until, by),
            self._compute(lambda backend: to_json(compute_kpis(backend, since, until, by))),
        )

    def _period_compute(self, name: PeriodName) -> Callable[[Any], dict[str, Any]]:
        def compute(backend: Any) -> dict[str, Any]:
            bounds = resolve(backend, name)
            current = compute_kpis(backend, bounds.since, bounds.until, by="week")
            previous = None
            if bounds.previous is not None:
                previous = compute_kpis(backend, *bounds.previous)
            with self.reader.cursor() as con:
                incidents = queries.open_incidents(con)
            payload = overview.build(bounds, current, previous, incidents)
            return {"bounds": bounds, "current": current, "overview": to_json(payload)}

        return compute

    def period(self, name: PeriodName) -> Cached:
        """The suite for a named period (weekly groups included) and for the period before,
        with the Overview's payload serialised once per computation."""
        return self._cached(("period", name.value), self._period_compute(name))

    async def overview_json(self, name: PeriodName) -> Cached:
        found = await self.answer(("period", name.value), self._compute(self._period_compute(name)))
        return Cached(
            found.value["overview"], found.state, found.age_seconds, found.compute_seconds
        )

    def priorities(self, name: PeriodName) -> tuple[PriorityReport, Cached]:
        def compute(backend: Any) -> PriorityReport:
            bounds = resolve(backend, name)
            return priorities_report(backend, bounds.since, bounds.until, MAX_RANKED)

        found = self._cached(("priorities", name.value), compute)
        report: PriorityReport = found.value
        return report, found

    def new_causes(self) -> list[PriorityRow]:
        """Causes that lost GPU-hours in the last seven days of data and none the week before."""

        def compute(backend: Any) -> list[PriorityRow]:
            since, until = last_week(resolve(backend, PeriodName.d7))
            report = priorities_report(backend, since, until, MAX_RANKED)
            return [row for row in report.rows if row.trend.direction == "new"]

        rows: list[PriorityRow] = self._cached(("new_causes",), compute).value
        return rows

    def bounds(self, name: PeriodName) -> Bounds:
        found: Bounds = self._cached(("bounds", name.value), lambda b: resolve(b, name)).value
        return found

    def lemons(self) -> list[LemonRow]:
        def compute(_: Any) -> list[LemonRow]:
            with self.reader.exclusive() as store:
                return find_lemons(store)

        rows: list[LemonRow] = self._cached(("lemons",), compute).value
        return rows

    def nodes(self) -> list[dict[str, Any]]:
        """Every node with its failure count, lemon flag and health word."""

        def compute(_: Any) -> list[dict[str, Any]]:
            with self.reader.cursor() as con:
                rows = queries.node_rows(con)
            flagged = {row.node for row in self.lemons() if row.flagged}
            for row in rows:
                row["lemon"] = row["node_id"] in flagged
                row["health"] = health(row)
            return rows

        rows: list[dict[str, Any]] = self._cached(("nodes",), compute).value
        return rows

    def warm(self) -> None:
        """Compute the default period in the background now: the Overview's first visit is fast."""
        threading.Thread(target=self._warm, daemon=True, name="fleetmedic-warm").start()

    def _warm(self) -> None:
        try:
            self.period(DEFAULT_PERIOD)
        except FleetmedicError as exc:  # no store yet, or not a fleetmedic one: requests say so
            log.warning("warm-up skipped: %s", exc)


def to_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as FastAPI's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def health(row: dict[str, Any]) -> str:
    """One word for the fleet map, worst first: what an operator should look at."""
    if row.get("cordoned"):
        return "cordoned"
    if str(row.get("ready") or "").lower() == "false":
        return "not_ready"
    if row.get("lemon"):
        return "lemon"
    if int(row.get("failures") or 0) > 0:
        return "failing"
    return "healthy"
