"""Three controller replicas on a real nats-server: each target acted on exactly once, a killed
replica's targets taken over, a NATS outage survived."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from natskit import NODES, POLICIES, LedgerExecutor, SharedLedger, line, nats_server

from fleetmedic.heal.guard import Fleet
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.replicas import ClaimingController, Replica, replica_controller
from fleetmedic.heal.replicas_nats import CONSUMER, STREAM, Bus, NatsSettings, connect
from fleetmedic.heal.state import ControlStore

pytestmark = [pytest.mark.services, pytest.mark.slow]


def settings(url: str, replica: str) -> NatsSettings:
    return NatsSettings(
        url=url,
        replica=replica,
        lease_seconds=1.5,
        ack_wait_seconds=3.0,
        retry_seconds=0.2,
        request_seconds=2.0,
    )


@dataclass
class Running:
    replica: Replica
    bus: Bus
    executor: LedgerExecutor
    controller: ClaimingController
    stop: asyncio.Event
    task: asyncio.Task[object]


@dataclass
class Cluster:
    url: str
    tmp: Path
    ledger: SharedLedger = field(default_factory=SharedLedger)
    running: dict[str, Running] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    async def start(self, name: str) -> Running:
        control = ControlStore(self.tmp / f"{name}.sqlite")
        executor = LedgerExecutor(self.ledger, name)
        controller = replica_controller(
            control,
            parse_policies(POLICIES),
            Fleet({n: "pool" for n in NODES}),
            executor,
            lambda: datetime.now(UTC),
        )
        bus = await connect(settings(self.url, name), self.warnings.append)
        replica = Replica(controller, bus, batch=8, warn=self.warnings.append)
        stop = asyncio.Event()
        task: asyncio.Task[object] = asyncio.create_task(replica.run(stop))
        self.running[name] = Running(replica, bus, executor, controller, stop, task)
        return self.running[name]

    async def kill(self, name: str) -> None:
        """As if the process died: no lease released, nothing acked, the connection dropped."""
        victim = self.running.pop(name)
        victim.executor.dead = True
        victim.task.cancel()
        await asyncio.gather(victim.task, return_exceptions=True)
        await victim.bus.nc.close()
        victim.executor.release.set()

    async def stop_all(self) -> None:
        for running in self.running.values():
            running.stop.set()
        await asyncio.gather(*(r.task for r in self.running.values()), return_exceptions=True)
        for running in self.running.values():
            await running.bus.close()


async def publish(url: str, lines: list[tuple[bytes, str]]) -> None:
    bus = await connect(settings(url, "publisher"), publisher=True)
    try:
        for data, key in lines:
            await bus.publish(data, key)
    finally:
        await bus.close()


async def settled(url: str) -> bool:
    """Every message of the stream delivered and acked."""
    bus = await connect(settings(url, "probe"), publisher=True)
    try:
        info = await bus.js.consumer_info(STREAM, CONSUMER)
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await bus.close()


async def until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
        await asyncio.sleep(0.2)


def events(jobs: range, nodes: list[str], tag: str) -> list[tuple[bytes, str]]:
    """An NCCL failure per job on its node, sent twice with the same id (JetStream drops the
    second) and once more under another id (a second watcher: reaches the replicas)."""
    out = []
    for j in jobs:
        node = nodes[j % len(nodes)]
        data = line("nccl_comm", f"job-{j}", node, f"{tag}-{j}")
        out += [(data, f"{tag}-{j}"), (data, f"{tag}-{j}")]
        out.append((line("nccl_comm", f"job-{j}", node, f"{tag}-{j}-again"), f"{tag}-{j}-again"))
    for node in nodes:
        out.append((line("gpu_hardware", None, node, f"{tag}-{node}"), f"{tag}-{node}"))
    return out


async def scenario(tmp: Path) -> None:
    with nats_server(tmp) as (url, _process):
        cluster = Cluster(url, tmp)
        try:
            a = await cluster.start("a")
            await publish(url, events(range(0, 12), NODES[:3], "one"))
            expected = {f"job-{j}" for j in range(12)} | set(NODES[:3])
            await until(lambda: set(cluster.ledger.per_target()) >= expected, 30, "replica a")
            assert {n for n in a.replica.leases.held if n.startswith("node:")} == {
                "node:n0",
                "node:n1",
                "node:n2",
            }

            await cluster.start("b")
            await cluster.start("c")
            await publish(url, events(range(12, 30), NODES[3:], "two"))
            expected |= {f"job-{j}" for j in range(12, 30)} | set(NODES[3:])
            await until(lambda: set(cluster.ledger.per_target()) >= expected, 30, "three replicas")
            await until(lambda: settled(url), 30, "every message acked")

            # a's next action hangs; a is killed while it hangs, holding n0..n2
            a.executor.block_next = True
            taken = range(100, 106)
            batch = events(taken, NODES[:3], "three")[:-3]  # jobs only
            resend = line("nccl_comm", "job-0", "n0", "resent-later")  # done by a before it died
            await publish(url, [*batch, (resend, "resent-later")])
            await until(lambda: a.executor.blocked.is_set(), 30, "a to start acting")
            await cluster.kill("a")

            expected |= {f"job-{j}" for j in taken}
            await until(lambda: set(cluster.ledger.per_target()) >= expected, 60, "the takeover")
            await until(lambda: settled(url), 30, "every message acked after the takeover")
            await asyncio.sleep(1.0)  # room for a late duplicate to show up
        finally:
            await cluster.stop_all()

        counts = cluster.ledger.per_target()
        assert {t: n for t, n in counts.items() if n != 1} == {}, "acted on more than once"
        assert set(counts) == expected
        assert {f"job-{j}" for j in taken} <= cluster.ledger.by("b") | cluster.ledger.by("c")
        assert not cluster.ledger.by("a") & {f"job-{j}" for j in taken}
        survivors = [r.controller for r in cluster.running.values()]
        assert sum(c.done_elsewhere for c in survivors) >= 1, (
            "the resend of job-0 was not run again"
        )


def test_three_replicas_act_once_per_target_and_take_over_a_dead_one(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path))


async def outage(tmp: Path) -> None:
    with nats_server(tmp) as (url, process):
        cluster = Cluster(url, tmp)
        port = int(url.rsplit(":", 1)[1])
        try:
            await cluster.start("a")
            await publish(url, events(range(3), ["n0"], "before"))
            await until(lambda: len(cluster.ledger.per_target()) == 4, 30, "the first events")
            process.terminate()
            process.wait(10)
            await asyncio.sleep(3)  # fetches and renewals fail meanwhile: warnings, no crash
            with nats_server(tmp, port) as (again, _):
                await publish(again, events(range(3, 6), ["n1"], "after"))
                await until(lambda: len(cluster.ledger.per_target()) == 8, 60, "events after")
        finally:
            await cluster.stop_all()
    assert any("disconnected" in w for w in cluster.warnings)
    assert all("\n" not in w and "Traceback" not in w for w in cluster.warnings)
    assert all(n == 1 for n in cluster.ledger.per_target().values())


def test_a_nats_outage_is_survived_with_one_line_warnings(tmp_path: Path) -> None:
    asyncio.run(outage(tmp_path))


def test_no_nats_is_one_error_and_no_hang(tmp_path: Path) -> None:
    from natskit import free_port

    from fleetmedic.heal.replicas_nats import ReplicaUnavailable

    started = time.monotonic()
    with pytest.raises(ReplicaUnavailable, match=r"cannot connect to nats://127.0.0.1:\d+"):
        asyncio.run(
            connect(
                NatsSettings(
                    url=f"nats://127.0.0.1:{free_port()}", replica="x", request_seconds=0.5
                )
            )
        )
    assert time.monotonic() - started < 5
    assert subprocess is not None


def _engaged(path: Path) -> bool:
    from fleetmedic.heal.state import Switches

    with ControlStore(path) as control:
        return Switches(control).engaged("kill_switch")


async def switches(tmp: Path) -> None:
    from fleetmedic.heal.audit import AuditLog
    from fleetmedic.heal.state import Switches

    with nats_server(tmp) as (url, _):
        cluster = Cluster(url, tmp)
        try:
            await cluster.start("a")
            await cluster.start("b")
            with ControlStore(tmp / "a.sqlite") as operator:  # `heal kill-switch on` in pod a
                Switches(operator).set("kill_switch", True, datetime.now(UTC), "ops", "bad rollout")
            await until(lambda: _engaged(tmp / "b.sqlite"), 15, "b to see the switch")
            await publish(url, events(range(2), ["n0"], "stopped"))
            await until(lambda: settled(url), 30, "the events handled")
        finally:
            await cluster.stop_all()
    assert cluster.ledger.per_target() == {}, "nothing runs with the kill switch on"
    refused = []
    for name in ("a", "b"):
        with ControlStore(tmp / f"{name}.sqlite") as control:
            refused += [a for a in AuditLog(control).all() if "kill switch" in (a.result or "")]
    assert refused and all(a.state == "refused" for a in refused)


def test_the_kill_switch_of_one_replica_stops_them_all(tmp_path: Path) -> None:
    asyncio.run(switches(tmp_path))
