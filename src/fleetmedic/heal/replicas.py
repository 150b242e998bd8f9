"""Several controller replicas: events over NATS JetStream, exactly one replica acting per target.

One replica is the default and needs nothing (``heal run`` reads its events in process). With
``heal run --nats URL`` every replica reads the same JetStream consumer (replicas_nats.py), and::

    fetch ─► parse ─► lease the event's node and job ─► leased by another replica? nak(delay):
          │                                              redelivered later, maybe to the holder
          └► controller.batch(): decide every event ─► for each admitted action: claim it in NATS
               ─► already done by another replica? recorded done here, not run ─► else executor
               ─► claim marked done ─► ack the messages

A replica that dies stops renewing its leases and acking: after the lease time another replica
owns its targets, after ``ack_wait`` its unacked messages come back, and the claims tell the new
owner which actions already ran. A NATS outage is one warning line; the replica keeps retrying,
messages it could not finish are redelivered, and it re-drives what it left ``executing``
(:meth:`Controller.resume`) once NATS answers again.

Not shared between replicas (each has its own control store): approvals (approve in the replica
that proposed, ``heal status`` there), node history for repeat counting, retry budgets, the
guard's rate buckets. The kill switch and the breaker *are* shared: mirrored through NATS, the
latest change wins, so ``heal kill-switch on`` in any replica stops them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.events import Incoming, Malformed, parse_event, read_lines
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.policy import NODE_KINDS, PolicySet
from fleetmedic.heal.replicas_nats import (
    Bus,
    Claims,
    Leases,
    NatsSettings,
    ReplicaUnavailable,
    connect,
    guarded,
    push_switch,
    remote_switches,
)
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.executor import Executor
from fleetmedic.model.records import Action

T = TypeVar("T")


def default_replica_id() -> str:
    """The pod name in Kubernetes (its hostname): stable across restarts of the same pod."""
    return socket.gethostname()


def lease_names(event: HealEvent) -> list[str]:
    """The targets an event can lead to an action on: its node and its job."""
    names = []
    if event.node_id is not None:
        names.append(f"node:{event.node_id}")
    if event.job_ref is not None:
        names.append(f"job:{event.job_ref}")
    return names


def action_lease(action: Action) -> str:
    return f"{'node' if action.kind in NODE_KINDS else 'job'}:{action.target}"


class Gate:
    """Lets the controller thread ask the NATS loop, with a bounded wait.

    Why a bridge: the controller is synchronous on its own thread (heal-pipeline.md), the NATS
    client lives on the event loop; a call that does not come back in time is an outage.
    """

    def __init__(
        self, leases: Leases, claims: Claims, loop: asyncio.AbstractEventLoop, timeout: float
    ):
        self.leases, self.claims, self.loop, self.timeout = leases, claims, loop, timeout

    def claim(self, action: Action) -> str | None:
        """``None``: run it. Else the reason it is already done elsewhere."""
        name = action_lease(action)
        if not self.leases.holds(name):  # e.g. resumed after a restart: take the target first
            holder = self._wait(self.leases.acquire([name]))
            if holder is not None:
                raise ReplicaUnavailable(f"{name} is leased by replica {holder}")
        return self._wait(self.claims.claim(action.action_id))

    def finish(self, action: Action) -> None:
        self._wait(self.claims.finish(action.action_id, action.state))

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(call, self.loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ReplicaUnavailable(f"nats: no answer within {self.timeout:g} s") from None


class ClaimingController(Controller):
    """A controller whose actions are claimed cluster-wide before they run.

    It overrides the one step between admission and the executor (``_run``); everything else
    (policies, guard, audit, batching) is the plain controller's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate: Gate | None = None  # set by the Replica once NATS is connected
        self.done_elsewhere = 0
        self.claim_warnings: list[str] = []

    def _run(self, action: Action) -> Action:
        if self.gate is None:
            return super()._run(action)
        elsewhere = self.gate.claim(action)  # ReplicaUnavailable leaves it executing: resume()
        if elsewhere is not None:
            self.done_elsewhere += 1
            return self.audit.transition(action.action_id, "done", self.clock(), elsewhere)
        finished = super()._run(action)
        try:
            self.gate.finish(finished)
        except ReplicaUnavailable as exc:  # ran and recorded here; a taker-over re-runs it
            self.claim_warnings.append(f"{exc} (claim of {action.action_id} not marked done)")
        return finished


