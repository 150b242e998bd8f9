"""A real nats-server for the replica tests, and a fake executor several replicas share."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from fleetmedic.model.records import ActionRef, Diagnosis
from fleetmedic.model.taxonomy import category


def nats_binary() -> str:
    found = shutil.which("nats-server") or next(
        (
            str(p)
            for p in (Path("/usr/sbin/nats-server"), Path("/usr/bin/nats-server"))
            if p.is_file()
        ),
        None,
    )
    if found is None:
        pytest.fail(
            "nats-server not found: install the Debian package `nats-server` "
            "(`bash scripts/setup.sh --dev` does, as root)",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nats_server(
    tmp: Path, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``nats-server -js -sd TMP -p PORT`` on loopback; yields its URL and process."""
    port = port or free_port()
    log = (tmp / f"nats-{port}.log").open("ab")
    process = subprocess.Popen(
        [nats_binary(), "-js", "-sd", str(tmp / "jetstream"), "-p", str(port), "-a", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"nats-server exited with {process.returncode}", pytrace=False)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nats-server did not listen within 15 s", pytrace=False)
                time.sleep(0.1)
        yield f"nats://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        log.close()


class SharedLedger:
    """What every replica's executor did: (method, target, replica), thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, str]] = []

    def per_target(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for method, target, _ in self.calls:
                if method in ("restart_from_checkpoint", "cordon"):
                    counts[target] = counts.get(target, 0) + 1
        return counts

    def by(self, replica: str) -> set[str]:
        with self.lock:
            return {
                t
                for m, t, r in self.calls
                if r == replica and m in ("restart_from_checkpoint", "cordon")
            }


class LedgerExecutor:
    """One replica's executor; ``block_next`` makes its next call hang (a replica dying mid-action)."""

    def __init__(self, ledger: SharedLedger, replica: str) -> None:
        self.ledger, self.replica = ledger, replica
        self.block_next = False
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.dead = False

    def _do(self, method: str, target: str) -> None:
        if self.block_next:
            self.block_next = False
            self.blocked.set()
            self.release.wait(60)
        if self.dead:  # the process died before the side effect happened
            return
        with self.ledger.lock:
            self.ledger.calls.append((method, target, self.replica))

    def cordon(self, node: str) -> None:
        self._do("cordon", node)

    def uncordon(self, node: str) -> None:
        self._do("uncordon", node)

    def drain(self, node: str) -> None:
        self._do("drain", node)

    def restart_from_checkpoint(self, job: str) -> None:
        self._do("restart_from_checkpoint", job)

    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None:
        self._do("requeue", job)


NODES = [f"n{i}" for i in range(6)]

POLICIES = """
version: 1
guard:
  burst: 10000
  default_rate_per_hour: 1000000
  max_cordoned_fraction: 1.0
  max_cordoned_fraction_per_pool: 1.0
  min_schedulable_per_pool: 0
  cooldown_seconds: 0
  storm_actions: 100000
policies:
  - name: retry-nccl
    match: {categories: [nccl_comm]}
    action: retry_from_checkpoint
    mode: auto
    retry_budget: {per_job: 10, per_cause: 10}
  - name: cordon-hw
    match: {categories: [gpu_hardware]}
    action: cordon_and_drain
    mode: auto
"""


def diagnosis(cat: str, job_id: str | None, node: str) -> Diagnosis:
    entry = category(cat)
    return Diagnosis(
        input=f"{job_id or node}.log",
        category=cat,
        owner=entry.owner,
        confidence=0.9,
        summary=cat,
        action=ActionRef(kind=entry.action, advice=entry.advice),
        retryable=entry.retryable,
        signature=f"{cat}.sig",
        details={"node": node},
        job_id=job_id,
        attempt=1 if job_id else None,
    )


def line(cat: str, job_id: str | None, node: str, event_id: str) -> bytes:
    envelope = {
        "diagnosis": diagnosis(cat, job_id, node).model_dump(mode="json"),
        "node": node,
        "event_id": event_id,
    }
    return json.dumps(envelope).encode()
