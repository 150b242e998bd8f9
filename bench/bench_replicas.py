"""Benchmark the replica lease overhead on a real nats-server (docs/bench-live.md).

Not a test. The same stream of heal events (an NCCL failure per job, jobs spread over nodes, all
policies ``auto``: one retry each) is handled by

* ``in-process`` — the event pipeline of a single ``heal run`` (no NATS), the reference;
* ``nats x1`` / ``nats x3`` — 1 or 3 replicas (asyncio tasks in one process, each with its own
  NATS connection and control store) on ``nats-server -js``: publish, lease, claim, act, ack.

and the time from the first publish to the last executor call gives actions per second.

    .venv/bin/python bench/bench_replicas.py [--events 2000] [--nodes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "replicas"))

from natskit import POLICIES, LedgerExecutor, SharedLedger, free_port, line

from fleetmedic.heal.events import parse_event
from fleetmedic.heal.guard import Fleet
from fleetmedic.heal.pipeline import Pipeline
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.replicas import Replica, replica_controller
from fleetmedic.heal.replicas_nats import NatsSettings, connect
from fleetmedic.heal.state import ControlStore


def stream(events: int, nodes: int) -> list[bytes]:
    return [line("nccl_comm", f"job-{j}", f"n{j % nodes}", f"e{j}") for j in range(events)]


def controller(tmp: Path, name: str, ledger: SharedLedger, nodes: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return replica_controller(
        ControlStore(tmp / f"{name}.sqlite"),
        parse_policies(POLICIES),
        Fleet({f"n{i}": "p" for i in range(nodes)}),
        LedgerExecutor(ledger, name),
        lambda: datetime.now(UTC),
    )


async def in_process(lines: list[bytes], tmp: Path, nodes: int) -> float:
    ledger = SharedLedger()
    pipeline = Pipeline(controller(tmp, "solo", ledger, nodes))

    async def source():  # type: ignore[no-untyped-def]
        for n, raw in enumerate(lines):
            yield parse_event(raw, n)

    started = time.perf_counter()
    await pipeline.run(source())
    assert len(ledger.per_target()) == len(lines)
    return time.perf_counter() - started


async def replicated(lines: list[bytes], tmp: Path, nodes: int, count: int) -> float:
    port = free_port()
    exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
    server = subprocess.Popen(
        [exe, "-js", "-sd", str(tmp / f"js{count}"), "-p", str(port), "-a", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"nats://127.0.0.1:{port}"
    await asyncio.sleep(0.5)
    ledger = SharedLedger()
    stop = asyncio.Event()
    tasks, buses = [], []
    try:
        for r in range(count):
            name = f"r{count}-{r}"
            bus = await connect(
                NatsSettings(url, name, lease_seconds=5, ack_wait_seconds=10, retry_seconds=0.05)
            )
            buses.append(bus)
            tasks.append(
                asyncio.create_task(
                    Replica(controller(tmp, name, ledger, nodes), bus, batch=64).run(stop)
                )
            )
        publisher = await connect(NatsSettings(url, "publisher"), publisher=True)
        started = time.perf_counter()
        for n, raw in enumerate(lines):
            await publisher.publish(raw, f"e{n}")
        while len(ledger.per_target()) < len(lines):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await publisher.close()
        assert all(v == 1 for v in ledger.per_target().values())
        return elapsed
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for bus in buses:
            await bus.close()
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    lines = stream(args.events, args.nodes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("in-process (no NATS)", asyncio.run(in_process(lines, Path(tmp), args.nodes))))
        for count in (1, 3):
            rows.append(
                (
                    f"nats, {count} replica(s)",
                    asyncio.run(replicated(lines, Path(tmp), args.nodes, count)),
                )
            )
    print(f"{args.events} events -> {args.events} retries, jobs on {args.nodes} nodes")
    print("| run | seconds | actions/s |")
    print("| --- | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {args.events / seconds:,.0f} |")


if __name__ == "__main__":
    main()
