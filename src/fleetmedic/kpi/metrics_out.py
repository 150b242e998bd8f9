"""fleetmedic's KPIs and controller state as Prometheus metrics: one Collector, read on scrape.

Why a Collector and not gauges set by a loop: the numbers live in two files other processes write
(the DuckDB store, the SQLite control store), so the truth is whatever those files say when
Prometheus asks. Why caching: a KPI run is a handful of queries over the whole store (seconds on
millions of jobs, docs/bench-kpi.md) while Prometheus scrapes every 15-60 s, so the KPIs are
recomputed only when the store file changed and the last run is older than ``kpi_ttl`` (or
after ``kpi_max_age`` anyway: running jobs' hours grow with the clock); the
control store is a few indexed SQLite reads and is cached for ``control_ttl`` only.

A store that cannot be opened (missing, locked by a writer, newer schema) is not an error on the
scrape: the last values are served, ``fleetmedic_store_up`` drops to 0 and
``fleetmedic_collect_errors_total`` counts it, so the dashboard shows staleness instead of a gap.

Use it anywhere a registry is: ``fleetmedic metrics`` serves it alone, and a web app can mount it::

    registry = CollectorRegistry()
    registry.register(FleetCollector(db_path, control_path))
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fleetmedic.heal.state import SWITCHES
from fleetmedic.kpi.suite import compute_kpis
from fleetmedic.kpi.tables import STATUSES
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.model.taxonomy import CATEGORIES
from fleetmedic.store import Store

Identity = tuple[int, int, int]
QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))

METRIC_NAMES: tuple[str, ...] = (
    "fleetmedic_goodput_ratio",
    "fleetmedic_ettr_ratio",
    "fleetmedic_badput_gpu_hours",
    "fleetmedic_gpu_hours",
    "fleetmedic_jobs",
    "fleetmedic_failures",
    "fleetmedic_gpu_hours_lost",
    "fleetmedic_mttr_hours",
    "fleetmedic_queue_wait_hours",
    "fleetmedic_allocation_ratio",
    "fleetmedic_gpu_usage_mean",
    "fleetmedic_gpus_reporting",
    "fleetmedic_signal_events_24h",
    "fleetmedic_kpi_age_seconds",
    "fleetmedic_kpi_compute_seconds",
    "fleetmedic_store_up",
    "fleetmedic_actions",
    "fleetmedic_actions_awaiting_approval",
    "fleetmedic_heal_switch_engaged",
    "fleetmedic_control_up",
    "fleetmedic_collect_errors",
)
"""Every metric family the collector can yield (a test keeps this and ``collect`` in step)."""


def _identity(path: Path) -> Identity:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_ino, info.st_mtime_ns, info.st_size)


@dataclass
class _Snapshot:
    """What the last successful read gave, and when."""

    values: dict[str, Any] = field(default_factory=dict)
    identity: Identity = (0, 0, 0)
    at: float | None = None
    seconds: float = 0.0
    up: bool = False


_USAGE_SQL = """
SELECT metric, avg(value), count(DISTINCT node_id || '/' || gpu)
FROM gpu_usage WHERE ts >= ? GROUP BY metric ORDER BY metric
"""
_SIGNALS_SQL = """
SELECT reason, count(*) FROM events WHERE source = 'prometheus' AND ts >= ?
GROUP BY reason ORDER BY reason
"""


def read_store(db: Path, now: datetime, usage_window: timedelta) -> dict[str, Any]:
    """KPIs, recent GPU usage and recent Prometheus signals from the store, read-only."""
    with Store(db, read_only=True) as store:
        kpis = compute_kpis(store)
        since = (now - usage_window).astimezone(UTC).replace(tzinfo=None)
        day = (now - timedelta(hours=24)).astimezone(UTC).replace(tzinfo=None)
        usage = store.con.execute(_USAGE_SQL, [since]).fetchall()
        signals = store.con.execute(_SIGNALS_SQL, [day]).fetchall()
    return {"kpis": kpis, "usage": usage, "signals": signals}


def read_control(control: Path) -> dict[str, Any]:
    """Actions per kind and state, approvals waiting, and the switches, from the control store.

    Opened read-only (``mode=ro``): a scrape must never create, migrate or lock the file the
    controller writes.
    """
    uri = f"file:{control}?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=2.0)
    try:
        actions = con.execute(
            "SELECT kind, state, count(*) FROM actions GROUP BY kind, state ORDER BY kind, state"
        ).fetchall()
        waiting = con.execute(
            "SELECT count(*) FROM actions WHERE mode = 'approval' AND state = 'proposed'"
        ).fetchone()
        switches = dict(con.execute("SELECT name, engaged FROM switches").fetchall())
    finally:
        con.close()
    return {
        "actions": actions,
        "waiting": int(waiting[0]) if waiting else 0,
        "switches": {name: bool(switches.get(name)) for name in SWITCHES},
    }


class FleetCollector:
    """A prometheus_client collector over a store and a control store (either may be ``None``)."""

    def __init__(
        self,
        db: Path | None,
        control: Path | None,
        *,
        kpi_ttl: float = 60.0,
        kpi_max_age: float = 900.0,
        control_ttl: float = 5.0,
        usage_window: timedelta = timedelta(hours=1),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db, self.control = db, control
        self.kpi_ttl, self.kpi_max_age, self.control_ttl = kpi_ttl, kpi_max_age, control_ttl
        self.usage_window = usage_window
        self.clock, self.now = clock, now
        self.errors: dict[str, int] = {"store": 0, "control": 0}
        self.last_error: dict[str, str] = {}
        self._store = _Snapshot()
        self._control = _Snapshot()
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        """Nothing at registration: describing would mean reading both stores up front."""
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # concurrent scrapes share one refresh
            self._refresh_store()
            self._refresh_control()
        yield from self._kpi_metrics(self._store.values.get("kpis") or {})
        yield from self._usage_metrics(self._store.values)
        yield from self._control_metrics(self._control.values)
        yield from self._health()

    # reading -----------------------------------------------------------------------------
    def _refresh_store(self) -> None:
        if self.db is None:
            return
        snap, identity = self._store, _identity(self.db)
        if snap.at is not None and snap.up:
            age = self.clock() - snap.at
            changed = identity != snap.identity
            if age < self.kpi_ttl or (not changed and age < self.kpi_max_age):
                return
        started = self.clock()
        try:
            values = read_store(self.db, self.now(), self.usage_window)
        except (FleetmedicError, OSError) as exc:
            self._failed("store", str(exc), snap)
            return
        except Exception as exc:  # DuckDB's errors (a lock held by a writer) have their own tree
            self._failed("store", f"{type(exc).__name__}: {exc}", snap)
            return
        self._store = _Snapshot(values, identity, self.clock(), self.clock() - started, True)

    def _refresh_control(self) -> None:
        if self.control is None:
            return
        snap = self._control
        if snap.at is not None and snap.up and self.clock() - snap.at < self.control_ttl:
            return
        if not self.control.is_file():
            self._failed("control", f"no control store at {self.control}", snap)
            return
        try:
            values = read_control(self.control)
        except sqlite3.Error as exc:
            self._failed("control", str(exc), snap)
            return
        self._control = _Snapshot(values, (0, 0, 0), self.clock(), 0.0, True)

    def _failed(self, which: str, message: str, snap: _Snapshot) -> None:
        self.errors[which] += 1
        self.last_error[which] = " ".join(message.split())
        snap.up = False

    # metrics -----------------------------------------------------------------------------
    def _kpi_metrics(self, kpis: dict[str, Any]) -> Iterator[Metric]:
        yield _gauge(
            "fleetmedic_goodput_ratio", "Productive share of GPU-hours.", kpis.get("goodput")
        )
        yield _gauge("fleetmedic_ettr_ratio", "Effective training time ratio.", kpis.get("ettr"))
        badput = (kpis.get("badput") or {}).get("gpu_hours")
        yield _gauge("fleetmedic_badput_gpu_hours", "GPU-hours lost to interruptions.", badput)
        yield _gauge(
            "fleetmedic_mttr_hours", "Mean time to recover from a failure.", kpis.get("mttr_hours")
        )
        capacity = kpis.get("capacity") or {}
        yield _gauge(
            "fleetmedic_allocation_ratio",
            "Allocated share of the fleet's GPU-hours.",
            capacity.get("allocation_rate"),
        )
        yield _labelled(
            "fleetmedic_jobs",
            "Jobs by final status.",
            "status",
            {s: (kpis.get("jobs") or {}).get("count_by_status", {}).get(s, 0) for s in STATUSES}
            if kpis
            else {},
        )
        hours = (kpis.get("gpu_hours") or {}).get("hours_by_status", {})
        yield _labelled(
            "fleetmedic_gpu_hours", "GPU-hours by the job's final status.", "status", hours
        )
        yield from self._failure_metrics(kpis)
        waits = kpis.get("queue_wait_hours") or {}
        yield _labelled(
            "fleetmedic_queue_wait_hours",
            "Queue wait of jobs started in the period.",
            "quantile",
            {q: waits.get(key) for key, q in QUANTILES},
        )

    def _failure_metrics(self, kpis: dict[str, Any]) -> Iterator[Metric]:
        causes = (kpis.get("failures") or {}).get("by_category") or {}
        count = GaugeMetricFamily(
            "fleetmedic_failures", "Failures by root cause.", labels=["cause", "owner"]
        )
        lost = GaugeMetricFamily(
            "fleetmedic_gpu_hours_lost",
            "GPU-hours lost by root cause (since the last checkpoint).",
            labels=["cause", "owner"],
        )
        for cause, entry in sorted(causes.items()):
            owner = _owner(cause)
            count.add_metric([cause, owner], float(entry.get("count") or 0))
            lost.add_metric([cause, owner], float(entry.get("gpu_hours_lost") or 0))
        yield count
        yield lost

    def _usage_metrics(self, values: dict[str, Any]) -> Iterator[Metric]:
        usage = values.get("usage") or []
        mean = GaugeMetricFamily(
            "fleetmedic_gpu_usage_mean",
            "Mean over GPUs and the last hour (ratios 0..1, watts, °C).",
            labels=["metric"],
        )
        gpus = GaugeMetricFamily(
            "fleetmedic_gpus_reporting", "GPUs with samples in the last hour.", labels=["metric"]
        )
        for metric, avg, n in usage:
            mean.add_metric([metric], float(avg))
            gpus.add_metric([metric], float(n))
        yield mean
        yield gpus
        signals = GaugeMetricFamily(
            "fleetmedic_signal_events_24h",
            "Hardware and node events read from Prometheus in the last 24 h.",
            labels=["reason"],
        )
        for reason, n in values.get("signals") or []:
            signals.add_metric([reason], float(n))
        yield signals

    def _control_metrics(self, values: dict[str, Any]) -> Iterator[Metric]:
        actions = GaugeMetricFamily(
            "fleetmedic_actions",
            "Actions in the control store by kind and state.",
            labels=["kind", "state"],
        )
        for kind, state, n in values.get("actions") or []:
            actions.add_metric([kind, state], float(n))
        yield actions
        yield _gauge(
            "fleetmedic_actions_awaiting_approval",
            "Approval-mode actions waiting for a person.",
            values.get("waiting") if values else None,
        )
        switches = GaugeMetricFamily(
            "fleetmedic_heal_switch_engaged",
            "1 when the kill switch or the circuit breaker is engaged.",
            labels=["switch"],
        )
        for name, on in (values.get("switches") or {}).items():
            switches.add_metric([name], 1.0 if on else 0.0)
        yield switches

    def _health(self) -> Iterator[Metric]:
        store, control = self._store, self._control
        yield _gauge(
            "fleetmedic_store_up", "1 when the last read of the store worked.", float(store.up)
        )
        yield _gauge(
            "fleetmedic_control_up",
            "1 when the last read of the control store worked.",
            float(control.up),
        )
        age = None if store.at is None else self.clock() - store.at
        yield _gauge("fleetmedic_kpi_age_seconds", "Age of the KPIs served.", age)
        yield _gauge(
            "fleetmedic_kpi_compute_seconds",
            "Time the last KPI read took.",
            store.seconds if store.at is not None else None,
        )
        errors = CounterMetricFamily(
            "fleetmedic_collect_errors", "Failed reads of the stores.", labels=["store"]
        )
        for which, n in self.errors.items():
            errors.add_metric([which], float(n))
        yield errors


def _owner(cause: str) -> str:
    entry = CATEGORIES.get(cause)
    return "unknown" if entry is None or entry.owner == "—" else entry.owner


def _gauge(name: str, text: str, value: Any) -> GaugeMetricFamily:
    """A gauge with one sample, or none when the value is unknown (``null`` in the KPIs)."""
    gauge = GaugeMetricFamily(name, text)
    if value is not None:
        gauge.add_metric([], float(value))
    return gauge


def _labelled(name: str, text: str, label: str, values: dict[str, Any]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text, labels=[label])
    for key, value in sorted(values.items()):
        if value is not None:
            gauge.add_metric([key], float(value))
    return gauge
