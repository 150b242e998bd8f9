"""NATS JetStream plumbing for controller replicas: the event stream, leases, claims, switches.

What lives in NATS (one server or cluster, JetStream on)::

    stream  FLEETMEDIC_EVENTS     subjects fleetmedic.events.>  heal events, one per message;
            consumer fleetmedic-heal (durable, pull)             shared: each message goes to one
                                                                 replica; unacked ones come back
                                                                 after ack_wait (a dead replica's)
    KV      FLEETMEDIC_LEASES     lease.<hash of target> = replica, expiring after the lease time
                                  unless renewed: whoever holds it decides on that target
    KV      FLEETMEDIC_ACTIONS    a.<action id> = {replica, state}: claimed before the executor
                                  runs, so a replica taking over never repeats a done action
    KV      FLEETMEDIC_SWITCHES   kill_switch, breaker: mirrored with each replica's control store

Why leases *and* claims: a lease makes one replica at a time the owner of a target, so its
guard (cooldowns, rate limits) and its node history see every event of that target; a claim is
what makes a takeover safe, since the new owner's own audit has never seen the old owner's actions.

Every NATS failure (unreachable, timed out, closed) is turned into :class:`ReplicaUnavailable`,
one line, so callers handle one error type and never a NATS traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from fleetmedic.model.errors import FleetmedicError

STREAM = "FLEETMEDIC_EVENTS"
SUBJECT = "fleetmedic.events.heal"
CONSUMER = "fleetmedic-heal"
LEASES = "FLEETMEDIC_LEASES"
CLAIMS = "FLEETMEDIC_ACTIONS"
SWITCHES = "FLEETMEDIC_SWITCHES"
T = TypeVar("T")
_WRONG_LAST = (10071, 10164)  # JetStream: wrong last sequence (a compare-and-swap lost)


class ReplicaUnavailable(FleetmedicError):
    """NATS could not be used just now (down, timed out, reconnecting); trying later may work."""


@dataclass(frozen=True)
class NatsSettings:
    url: str
    replica: str
    lease_seconds: float = 15.0
    ack_wait_seconds: float = 30.0
    retry_seconds: float = 1.0
    claim_days: float = 7.0
    request_seconds: float = 5.0
    duplicate_window_seconds: float = 600.0


async def guarded(what: str, call: Awaitable[T]) -> T:
    """Await a NATS call; any NATS failure becomes one :class:`ReplicaUnavailable` line."""
    try:
        return await call
    except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
        raise  # answers, not failures: the caller decides
    except nats.js.errors.APIError as exc:
        if exc.err_code in _WRONG_LAST:  # a revision-checked write lost the race
            raise nats.js.errors.KeyWrongLastSequenceError(description=exc.description) from None
        raise ReplicaUnavailable(f"nats: {what}: {exc.description or exc}") from None
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise ReplicaUnavailable(f"nats: {what}: {' '.join(detail.split())}") from None


class Bus:
    """One replica's connection: the JetStream context and the three buckets."""

    def __init__(
        self,
        settings: NatsSettings,
        nc: Client,
        js: JetStreamContext,
        warn: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.settings, self.warn = settings, warn
        self.nc, self.js = nc, js
        self.lease_seconds = settings.lease_seconds
        self.leases_kv: KeyValue
        self.claims_kv: KeyValue
        self.switches_kv: KeyValue
        self.disconnects = 0

    async def setup(self, *, publisher: bool = False) -> None:
        """Use the stream and buckets, creating the missing ones. Existing ones are used as
        they are: the first replica's lease time is everyone's (a replica asking for another
        one is told once), so one deployment never runs two lease clocks."""
        s = self.settings
        try:
            await guarded("stream", self.js.stream_info(STREAM))
        except ReplicaUnavailable:
            await guarded(
                "create stream",
                self.js.add_stream(
                    name=STREAM,
                    subjects=["fleetmedic.events.>"],
                    duplicate_window=s.duplicate_window_seconds,
                ),
            )
        if publisher:
            return
        self.leases_kv = await self._bucket(LEASES, s.lease_seconds)
        ttl = (await guarded("lease bucket", self.leases_kv.status())).ttl
        self.lease_seconds = float(ttl or s.lease_seconds)
        if abs(self.lease_seconds - s.lease_seconds) > 0.01:
            self.warn(
                f"nats: the lease bucket expires leases after {self.lease_seconds:g} s "
                f"(not {s.lease_seconds:g} s): using {self.lease_seconds:g} s"
            )
        self.claims_kv = await self._bucket(CLAIMS, s.claim_days * 86400)
        self.switches_kv = await self._bucket(SWITCHES, None)

    async def _bucket(self, name: str, ttl: float | None) -> KeyValue:
        try:
            return await self.js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            pass
        except (nats.errors.Error, OSError) as exc:
            raise ReplicaUnavailable(f"nats: bucket {name}: {exc}") from None
        try:
            return await guarded(
                f"create bucket {name}",
                self.js.create_key_value(bucket=name, ttl=ttl or 0, history=1),
            )
        except ReplicaUnavailable:  # another replica created it meanwhile
            return await guarded(f"bucket {name}", self.js.key_value(name))

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """The shared durable consumer; naks and crashes redeliver, never drop (max_deliver -1)."""
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_seconds,
            max_deliver=-1,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        return await guarded(
            "subscribe",
            self.js.pull_subscribe(SUBJECT, durable=CONSUMER, stream=STREAM, config=config),
        )

    async def publish(self, data: bytes, key: str | None) -> bool:
        """Publish one event; ``key`` de-duplicates resends within the stream's window.
        Returns False for a duplicate JetStream dropped."""
        headers = {"Nats-Msg-Id": key} if key else None
        ack = await guarded("publish", self.js.publish(SUBJECT, data, headers=headers))
        return not ack.duplicate

    async def close(self) -> None:
        """Close; a connection already lost has nothing left to flush, so that is not an error."""
        if not self.nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self.nc.close()


class _Watch:
    """What the connection callbacks share: the bus (once there) and whether an outage was told."""

    def __init__(self) -> None:
        self.bus: Bus | None = None
        self.quiet = False


async def connect(
    settings: NatsSettings,
    warn: Callable[[str], None] = lambda _line: None,
    *,
    publisher: bool = False,
) -> Bus:
    """Connect, then set up the stream and buckets (a publisher needs only the stream);
    afterwards reconnect for ever.

    The first connection must succeed within 3 x ``request_seconds`` (a wrong URL is one error
    line, not a process retrying silently); a later outage is retried without end, and warned
    once per outage rather than once per attempt.
    """
    state = _Watch()

    async def disconnected() -> None:
        if state.bus is not None:
            state.bus.disconnects += 1
        warn(f"nats: disconnected from {settings.url}; reconnecting")

    async def reconnected() -> None:
        state.quiet = False
        warn(f"nats: reconnected to {settings.url}")

    async def error(exc: Exception) -> None:
        if not state.quiet:
            state.quiet = True
            warn(f"nats: {type(exc).__name__}: {' '.join(str(exc).split())}")

    options: dict[str, Any] = {
        "servers": [settings.url],
        "name": f"fleetmedic-{settings.replica}",
        "connect_timeout": settings.request_seconds,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
    }
    wait = settings.request_seconds * 3
    try:
        nc = await asyncio.wait_for(nats.connect(**options), wait)
    except TimeoutError:
        raise ReplicaUnavailable(
            f"nats: cannot connect to {settings.url} within {wait:g} s"
        ) from None
    except (nats.errors.Error, OSError) as exc:
        raise ReplicaUnavailable(f"nats: cannot connect to {settings.url}: {exc}") from None
    bus = Bus(settings, nc, nc.jetstream(timeout=settings.request_seconds), warn)
    state.bus, state.quiet = bus, False
    try:
        await bus.setup(publisher=publisher)
    except ReplicaUnavailable:
        await bus.close()
        raise
    return bus


def lease_key(name: str) -> str:
    """A KV key for any target name (job ids hold characters NATS keys refuse)."""
    return "lease." + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


class Leases:
    """The targets this replica owns: acquired by create, kept by revision-checked update."""

    def __init__(self, kv: KeyValue, replica: str, clock: Callable[[], float] = time.monotonic):
        self.kv, self.replica, self.clock = kv, replica, clock
        self.me = replica.encode("utf-8")
        self.held: dict[str, int] = {}
        self.used: dict[str, float] = {}

    def holds(self, name: str) -> bool:
        return name in self.held

    async def acquire(self, names: Iterable[str]) -> str | None:
        """Own every name or none: ``None`` when all are ours, else who holds the first refused."""
        taken: list[str] = []
        for name in sorted(set(names)):
            if name not in self.held:
                holder = await self._take(name)
                if holder is not None:
                    for mine in taken:
                        await self._drop(mine)
                    return holder
                taken.append(name)
            self.used[name] = self.clock()
        return None

    async def _take(self, name: str) -> str | None:
        key = lease_key(name)
        try:
            self.held[name] = await guarded("lease", self.kv.create(key, self.me))
            return None
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        try:
            entry = await guarded("lease", self.kv.get(key))
        except nats.js.errors.KeyNotFoundError:
            return "(expiring)"  # gone between the two calls: try again on redelivery
        if entry.value == self.me:  # ours from before a restart under the same name
            self.held[name] = entry.revision or 0
            return None
        return (entry.value or b"?").decode("utf-8", "replace")

    async def renew(self) -> list[str]:
        """Refresh every held lease; returns the ones lost (expired, or taken by another)."""
        lost = []
        for name, revision in list(self.held.items()):
            try:
                self.held[name] = await guarded(
                    "renew lease", self.kv.update(lease_key(name), self.me, last=revision)
                )
            except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
                self.held.pop(name, None)
                self.used.pop(name, None)
                lost.append(name)
        return lost

    async def release_idle(self, idle_seconds: float) -> int:
        """Let go of targets unused for a while, so leases do not pile up for every job ever."""
        cutoff = self.clock() - idle_seconds
        idle = [name for name in self.held if self.used.get(name, 0.0) < cutoff]
        for name in idle:
            await self._drop(name)
        return len(idle)

    async def _drop(self, name: str) -> None:
        revision = self.held.pop(name, None)
        self.used.pop(name, None)
        if revision is None:
            return
        # a wrong revision: it expired and another took it, nothing of ours to delete
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
            await guarded("release lease", self.kv.delete(lease_key(name), last=revision))

    async def release_all(self) -> None:
        for name in list(self.held):
            await self._drop(name)


class Claims:
    """Cluster-wide record of actions run, keyed by the audit's idempotency key."""

    def __init__(self, kv: KeyValue, replica: str) -> None:
        self.kv, self.replica = kv, replica

    def _value(self, state: str) -> bytes:
        return json.dumps({"replica": self.replica, "state": state}).encode("utf-8")

    async def claim(self, action_id: str) -> str | None:
        """``None``: ours to run now. Else why not: another replica already finished it.

        A claim left ``executing`` by another replica means that replica died mid-action (we
        only get here holding the target's lease, which it lost): it is taken over and run again,
        as ``resume()`` does after a crash; executors are idempotent per action.
        """
        key = f"a.{action_id}"
        try:
            await guarded("claim", self.kv.create(key, self._value("executing")))
            return None
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        entry = await guarded("claim", self.kv.get(key))
        found: dict[str, Any] = json.loads(entry.value or b"{}")
        if found.get("state") in ("done", "failed"):
            return f"{found['state']} by replica {found.get('replica', '?')}"
        await guarded("claim", self.kv.update(key, self._value("executing"), last=entry.revision))
        return None

    async def finish(self, action_id: str, state: str) -> None:
        await guarded("claim", self.kv.put(f"a.{action_id}", self._value(state)))


async def remote_switches(kv: KeyValue) -> dict[str, dict[str, Any]]:
    """The switches as NATS holds them: name -> {engaged, changed_at, changed_by, reason}."""
    found: dict[str, dict[str, Any]] = {}
    for name in ("kill_switch", "breaker"):
        try:
            entry = await guarded("read switch", kv.get(name))
        except nats.js.errors.KeyNotFoundError:
            continue
        found[name] = json.loads(entry.value or b"{}")
    return found


async def push_switch(kv: KeyValue, name: str, row: dict[str, Any]) -> None:
    await guarded("write switch", kv.put(name, json.dumps(row, sort_keys=True).encode("utf-8")))
