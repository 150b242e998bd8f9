"""The Prometheus source: DCGM and node-exporter series in, node/GPU events and utilization out.

For each signal of the catalog (``prometheus_catalog.py``) it runs the query and reads the series:

* an **event** signal's series is a fault. It is reported once, when it first appears (or its value
  changes, e.g. a new Xid code): as a store event (``events``, source ``prometheus``) and, when the
  signal names a taxonomy category, as a heal event in the JSON-lines shape ``heal run`` reads
  (a node-only diagnosis: the controller counts it against the node, docs/heal-pipeline.md).
  Why edge-triggered: the queries look back over a window (``changes(...[10m])``), so the same
  fault is in every poll for ten minutes; one fault must be one event.
* a **usage** signal's points become ``gpu_usage`` rows (one per GPU, metric and time).

A failed query (server error, bad JSON, timeout) is one line in :attr:`PollResult.errors` and a
count, and the other signals still run: one broken rule must not blind the rest. Its edge state is
kept, so a fault already reported is not reported again when the query recovers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fleetmedic.model.records import Event
from fleetmedic.model.taxonomy import category
from fleetmedic.sources.prometheus_api import PrometheusAPI, PrometheusError, QueryResult, Series
from fleetmedic.sources.prometheus_catalog import GPU_LABELS, PLACEHOLDER, Catalog, Signal
from fleetmedic.store.db import Store
from fleetmedic.store.writer import GpuUsageRow, Writer, event_id, write_gpu_usage

SOURCE = "prometheus"
Key = tuple[str, str, float | None]
"""What makes a fault "the same" across polls: the node, the GPU, and (optionally) the value."""


@dataclass
class PollResult:
    """What one poll found; ``counts`` has ``<signal>.series``, ``.events``, ``.skipped``, ``.errors``."""

    events: list[Event] = field(default_factory=list)
    heal: list[dict[str, Any]] = field(default_factory=list)
    usage: list[GpuUsageRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def extend(self, other: PollResult) -> None:
        self.events += other.events
        self.heal += other.heal
        self.usage += other.usage
        self.errors += other.errors
        self.counts.update(other.counts)


@dataclass(frozen=True, slots=True)
class Where:
    """The node and GPU a series is about, read from its labels once."""

    node: str
    gpu: str
    uuid: str | None
    model: str | None
    device: str | None


def locate(labels: Mapping[str, str], node_labels: Iterable[str]) -> Where | None:
    """Node and GPU of a series; ``None`` when no node label is present (cannot be placed)."""
    node = None
    for name in node_labels:
        value = labels.get(name)
        if value:
            node = value.rsplit(":", 1)[0] if name == "instance" else value
            break
    if node is None:
        return None
    return Where(
        node,
        labels.get(GPU_LABELS["gpu"], ""),
        labels.get(GPU_LABELS["uuid"]),
        labels.get(GPU_LABELS["model"]),
        labels.get(GPU_LABELS["device"]),
    )


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _field(name: str, signal: Signal, where: Where, labels: Mapping[str, str], value: float) -> str:
    """One placeholder's text; a label the series lacks reads ``?``."""
    if name == "node":
        return where.node
    if name == "value":
        return _number(value, signal.value_digits)
    if name == "value_name":
        return signal.value_names.get(int(value), "unknown")
    if name == "value_percent":
        return f"{value * 100:.1f}"
    if name == "signal":
        return signal.name
    found = getattr(where, name, None) if name in GPU_LABELS else labels.get(name)
    return found or "?"


@cache
def _parts(message: str) -> tuple[str, ...]:
    """A message cut once into literal text and placeholder names (odd positions)."""
    return tuple(PLACEHOLDER.split(message))


def render(signal: Signal, where: Where, labels: Mapping[str, str], value: float) -> str:
    """The signal's message for one series (only the placeholders it names are computed)."""
    assert signal.message is not None
    parts = _parts(signal.message)
    out = [parts[0]]
    for i in range(1, len(parts), 2):
        out.append(_field(parts[i], signal, where, labels, value))
        out.append(parts[i + 1])
    return "".join(out)