def replica_controller(
    control: ControlStore,
    policies: PolicySet,
    fleet: Fleet,
    executor: Executor,
    clock: Callable[[], datetime],
) -> ClaimingController:
    """The same controller ``heal run`` builds, ready to be gated by a :class:`Replica`."""
    guard = Guard(policies.guard, fleet, clock, Switches(control))
    return ClaimingController(policies, guard, AuditLog(control), executor, clock=clock)


@dataclass
class ReplicaSummary:
    replica: str
    received: int = 0
    malformed: int = 0
    deferred: int = 0
    handled: int = 0
    done_elsewhere: int = 0
    outages: int = 0
    published: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Replica:
    """One replica's loop over the shared consumer; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        controller: ClaimingController,
        bus: Bus,
        *,
        batch: int = 64,
        warn: Callable[[str], None] = lambda _line: None,
        idle_release_seconds: float | None = None,
    ) -> None:
        settings = bus.settings
        self.controller, self.bus, self.batch, self.warn = controller, bus, batch, warn
        self.leases = Leases(bus.leases_kv, settings.replica)
        self.claims = Claims(bus.claims_kv, settings.replica)
        self.idle_release = idle_release_seconds or bus.lease_seconds * 4
        self.summary = ReplicaSummary(settings.replica)
        self._outcomes: Counter[str] = Counter()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetmedic-replica")
        self._resume_due = True

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Run on the one controller thread, like the pipeline (the controller is not shared)."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def run(self, stop: asyncio.Event) -> ReplicaSummary:
        loop = asyncio.get_running_loop()
        timeout = self.bus.settings.request_seconds * 2
        self.controller.gate = Gate(self.leases, self.claims, loop, timeout)
        upkeep = asyncio.create_task(self._upkeep(stop))
        finished = False
        try:
            subscription = await self._subscribe(stop)
            while subscription is not None and not stop.is_set():
                await self._resume_if_due()
                await self._step(subscription)
            finished = True
        finally:
            upkeep.cancel()
            await asyncio.gather(upkeep, return_exceptions=True)
            # Stopped: let the batch in hand finish. Cancelled (killed): do not wait for it.
            self._worker.shutdown(wait=finished)
        self.summary.done_elsewhere = self.controller.done_elsewhere
        self.summary.actions = {k: v for k, v in sorted(self._outcomes.items()) if v}
        return self.summary

    async def _subscribe(self, stop: asyncio.Event) -> Any:
        while not stop.is_set():
            try:
                return await self.bus.subscribe()
            except ReplicaUnavailable as exc:
                self._outage(exc)
                await _sleep_or_stop(stop, self.bus.settings.retry_seconds)
        return None

    async def _step(self, subscription: Any) -> None:
        try:
            messages = await subscription.fetch(self.batch, timeout=1.0)
        except TimeoutError:  # nats.errors.TimeoutError is one: nothing to fetch
            return
        except Exception as exc:  # nats-py raises its own tree on a dropped connection
            self._outage(ReplicaUnavailable(f"nats: fetch: {type(exc).__name__}: {exc}"))
            await asyncio.sleep(self.bus.settings.retry_seconds)
            return
        try:
            await self._handle(messages)
        except ReplicaUnavailable as exc:  # unacked messages come back after ack_wait
            self._outage(exc)

    async def _handle(self, messages: list[Any]) -> None:
        ready: list[tuple[Any, Incoming]] = []
        for message in messages:
            item = parse_event(message.data, message.metadata.sequence.stream, "nats")
            self.summary.received += 1
            if isinstance(item, Malformed):
                self.summary.malformed += 1
                self.warn(item.warning())
                await guarded("term", message.term())
                continue
            if await self.leases.acquire(lease_names(item.event)) is not None:
                self.summary.deferred += 1
                await guarded("nak", message.nak(delay=self.bus.settings.retry_seconds))
                continue
            ready.append((message, item))
        if ready:
            await self._decide(ready)

    async def _decide(self, ready: list[tuple[Any, Incoming]]) -> None:
        try:
            finished = await self._call(self._decide_now, [item.event for _, item in ready])
        except ReplicaUnavailable:
            self._resume_due = True
            raise
        self._tally(finished)
        for message, _ in ready:
            await guarded("ack", message.ack())
        self.summary.handled += len(ready)
        self._flush_claim_warnings()

    def _decide_now(self, events: list[HealEvent]) -> list[Action]:
        decided: list[Action] = []
        with self.controller.batch() as finished:
            for event in events:
                decided.extend(self.controller.handle(event))
        done = {a.action_id for a in finished}
        return finished + [a for a in decided if a.action_id not in done]

    async def _resume_if_due(self) -> None:
        if not self._resume_due:
            return
        try:
            self._tally(await self._call(self.controller.resume))
            self._resume_due = False
        except ReplicaUnavailable as exc:
            self._outage(exc)
            await asyncio.sleep(self.bus.settings.retry_seconds)

    async def _upkeep(self, stop: asyncio.Event) -> None:
        """Renew leases, let idle ones go, mirror the switches, run approvals: every third of
        the lease time, so a lease is renewed twice before it could expire."""
        every = self.bus.lease_seconds / 3
        while not stop.is_set():
            try:
                for name in await self.leases.renew():
                    self.warn(f"replica {self.summary.replica}: lost the lease on {name}")
                await self.leases.release_idle(self.idle_release)
                await self._mirror_switches()
                self._tally(await self._call(self.controller.run_approved))
            except ReplicaUnavailable as exc:
                self._outage(exc)
            self._flush_claim_warnings()
            await _sleep_or_stop(stop, every)

    async def _mirror_switches(self) -> None:
        """Latest change wins, in both directions (ISO UTC times compare as text)."""
        remote = await remote_switches(self.bus.switches_kv)
        push = await self._call(_merge_switches, self.controller, remote)
        for name, row in push.items():
            await push_switch(self.bus.switches_kv, name, row)

    def _outage(self, exc: ReplicaUnavailable) -> None:
        self.summary.outages += 1
        self.warn(f"replica {self.summary.replica}: {exc}")

    def _flush_claim_warnings(self) -> None:
        while self.controller.claim_warnings:
            self.warn(self.controller.claim_warnings.pop(0))

    def _tally(self, actions: list[Action]) -> None:
        for action in actions:
            self._outcomes[action.state] += 1


def _merge_switches(
    controller: Controller, remote: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Copy newer remote switches into the control store; return the local ones that are newer."""
    switches = controller.guard.switches
    assert isinstance(switches, Switches)
    push: dict[str, dict[str, Any]] = {}
    for name, row in switches.describe().items():
        theirs = remote.get(name)
        mine_at, their_at = (
            str(row["changed_at"] or ""),
            str((theirs or {}).get("changed_at") or ""),
        )
        if their_at > mine_at and theirs is not None:
            switches.set(
                name,
                bool(theirs.get("engaged")),
                datetime.fromisoformat(their_at),
                str(theirs.get("changed_by") or ""),
                str(theirs.get("reason") or ""),
            )
        elif mine_at > their_at:
            push[name] = row
    return push


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def publish_lines(
    bus: Bus,
    lines: AsyncIterator[tuple[int, bytes | None]],
    source: str,
    warn: Callable[[str], None],
) -> Counter[str]:
    """Publish valid event lines (the key de-duplicates resends); bad lines are warned, counted."""
    counts: Counter[str] = Counter()
    async for number, raw in lines:
        if raw is None or not raw.strip():
            counts["skipped"] += raw is None
            continue
        item = parse_event(raw, number, source)
        if isinstance(item, Malformed):
            counts["malformed"] += 1
            warn(item.warning())
            continue
        published = await bus.publish(raw.strip(), item.key)
        counts["published" if published else "duplicates"] += 1
    return counts


