"""On-demand pod logs against the fake API server: every container and rank, the previous
instance, the caps (asked of the server and enforced here), and the logs that cannot be had."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from kube_watch_fake import OBJECTS, FakeApi, session_for

from fleetmedic.sources.kube_logs import LogFetcher, LogLimits, PodLog, wanted
from fleetmedic.sources.kube_records import PodRecord, PodWire, pod_record

RANKS = Path(__file__).parents[2] / "examples" / "oom-cascade"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.load("pytorchjob-llm-7b.json", "job-eval-gemma.json")
    for rank, name in enumerate(["master-0", "worker-0", "worker-1", "worker-2"]):
        fake.log("ml-team", f"llm-7b-{name}", "pytorch", (RANKS / f"rank{rank}.log").read_bytes())
    logs = OBJECTS / "logs"
    fake.log(
        "ml-team", "eval-gemma-q7x9d", "eval", (logs / "eval-gemma-q7x9d.eval.log").read_bytes()
    )
    previous = (logs / "eval-gemma-q7x9d.eval.previous.log").read_bytes()
    fake.log("ml-team", "eval-gemma-q7x9d", "eval", previous, previous=True)
    fake.start()
    yield fake
    fake.stop()
    assert fake.crashes == []


def records(api: FakeApi, *names: str) -> list[PodRecord]:
    pods = api.objects[("", "pods")]
    return [
        pod_record(msgspec.json.decode(json.dumps(pods[("ml-team", n)]), type=PodWire))
        for n in names
    ]


def fetch(
    api: FakeApi, pods: list[PodRecord], limits: LogLimits | None = None
) -> tuple[list[PodLog], Any]:
    async def main() -> tuple[list[PodLog], Any]:
        session = session_for(api)
        fetcher = LogFetcher(session, limits)
        try:
            return await fetcher.for_pods(pods), fetcher.stats
        finally:
            await session.aclose()

    return asyncio.run(main())


def test_every_rank_is_fetched_failing_ones_first_with_limits_asked_of_the_server(
    api: FakeApi,
) -> None:
    pods = records(api, "llm-7b-master-0", "llm-7b-worker-0", "llm-7b-worker-1", "llm-7b-worker-2")
    logs, stats = fetch(api, pods, LogLimits(tail_lines=600, bytes_per_log=200_000))
    assert [log.pod for log in logs] == [p.name for p in pods]  # all failed: by rank
    assert all(log.error is None and not log.truncated for log in logs)
    assert b"CUDA out of memory" in logs[3].data
    query = api.calls("log")[0][1]
    assert query == {"container": "pytorch", "tailLines": "600", "limitBytes": "200000"}
    assert stats["fetched"] == 4


def test_a_crash_looping_container_gives_its_previous_instance_first(api: FakeApi) -> None:
    pod = records(api, "eval-gemma-q7x9d")
    assert wanted(pod, 10) == [(pod[0], "eval", True), (pod[0], "eval", False)]
    logs, _ = fetch(api, pod)
    assert logs[0].previous and b"undefined symbol" in logs[0].data
    assert logs[0].name == "ml-team/eval-gemma-q7x9d/eval.previous.log"
    queries = [q for _, q in api.calls("log")]  # fetched concurrently: in any order
    assert sorted(q.get("previous", "") for q in queries) == ["", "true"]


def test_the_size_cap_holds_when_the_server_ignores_limit_bytes(api: FakeApi) -> None:
    api.ignore_log_limits = True
    api.log("ml-team", "llm-7b-worker-2", "pytorch", b"NCCL INFO noise\n" * 4_000_000)  # 64 MB
    pods = records(api, "llm-7b-worker-2")
    logs, stats = fetch(api, pods, LogLimits(bytes_per_log=100_000))
    assert len(logs[0].data) == 100_000 and logs[0].truncated
    assert stats["truncated"] == 1
    document = logs[0].document()
    assert "cut at 100000 bytes" in document.warnings[0]
    assert document.open().read() == logs[0].data


def test_the_bundle_budget_stops_fetching(api: FakeApi) -> None:
    pods = records(api, "llm-7b-master-0", "llm-7b-worker-0", "llm-7b-worker-1", "llm-7b-worker-2")
    limits = LogLimits(bytes_per_log=40_000, bytes_per_bundle=90_000, concurrency=1)
    logs, stats = fetch(api, pods, limits)
    assert [len(log.data) for log in logs] == [40_000, 40_000, 10_000, 0]
    assert logs[3].error is not None and "budget" in logs[3].error
    assert stats["skipped"] == 1


def test_the_pod_limit_keeps_the_failing_pods(api: FakeApi) -> None:
    pods = records(api, "eval-gemma-q7x9d", "llm-7b-master-0", "llm-7b-worker-2")
    healthy = msgspec.structs.replace(pods[1], problem="", phase="Running")
    plan = wanted([healthy, pods[2], pods[0]], 2)
    assert [p.name for p, _, _ in plan] == [
        "llm-7b-worker-2",
        "eval-gemma-q7x9d",
        "eval-gemma-q7x9d",
    ]


def test_logs_that_cannot_be_had_become_warnings(api: FakeApi) -> None:
    pods = records(api, "llm-7b-worker-1", "llm-7b-worker-2")
    api.log("ml-team", "llm-7b-worker-1", "pytorch", bytes(range(256)) * 100)  # a core dump
    api.delete(api.objects[("", "pods")][("ml-team", "llm-7b-worker-2")])  # gone meanwhile
    ghost = msgspec.structs.replace(pods[0], previous=("pytorch",), name="llm-7b-worker-1")
    logs, stats = fetch(api, [ghost, pods[1]])
    by_name = {log.name: log for log in logs}
    assert by_name["ml-team/llm-7b-worker-1/pytorch.log"].error == "binary data, not a log"
    assert (
        "previous terminated container"
        in by_name["ml-team/llm-7b-worker-1/pytorch.previous.log"].error
    )
    assert "404 NotFound" in by_name["ml-team/llm-7b-worker-2/pytorch.log"].error
    document = by_name["ml-team/llm-7b-worker-2/pytorch.log"].document()
    assert document.opener is None and "not found" in document.warnings[0]
    assert stats["binary"] == 1 and stats["errors"] == 2


def test_a_stalled_log_times_out_instead_of_hanging(api: FakeApi) -> None:
    async def main() -> PodLog:
        session = session_for(api, timeout=0.5)
        try:
            # a bare TCP server that never answers stands in for a wedged kubelet proxy
            server = await asyncio.start_server(lambda r, w: asyncio.sleep(10), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            session.http.base_url = f"http://127.0.0.1:{port}"  # type: ignore[assignment]
            fetcher = LogFetcher(session, LogLimits(timeout=0.3))
            log = await fetcher.fetch("ml-team", "llm-7b-worker-0", "pytorch", False)
            server.close()
            return log
        finally:
            await session.aclose()

    log = asyncio.run(main())
    assert log.error is not None and ("within 0.3 s" in log.error or "Timeout" in log.error)
