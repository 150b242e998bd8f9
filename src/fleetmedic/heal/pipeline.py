"""The event pipeline in front of the controller: sources → bounded queue → one controller thread.

Why this shape (docs/heal-pipeline.md):

* **A bounded queue** between readers and the controller gives back-pressure: a burst waits in the
  reader instead of growing memory, and nothing is dropped.
* **Cheap de-duplication before the controller.** Sources resend (at-least-once delivery, two
  watchers on one job), so a bounded set of recent event keys (the source's ``event_id``, else a
  hash of diagnosis, node and attempt) drops exact duplicates without a trip to the database. It
  is an optimisation only: it forgets old keys and a restart empties it. What guarantees that an
  action runs once is the controller's idempotency key in the audit.
* **Late attempts.** The pipeline remembers the highest attempt it has seen per job; an event for
  an older attempt reaches the controller with the job marked as moved on, so a retry is never
  issued for an attempt that has already been superseded (node evidence still counts).
* **Group commit.** The controller is synchronous and single-threaded by design, so the consumer
  hands it a whole batch of queued events in one call on one worker thread, inside
  :meth:`AuditLog.batch`: a burst of proposals is one SQLite commit instead of one each. Write-ahead
  still holds because the controller flushes the audit before every executor call.
* **Approvals from elsewhere** (``fleetmedic heal approve`` in another shell) are picked up between
  batches and on a timer, by :meth:`Controller.run_approved`.

Shutdown (end of input, :meth:`Pipeline.stop`, SIGTERM/SIGINT): the batch in the controller is
finished; events still queued are not started and are counted as ``unprocessed``.
"""

from __future__ import annotations

import asyncio
import signal
from array import array
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import asdict, dataclass, replace
from time import perf_counter
from typing import TypeVar

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.events import Incoming, Malformed
from fleetmedic.model.errors import InputError
from fleetmedic.model.records import Action, Job

Source = AsyncIterable[Incoming | Malformed]
T = TypeVar("T")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_OPEN = frozenset({"proposed", "approved", "executing"})


class PipelineMetrics:
    """Prometheus metrics of one pipeline, in their own registry so two pipelines never clash."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = PromCounter(
            "fleetmedic_heal_events_received", "Well-formed events read.", registry=r
        )
        self.duplicates = PromCounter(
            "fleetmedic_heal_events_duplicate", "Events dropped as exact duplicates.", registry=r
        )
        self.malformed = PromCounter(
            "fleetmedic_heal_events_malformed", "Lines that were not valid events.", registry=r
        )
        self.handled = PromCounter(
            "fleetmedic_heal_events_handled", "Events the controller decided on.", registry=r
        )
        self.actions = PromCounter(
            "fleetmedic_heal_actions",
            "Actions by kind and by the state the controller left them in.",
            ["kind", "state"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "fleetmedic_heal_queue_depth", "Events waiting for the controller.", registry=r
        )
        self.latency = Histogram(
            "fleetmedic_heal_decision_latency_seconds",
            "From an event entering the pipeline to the controller returning for it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def text(self) -> str:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry).decode("utf-8")


@dataclass(frozen=True)
class Summary:
    """What one run did; ``actions`` counts each action once, in the last state this run saw."""

    received: int
    duplicates: int
    malformed: int
    handled: int
    unprocessed: int
    actions: dict[str, int]
    seconds: float
    stopped: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class _Queued:
    item: Incoming
    entered: float


class _Recent:
    """A bounded set of keys: the oldest is forgotten when a new one would exceed ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: set[str] = set()
        self.order: deque[str] = deque()

    def seen(self, key: str) -> bool:
        """True for a key already in the set; else remember it."""
        if key in self.keys:
            return True
        self.keys.add(key)
        self.order.append(key)
        if len(self.order) > self.size:
            self.keys.discard(self.order.popleft())
        return False


