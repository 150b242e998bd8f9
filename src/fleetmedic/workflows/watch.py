"""The live loop, ``fleetmedic watch``: watch the cluster → detect failures → fetch logs →
diagnose → heal events for the controller's pipeline, with notifications on the side.

Why here: the watchers and the detector are a source, the engine is ``diagnose``, the controller
and the notifier are ``heal``; stages do not import each other, so this layer joins them.

::

    Watcher(Pod) ─┐
    Watcher(Node) ├─► Detector ── settled episode ──► LogFetcher ──► diagnose() (worker thread)
    Watcher(...) ─┘      ▲                                              │
    AlertReceiver ───────┘ (thread → loop)                               ├─► notify_incident()
                                                                         └─► Incoming ─► Pipeline

Diagnoses run on one worker thread, one at a time: the engine is CPU-bound and must not stall the
watch streams, and its Hyperscan scratch space is not shared between threads (two diagnoses at
once fail with ``ScratchInUseError``). Logs for the next bundles are fetched meanwhile, at most
``fetches_at_once`` bundles together, which bounds the log bytes held.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.heal.controller import HealEvent
from fleetmedic.heal.events import Incoming
from fleetmedic.heal.guard import Fleet
from fleetmedic.heal.notify import Severity, WebhookNotifier, incident_key
from fleetmedic.model.records import Diagnosis
from fleetmedic.sources.kube_detect import Bundle, Caches, Detector
from fleetmedic.sources.kube_logs import LogFetcher, LogLimits
from fleetmedic.sources.kube_records import NodeRecord
from fleetmedic.sources.kube_watch import (
    KINDS,
    Change,
    KubeSession,
    Store,
    Watcher,
    WatchOptions,
)
from fleetmedic.sources.signals import NodeSignal

_SEVERITY: dict[str, Severity] = {"hardware": "critical", "platform": "warning", "user": "info"}


@dataclass
class WatchConfig:
    kinds: Sequence[str] = tuple(KINDS)
    settle: float = 5.0
    since: timedelta = timedelta(minutes=15)
    fetches_at_once: int = 2
    engine: str = "auto"
    logs: LogLimits = field(default_factory=LogLimits)
    watch: WatchOptions = field(default_factory=WatchOptions)
    tick: float = 0.25


def heal_event(bundle: Bundle, diagnosis: Diagnosis, number: int = 0) -> Incoming:
    """The envelope the pipeline reads (docs/heal-pipeline.md), built from a settled bundle."""
    details = dict(diagnosis.details)
    if bundle.node:
        details.setdefault("node", bundle.node)
    job_id = bundle.job_id
    attempt = bundle.attempt if job_id is not None else None
    diagnosis = diagnosis.model_copy(
        update={"job_id": job_id, "attempt": attempt, "details": details}
    )
    # named as heal.events names a replayed envelope, so `heal run` on the --format json output
    # reaches the same idempotency keys
    key = f"id:watch:{bundle.name}"
    ref = key if job_id is None else None
    event = HealEvent(
        diagnosis=diagnosis, job=bundle.job, node=bundle.node, attempt=attempt, ref=ref
    )
    return Incoming(event, key, number, "watch", datetime.now(UTC))


def envelope(item: Incoming) -> dict[str, Any]:
    """The JSON-lines envelope of an event, as ``heal run`` reads it back."""
    event = item.event
    out: dict[str, Any] = {"diagnosis": event.diagnosis.model_dump(mode="json")}
    if event.job is not None:
        out["job"] = event.job.model_dump(mode="json", exclude_none=True)
    if event.node is not None:
        out["node"] = event.node
    if event.attempt is not None:
        out["attempt"] = event.attempt
    out["event_id"] = item.key.removeprefix("id:")
    if item.ts is not None:
        out["ts"] = item.ts.isoformat()
    return out


class WatchLoop:
    """Runs the watchers and turns settled failures into pipeline events (:meth:`events`)."""

    def __init__(
        self,
        session: KubeSession,
        config: WatchConfig | None = None,
        *,
        notifier: WebhookNotifier | None = None,
        on_event: Callable[[Incoming], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.config = config or WatchConfig()
        self.notifier = notifier
        self.on_event = on_event or (lambda _item: None)
        self.warn = warn or (lambda _message: None)
        self.caches = Caches()
        self.detector = Detector(self.caches, settle=self.config.settle, since=self.config.since)
        self.fetcher = LogFetcher(session, self.config.logs)
        self.watchers = [self._watcher(name) for name in self.config.kinds]
        self.fleet: Fleet | None = None
        self.stats: Counter[str] = Counter()
        self._out: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._diagnosing: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(self.config.fetches_at_once)
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetmedic-diagnose")
        self._incidents: OrderedDict[str, set[str]] = OrderedDict()
        self._stopping = False
        self._error: BaseException | None = None

    def _watcher(self, name: str) -> Watcher:
        spec = KINDS[name]
        stores: dict[str, Store[Any]] = {
            "pod": self.caches.pods,
            "node": self.caches.nodes,
            "job": self.caches.jobs,
            "event": self.caches.events,
        }
        return Watcher(
            self.session,
            spec,
            stores[spec.role],
            self.on_change,
            options=self.config.watch,
            warn=self.warn,
        )

    # intake ------------------------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        self.detector.on_change(change)
        if change.kind == "Node" and self.fleet is not None and change.new is not None:
            self._grow_fleet(change.new)

    def _grow_fleet(self, node: NodeRecord) -> None:
        """A node that joined after start: the guard may cordon it. The dict is swapped whole,
        never changed in place, because the guard reads it on the controller thread."""
        assert self.fleet is not None
        if node.name not in self.fleet.pools:
            self.fleet.pools = {**self.fleet.pools, node.name: node.pool}

    def on_signals(self, signals: list[NodeSignal]) -> None:
        for signal in signals:
            self.stats[f"alerts_{signal.status}"] += 1
            self.detector.on_signal(signal)

    def deliver_from_thread(self) -> Callable[[list[NodeSignal]], None]:
        """A thread-safe callback for the alert receiver, bound to the running loop."""
        loop = asyncio.get_running_loop()

        def deliver(signals: list[NodeSignal]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: we are shutting down
                loop.call_soon_threadsafe(self.on_signals, signals)

        return deliver

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        for watcher in self.watchers:
            self._tasks.append(
                asyncio.create_task(watcher.run(), name=f"watch-{watcher.spec.name}")
            )
        self._tasks.append(asyncio.create_task(self._tick(), name="watch-detector"))
        for task in self._tasks:
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A watcher or the detector stopped by itself: that is a bug; stop, and raise it from
        :meth:`events`, rather than go on blind to one kind."""
        if task.cancelled() or task.exception() is None or self._error is not None:
            return
        self._error = task.exception()
        self.warn(f"{task.get_name()} crashed: {self._error!r}; stopping")
        self.stop()

    async def synced(self, timeout: float = 60.0) -> bool:
        """Wait until every kind has been listed once (or found absent); False on timeout."""
        waits = [w.synced.wait() for w in self.watchers]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    def fleet_now(self) -> Fleet:
        """The guard's fleet from the nodes listed so far; kept growing as nodes join."""
        self.fleet = Fleet(
            {n.name: n.pool for n in self.caches.nodes.items.values()},
            {n.name for n in self.caches.nodes.items.values() if n.cordoned},
        )
        return self.fleet

    def stop(self) -> None:
        """End :meth:`events` once the diagnoses in flight are done."""
        if not self._stopping:
            self._stopping = True
            self._out.put_nowait(None)

    async def close(self) -> None:
        for task in [*self._tasks, *self._diagnosing]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._diagnosing, return_exceptions=True)
        self._tasks.clear()
        self._engine.shutdown(wait=False, cancel_futures=True)

    async def events(self) -> AsyncIterator[Incoming]:
        """The pipeline source: heal events as diagnoses finish, until :meth:`stop`."""
        try:
            while True:
                item = await self._out.get()
                if item is None:
                    break
                yield item
            if self._diagnosing:
                await asyncio.gather(*self._diagnosing, return_exceptions=True)
            while not self._out.empty():
                item = self._out.get_nowait()
                if item is not None:
                    yield item
            if self._error is not None:
                raise self._error
        finally:
            await self.close()

    # detector → diagnoses ----------------------------------------------------------------------
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            for bundle in self.detector.due():
                task = asyncio.create_task(self._diagnose(bundle), name=f"diagnose {bundle.name}")
                self._diagnosing.add(task)
                task.add_done_callback(self._diagnosed)
            for ref in self.detector.take_cleared():
                self._resolve(ref)

    def _diagnosed(self, task: asyncio.Task[None]) -> None:
        """A diagnosis that raised is a bug (the engine does not raise on bad input): stop."""
        self._diagnosing.discard(task)
        self._ended(task)

    async def _diagnose(self, bundle: Bundle) -> None:
        async with self._gate:
            logs = await self.fetcher.for_pods(bundle.pods) if bundle.pods else []
            documents = [*bundle.documents, *(log.document() for log in logs)]
            if not documents:
                self.stats["empty_bundles"] += 1
                return
            diagnosis = await asyncio.get_running_loop().run_in_executor(
                self._engine, diagnose, documents, bundle.name, self.config.engine
            )
        self.stats["diagnosed"] += 1
        self.stats[f"category_{diagnosis.category}"] += 1
        item = heal_event(bundle, diagnosis, self.stats["diagnosed"])
        self._notify(bundle, diagnosis)
        self.on_event(item)
        await self._out.put(item)

    # notifications -----------------------------------------------------------------------------
    def _notify(self, bundle: Bundle, diagnosis: Diagnosis) -> None:
        if self.notifier is None or diagnosis.category == "unknown":
            return
        scope = bundle.job_id or bundle.node or bundle.subject
        key = incident_key(diagnosis.category, diagnosis.signature, scope)
        summary = f"{diagnosis.summary} ({bundle.reason})"
        self.notifier.notify_incident(
            key,
            summary,
            _SEVERITY.get(diagnosis.owner, "info"),
            category=diagnosis.category,
            signature=diagnosis.signature or "",
            scope=scope,
        )
        for ref in (bundle.subject, *bundle.refs):
            self._incidents.setdefault(ref, set()).add(key)
            self._incidents.move_to_end(ref)
        while len(self._incidents) > 100_000:
            self._incidents.popitem(last=False)

    def _resolve(self, ref: str) -> None:
        self.stats["cleared"] += 1
        for key in self._incidents.pop(ref, set()):
            if self.notifier is not None and self.notifier.resolve(key):
                self.stats["resolved"] += 1

    # reporting ---------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Counters for the summary: per kind, the detector, logs, diagnoses."""
        kinds = {}
        for watcher in self.watchers:
            counts = dict(watcher.stats)
            if watcher.absent:
                counts["absent"] = 1
            kinds[watcher.spec.name] = counts
        return {
            "kinds": kinds,
            "cached": {
                "pods": len(self.caches.pods),
                "nodes": len(self.caches.nodes),
                "jobs": len(self.caches.jobs),
                "events": len(self.caches.events),
            },
            "detector": dict(self.detector.stats),
            "logs": dict(self.fetcher.stats),
            "loop": dict(self.stats),
        }