async def run_replica(
    controller: ClaimingController,
    settings: NatsSettings,
    *,
    lines: AsyncIterator[tuple[int, bytes | None]] | None = None,
    source: str = "<events>",
    warn: Callable[[str], None] = lambda _line: None,
    stop: asyncio.Event | None = None,
    signals: bool = False,
) -> ReplicaSummary:
    """Connect, publish ``lines`` (if any) while acting as a replica, until ``stop``/SIGTERM."""
    import signal

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    bus = await connect(settings, warn)
    replica = Replica(controller, bus, warn=warn)
    try:
        feeding = None
        if lines is not None:
            feeding = asyncio.create_task(publish_lines(bus, lines, source, warn))
        summary = await replica.run(stop)
        if feeding is not None:
            counts = await _finish(feeding)
            summary.published = counts["published"]
        await replica.leases.release_all()
        return summary
    finally:
        await bus.close()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


async def _finish(task: asyncio.Task[Counter[str]]) -> Counter[str]:
    if not task.done():
        task.cancel()
    try:
        return await task
    except (asyncio.CancelledError, ReplicaUnavailable):
        return Counter()


__all__ = [
    "ClaimingController",
    "NatsSettings",
    "Replica",
    "ReplicaSummary",
    "ReplicaUnavailable",
    "default_replica_id",
    "lease_names",
    "publish_lines",
    "read_lines",
    "replica_controller",
    "run_replica",
]
