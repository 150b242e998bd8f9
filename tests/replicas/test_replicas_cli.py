"""`fleetmedic heal run --nats` as real processes: one is SIGKILLed, the other takes its targets."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from natskit import NODES, POLICIES, line, nats_server

from fleetmedic.heal.replicas_nats import NatsSettings, connect

pytestmark = [pytest.mark.services, pytest.mark.slow]


def replica(tmp: Path, url: str, name: str, events: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetmedic",
            "heal",
            "run",
            str(events),
            "--nats",
            url,
            "--replica-id",
            name,
            "--control",
            str(tmp / f"{name}.sqlite"),
            "--policies",
            str(tmp / "policies.yaml"),
            "--nodes",
            str(tmp / "nodes.json"),
            "--lease-seconds",
            "2",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def executed(tmp: Path) -> dict[str, list[str]]:
    """Target -> replicas whose audit says they ran an action on it (result ok)."""
    found: dict[str, list[str]] = {}
    for path in sorted(tmp.glob("r*.sqlite")):
        if not path.is_file():
            continue
        con = sqlite3.connect(path, timeout=5)
        try:
            rows = con.execute(
                "SELECT target FROM actions WHERE state = 'done' AND result = 'ok'"
            ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        finally:
            con.close()
        for (target,) in rows:
            found.setdefault(target, []).append(path.stem)
    return found


def wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.3)


async def publish(url: str, lines: list[bytes]) -> None:
    bus = await connect(NatsSettings(url, "test-publisher"), publisher=True)
    try:
        for n, data in enumerate(lines):
            await bus.publish(data, f"later-{n}")
    finally:
        await bus.close()


def test_a_sigkilled_replica_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    nodes = {"items": [{"metadata": {"name": n}, "spec": {}} for n in NODES]}
    (tmp_path / "nodes.json").write_text(json.dumps(nodes))
    first = tmp_path / "first.jsonl"
    first.write_bytes(
        b"\n".join(line("nccl_comm", f"job-{j}", NODES[j % 6], f"e{j}") for j in range(12)) + b"\n"
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with nats_server(tmp_path) as (url, _):
        r2 = replica(tmp_path, url, "r2", first)  # publishes the first events and acts on them
        r1 = None
        try:
            wait(lambda: len(executed(tmp_path)) == 12, 60, "12 retries by r2")
            r1 = replica(tmp_path, url, "r1", empty)
            time.sleep(2)  # r1 up and fetching
            r2.send_signal(signal.SIGKILL)  # dies holding the leases of n0..n5
            r2.wait(10)
            later = [line("nccl_comm", f"job-{j}-b", NODES[j % 6], f"f{j}") for j in range(12)]
            asyncio.run(publish(url, later))
            wait(lambda: len(executed(tmp_path)) == 24, 60, "the takeover")
            time.sleep(1)
        finally:
            for process in (r1, r2):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            r2.communicate(timeout=30)
            out, err = r1.communicate(timeout=30) if r1 is not None else (b"", b"")
    assert r1 is not None and r1.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["replica"] == "r1" and summary["handled"] >= 12
    ran = executed(tmp_path)
    assert all(len(who) == 1 for who in ran.values()), ran
    assert {t for t, who in ran.items() if who == ["r2"]} == {f"job-{j}" for j in range(12)}
    assert {t for t, who in ran.items() if who == ["r1"]} == {f"job-{j}-b" for j in range(12)}
    assert "Traceback" not in err.decode()


def test_heal_run_with_an_unreachable_nats_is_one_line(tmp_path: Path) -> None:
    from natskit import free_port

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetmedic",
            "heal",
            "run",
            str(empty),
            "--nats",
            f"nats://127.0.0.1:{free_port()}",
            "--control",
            str(tmp_path / "c.sqlite"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("fleetmedic: error: nats: cannot connect to nats://127.0.0.1:")
    assert "Traceback" not in result.stderr.decode()