class Pipeline:
    """Feeds one :class:`Controller` from any number of event sources; run it once.

    ``keep_latencies`` also records each event's latency (seconds) in :attr:`latencies` and the
    time to the commit of its batch in :attr:`commit_latencies`, for exact percentiles.
    ``group_commit=False`` commits every audit write on its own (the benchmark's reference).
    """

    def __init__(
        self,
        controller: Controller,
        *,
        queue_size: int = 1024,
        batch_size: int = 256,
        approvals_every: float = 2.0,
        recent: int = 100_000,
        group_commit: bool = True,
        keep_latencies: bool = False,
        warn: Callable[[str], None] | None = None,
        max_warnings: int = 100,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.controller = controller
        self.batch_size = batch_size
        self.approvals_every = approvals_every
        self.group_commit = group_commit
        self.keep_latencies = keep_latencies
        self.metrics = metrics or PipelineMetrics()
        self.latencies = array("d")
        self.commit_latencies = array("d")
        self.queue: asyncio.Queue[_Queued | None] = asyncio.Queue(maxsize=queue_size)
        self.metrics.queue_depth.set_function(self.queue.qsize)
        self._warn = warn or (lambda _line: None)
        self._warnings_left = max_warnings
        self._recent = _Recent(recent)
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._latest_size = recent
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetmedic-heal")
        self._stopping = False
        self._source_error: Exception | None = None
        self._outcomes: Counter[str] = Counter()
        self._waiting: dict[str, str] = {}
        self.received = self.duplicates = self.malformed = self.queued = 0
        self.handled = self.invalid = self.batches = 0  # written by the controller thread only

    # intake (event-loop thread) ----------------------------------------------------------
    async def offer(self, item: Incoming | Malformed) -> None:
        """Count one event, drop it if recently seen, else queue it (waits while the queue is full).

        Its latency is counted from ``item.arrived`` if the source set it, else from now.
        """
        if isinstance(item, Malformed):
            self._reject(item.warning())
            return
        self.received += 1
        self.metrics.received.inc()
        if self._recent.seen(item.key):
            self.duplicates += 1
            self.metrics.duplicates.inc()
            return
        self.queued += 1
        await self.queue.put(
            _Queued(item, perf_counter() if item.arrived is None else item.arrived)
        )

    def stop(self) -> None:
        """Stop taking events; the batch in the controller is finished (call on the loop)."""
        if self._stopping:
            return
        self._stopping = True
        with suppress(asyncio.QueueFull):  # full: the consumer is busy and will see the flag
            self.queue.put_nowait(None)  # wakes an idle consumer

    def _reject(self, warning: str) -> None:
        self.malformed += 1
        self.metrics.malformed.inc()
        if self._warnings_left > 0:
            self._warnings_left -= 1
            self._warn(warning)
            if self._warnings_left == 0:
                self._warn("further malformed events are counted, not shown")

    # running -----------------------------------------------------------------------------
    async def run(self, *sources: Source, signals: bool = False) -> Summary:
        """Resume, then handle events until every source ends or :meth:`stop` is called.

        With ``signals``, SIGTERM and SIGINT call :meth:`stop` (main thread only). A crash in the
        controller (anything but an action error) stops the pipeline and is raised here; the next
        run's :meth:`Controller.resume` finishes what it left ``executing``.
        """
        started = perf_counter()
        loop = asyncio.get_running_loop()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        try:
            self._tally(await self._call(self.controller.resume))
            feeding = asyncio.create_task(self._feed_all(sources))
            try:
                await self._consume()
            finally:
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
            if self._source_error is not None:
                raise self._source_error
        finally:
            self._worker.shutdown(wait=True)
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        return self.summary(perf_counter() - started)

    def summary(self, seconds: float = 0.0) -> Summary:
        return Summary(
            received=self.received,
            duplicates=self.duplicates,
            malformed=self.malformed,
            handled=self.handled,
            unprocessed=self.queued - self.handled - self.invalid,
            actions={k: v for k, v in sorted(self._outcomes.items()) if v},
            seconds=seconds,
            stopped=self._stopping,
        )

    async def _feed_all(self, sources: Sequence[Source]) -> None:
        try:
            await asyncio.gather(*(self._feed(source) for source in sources))
        except Exception as exc:  # a broken source: finish the batch, then raise it from run()
            self._source_error = exc
            self.stop()
            return
        await self.queue.put(None)  # end of input, behind every event

    async def _feed(self, source: Source) -> None:
        try:
            async for item in source:
                if self._stopping:
                    return
                await self.offer(item)
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.approvals_every
        while not self._stopping:
            batch, ended = await self._take(max(0.0, due - loop.time()))
            if batch:
                for warning in await self._call(self._decide, batch):
                    self._reject(warning)
            if ended or self._stopping:
                return
            timer = loop.time() >= due
            if timer or batch:
                await self._call(self._run_approved)
            if timer:
                due = loop.time() + self.approvals_every

    async def _take(self, timeout: float) -> tuple[list[_Queued], bool]:
        """Up to ``batch_size`` queued events (waiting at most ``timeout`` for the first) and
        whether the end of input was reached."""
        if self.queue.empty():
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                return [], False
        else:
            item = self.queue.get_nowait()
        batch: list[_Queued] = []
        while item is not None:
            batch.append(item)
            if len(batch) >= self.batch_size or self.queue.empty():
                return batch, False
            item = self.queue.get_nowait()
        return batch, True

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Run on the one controller thread: the controller and its SQLite handle stay serial."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    # the controller thread ---------------------------------------------------------------
    def _decide(self, batch: list[_Queued]) -> list[str]:
        """Handle a batch in one transaction; returns warnings for events that were not valid."""
        commit: AbstractContextManager[list[Action]] = (
            self.controller.batch() if self.group_commit else nullcontext([])
        )
        warnings: list[str] = []
        self.batches += 1
        with commit as finished:
            for queued in batch:
                warning = self._decide_one(queued)
                if warning:
                    warnings.append(warning)
        self._tally(finished)
        if self.keep_latencies:
            committed = perf_counter()
            self.commit_latencies.extend(committed - q.entered for q in batch)
        return warnings

    def _decide_one(self, queued: _Queued) -> str | None:
        try:
            actions = self.controller.handle(self._with_history(queued.item.event))
        except InputError as exc:  # an event built in code, not parsed: it names no cause
            self.invalid += 1
            return f"{queued.item.source}:{queued.item.line}: skipped: {exc}"
        latency = perf_counter() - queued.entered
        self.handled += 1
        self.metrics.handled.inc()
        self.metrics.latency.observe(latency)
        if self.keep_latencies:
            self.latencies.append(latency)
        self._tally(actions)
        return None

    def _with_history(self, event: HealEvent) -> HealEvent:
        """Mark the job as moved on when a later attempt of it has already been seen."""
        job_id, attempt = event.job_ref, event.attempt_no
        if job_id is None:
            return event
        latest = self._latest.get(job_id, 0)
        if attempt >= latest:
            self._latest[job_id] = attempt
            self._latest.move_to_end(job_id)
            if len(self._latest) > self._latest_size:
                self._latest.popitem(last=False)
            return event
        job = event.job
        if job is None:
            job = Job(job_id=job_id, status="failed", attempts=latest)
        elif job.attempts < latest:
            job = job.model_copy(update={"attempts": latest})
        return replace(event, job=job)

    def _run_approved(self) -> None:
        self._tally(self.controller.run_approved())

    def _tally(self, actions: list[Action]) -> None:
        """Count each action once, in its latest state (approval actions change state later)."""
        for action in actions:
            self.metrics.actions.labels(action.kind, action.state).inc()
            before = self._waiting.pop(action.action_id, None)
            if before is not None:
                self._outcomes[before] -= 1
            self._outcomes[action.state] += 1
            if action.state in _OPEN and action.mode != "dry-run":
                self._waiting[action.action_id] = action.state