def _aware(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def heal_envelope(signal: Signal, event: Event, where: Where, value: float) -> dict[str, Any]:
    """A node diagnosis in the JSON-lines shape of ``heal run`` (docs/heal-pipeline.md).

    The event id is the store event's content hash, so a resent copy is the same cause for the
    controller, and the signature carries the value (``prometheus.gpu_xid.79``) so policies can
    match one Xid code by regex.
    """
    assert signal.category is not None
    entry = category(signal.category)
    details = {"node": where.node, "signal": signal.name, "value": f"{value:g}"}
    if where.gpu:
        details["gpu"] = where.gpu
    if where.uuid:
        details["uuid"] = where.uuid
    suffix = f".{int(value)}" if signal.value_in_key else ""
    return {
        "diagnosis": {
            "input": f"prometheus:{signal.name}",
            "category": entry.id,
            "owner": entry.owner,
            "confidence": signal.confidence,
            "summary": event.message,
            "evidence": [{"file": f"prometheus:{signal.name}", "line": 0, "text": event.message}],
            "action": {"kind": entry.action, "advice": entry.advice},
            "retryable": entry.retryable,
            "signature": f"prometheus.{signal.name}{suffix}",
            "details": details,
        },
        "node": where.node,
        "event_id": f"prometheus:{_event_key(event)}",
        "ts": event.ts.isoformat(),
    }


def _event_key(event: Event) -> str:
    return event_id(event.ts, event.source, event.kind, event.object, event.reason, event.message)


def _object(signal: Signal, where: Where) -> tuple[str, str]:
    if signal.scope == "gpu" and where.gpu:
        return "gpu", f"node/{where.node}/gpu/{where.gpu}"
    return "node", f"node/{where.node}"


def fault(
    signal: Signal, where: Where, labels: Mapping[str, str], ts: float, value: float
) -> Event:
    """The store event for one fault of ``signal`` on ``where``."""
    kind, obj = _object(signal, where)
    assert signal.reason is not None
    keep = {name: labels[name] for name in signal.labels if name in labels}
    raw: dict[str, Any] = {"signal": signal.name, "value": value, "labels": dict(labels), **keep}
    return Event(
        ts=_aware(ts),
        source=SOURCE,
        kind=kind,
        object=obj,
        reason=signal.reason,
        message=render(signal, where, labels, value),
        severity=signal.severity,
        raw=raw,
    )


class PrometheusSource:
    """Polls a Prometheus-compatible API with a catalog; remembers which faults it reported."""

    def __init__(
        self,
        api: PrometheusAPI,
        catalog: Catalog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.catalog = catalog
        self.clock = clock
        self._active: dict[str, set[Key]] = {}

    def poll(self, at: datetime | None = None) -> PollResult:
        """Run every signal once, as of ``at`` (default: now)."""
        when = at or self.clock()
        result = PollResult()
        for signal in self.catalog.signals:
            try:
                found = self.api.query(signal.query, when)
            except PrometheusError as exc:
                result.errors.append(f"{signal.name}: {exc}")
                result.counts[f"{signal.name}.errors"] += 1
                continue
            result.extend(self._counted(signal, found))
        return result

    def backfill(self, start: datetime, end: datetime, step_seconds: float) -> PollResult:
        """Range queries over ``[start, end]``: usage at every step, faults at each onset."""
        result = PollResult()
        for signal in self.catalog.signals:
            try:
                found = self.api.query_range(signal.query, start, end, step_seconds)
            except PrometheusError as exc:
                result.errors.append(f"{signal.name}: {exc}")
                result.counts[f"{signal.name}.errors"] += 1
                continue
            result.extend(self._counted(signal, found, step_seconds))
        return result

    def _counted(
        self, signal: Signal, found: QueryResult, step_seconds: float | None = None
    ) -> PollResult:
        result = self.read(signal, found.series, step_seconds)
        result.counts[f"{signal.name}.series"] += len(found.series)
        if found.skipped:
            result.counts[f"{signal.name}.skipped"] += found.skipped
        return result

    def read(
        self, signal: Signal, series: list[Series], step_seconds: float | None = None
    ) -> PollResult:
        """Turn one query's series into events or usage rows (the hot path: plain loops)."""
        if signal.kind == "usage":
            return self._usage(signal, series)
        return self._faults(signal, series, step_seconds)

    def _usage(self, signal: Signal, series: list[Series]) -> PollResult:
        result = PollResult()
        assert signal.metric is not None
        node_labels, metric, scale = self.catalog.node_labels, signal.metric, signal.scale
        rows = result.usage
        for item in series:
            where = locate(item.labels, node_labels)
            if where is None:
                result.counts[f"{signal.name}.unplaced"] += 1
                continue
            for ts, value in item.points:
                rows.append(
                    GpuUsageRow(
                        _aware(ts),
                        where.node,
                        where.gpu,
                        metric,
                        value * scale,
                        where.uuid,
                        where.model,
                    )
                )
        return result

    def _faults(
        self, signal: Signal, series: list[Series], step_seconds: float | None
    ) -> PollResult:
        result = PollResult()
        before = self._active.get(signal.name, set())
        now: set[Key] = set()
        for item in series:
            where = locate(item.labels, self.catalog.node_labels)
            if where is None:
                result.counts[f"{signal.name}.unplaced"] += 1
                continue
            for ts, value in _onsets(item.points, step_seconds, signal.value_in_key):
                if value in signal.ignored:
                    continue
                key = (where.node, where.uuid or where.gpu, value if signal.value_in_key else None)
                now.add(key)
                if key in before and step_seconds is None:
                    continue
                self._emit(result, signal, where, item.labels, ts, value)
        self._active[signal.name] = now
        return result

    def _emit(
        self,
        result: PollResult,
        signal: Signal,
        where: Where,
        labels: Mapping[str, str],
        ts: float,
        value: float,
    ) -> None:
        event = fault(signal, where, labels, ts, value)
        result.events.append(event)
        result.counts[f"{signal.name}.events"] += 1
        if signal.category is not None:
            result.heal.append(heal_envelope(signal, event, where, value))


def _onsets(
    points: tuple[tuple[float, float], ...], step_seconds: float | None, by_value: bool
) -> list[tuple[float, float]]:
    """The points where a fault starts: for an instant query its one point; over a range, the
    first point, a point after a gap, or (``by_value``) a point whose value changed."""
    if step_seconds is None:
        return [points[-1]]
    starts: list[tuple[float, float]] = []
    last_ts, last_value = None, None
    for ts, value in points:
        gap = last_ts is None or ts - last_ts > step_seconds * 1.5
        if gap or (by_value and value != last_value):
            starts.append((ts, value))
        last_ts, last_value = ts, value
    return starts


def save(store: Store, result: PollResult) -> tuple[int, int]:
    """Write a poll's events and usage through the store's one writer; (events, usage rows)."""
    counts = Writer(store).write_records(events=result.events) if result.events else None
    usage = write_gpu_usage(store, result.usage)
    return (counts.events if counts else 0), usage
