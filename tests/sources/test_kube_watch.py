"""The watcher against a fake API server speaking the real list and watch protocol (kube_watch_fake).

Every error path of the protocol: 410 as HTTP and as an ERROR event (relist, deletions reported),
429 with Retry-After, 5xx, a stalled stream (read timeout), a dropped stream (resume without
relist), an expired continue token, a CRD that is not installed, malformed and over-long lines.
Sleeps are recorded instead of slept, so backoff is checked without waiting.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from kube_watch_fake import FakeApi, fixture, running, session_for

from fleetmedic.sources.kube_records import (
    NOT_A_JOB,
    JobRecord,
    NodeWire,
    PodRecord,
    PodWire,
    WorkloadWire,
    job_record,
    node_record,
    pod_record,
    workload_kind,
)
from fleetmedic.sources.kube_watch import (
    KINDS,
    Backoff,
    Cache,
    Change,
    EventLog,
    Watcher,
    WatchOptions,
    decode,
)

FAST = WatchOptions(page_size=2, timeout_seconds=(2, 2), read_slack=0.5, absent_recheck=0.05)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi(max_watch_seconds=2)
    fake.load("pytorchjob-llm-7b.json", "job-tokenize-shards.json", "nodes.json", "crds.json")
    fake.start()
    yield fake
    fake.stop()
    assert fake.crashes == []


class Run:
    """One watcher on its own event loop, with its changes, sleeps and warnings recorded."""

    def __init__(self, api: FakeApi, kind: str = "Pod", options: WatchOptions = FAST) -> None:
        self.api = api
        self.changes: list[Change] = []
        self.sleeps: list[float] = []
        self.warnings: list[str] = []
        self.kind = kind
        self.options = options
        self.store: Any = EventLog() if kind == "Event" else Cache(10_000)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0.01)

    def __call__(self, script: Callable[[Watcher], Any], timeout: float = 20.0) -> Watcher:
        async def main() -> Watcher:
            session = session_for(self.api)
            watcher = Watcher(
                session,
                KINDS[self.kind],
                self.store,
                self.changes.append,
                options=self.options,
                backoff=Backoff(rng=random.Random(1)),
                sleep=self._sleep,
                warn=self.warnings.append,
            )
            task = asyncio.create_task(watcher.run())
            try:
                await asyncio.wait_for(script(watcher), timeout)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await session.aclose()
            return watcher

        return asyncio.run(main())

    def types(self) -> list[tuple[str, str]]:
        return [(c.type, (c.new or c.old).key) for c in self.changes]


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def pod(api: FakeApi, name: str) -> dict[str, Any]:
    return copy.deepcopy(api.objects[("", "pods")][("ml-team", name)])


# list, watch, resume ---------------------------------------------------------------------------
def test_list_pages_then_watches_from_the_lists_version(api: FakeApi) -> None:
    run = Run(api)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        listed = w.version
        api.put(running(pod(api, "llm-7b-worker-2")))
        await until(lambda: len(run.changes) == 6)
        assert api.calls("watch")[0][1]["resourceVersion"] == listed

    w = run(script)
    assert [c.type for c in run.changes[:5]] == ["ADDED"] * 5
    assert all(c.initial for c in run.changes[:5])
    assert (run.changes[5].type, run.changes[5].initial) == ("MODIFIED", False)
    assert run.changes[5].new.phase == "Running" and run.changes[5].old.phase == "Failed"
    tokens = [q.get("continue", "") for _, q in api.calls("list")]
    assert tokens[0] == "" and [t.split(":")[0] for t in tokens[1:]] == ["2", "4"]
    watch_query = api.calls("watch")[0][1]
    assert watch_query["allowWatchBookmarks"] == "true" and watch_query["watch"] == "true"
    assert w.stats["relists"] == 1


def test_a_deleted_object_leaves_the_cache(api: FakeApi) -> None:
    run = Run(api)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        api.delete(pod(api, "llm-7b-master-0"))
        await until(lambda: run.changes[-1].type == "DELETED")

    run(script)
    assert run.store.get("ml-team/llm-7b-master-0") is None
    assert run.changes[-1].old.name == "llm-7b-master-0"


def test_bookmarks_move_the_resume_point(api: FakeApi) -> None:
    api.bookmark_every = 0.05
    run = Run(api)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        before = w.version
        api.put(running(pod(api, "llm-7b-worker-0")), event=None)  # a change to another kind
        await until(lambda: w.stats["bookmarks"] > 0 and w.version != before)

    w = run(script)
    assert int(w.version) == api.rv


def test_a_dropped_stream_resumes_where_it_stopped_without_a_relist(api: FakeApi) -> None:
    run = Run(api)
    api.fault("watch:/api/v1/pods", "drop", after=1)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        for name in ("llm-7b-worker-0", "llm-7b-worker-1", "llm-7b-worker-2"):
            api.put(running(pod(api, name)))
        await until(lambda: len(run.changes) == 8)

    w = run(script)
    assert w.stats["relists"] == 1  # the first list only
    assert w.stats["errors"] == 1
    watches = api.calls("watch")
    assert int(watches[1][1]["resourceVersion"]) == int(watches[0][1]["resourceVersion"]) + 1
    assert [t for t, _ in run.types()[5:]] == ["MODIFIED"] * 3


@pytest.mark.parametrize("gone", ["http", "event"])
def test_410_gone_relists_and_reports_what_vanished_meanwhile(api: FakeApi, gone: str) -> None:
    api.gone = gone
    run = Run(api)
    api.fault("watch:/api/v1/pods", "status", code=503, reason="ServiceUnavailable", times=10**6)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        await until(lambda: w.stats["errors"] >= 1)
        api.delete(pod(api, "llm-7b-master-0"))  # while nobody watches
        api.compact()
        api.faults.clear()
        await until(lambda: w.stats["relists"] == 2)

    w = run(script)
    assert w.stats["gone"] == 1
    deleted = [c for c in run.changes if c.type == "DELETED"]
    assert [c.old.name for c in deleted] == ["llm-7b-master-0"]
    assert all(not c.initial for c in run.changes[5:])
    assert len(run.store) == 4


def test_429_waits_as_long_as_retry_after_says(api: FakeApi) -> None:
    run = Run(api)
    api.fault("watch:/api/v1/pods", "status", code=429, reason="TooManyRequests", retry_after="7")

    async def script(w: Watcher) -> None:
        await until(lambda: len(api.calls("watch")) >= 2)

    w = run(script)
    assert 7.0 <= run.sleeps[0] <= 8.0
    assert w.stats["throttled"] == 1
    assert w.stats["relists"] == 1  # resumed from the version, not relisted


def test_server_errors_back_off_exponentially_with_jitter(api: FakeApi) -> None:
    run = Run(api)
    api.fault("watch:/api/v1/pods", "status", code=503, reason="ServiceUnavailable", times=5)

    async def script(w: Watcher) -> None:
        await until(lambda: len(api.calls("watch")) >= 6)

    w = run(script)
    for n, slept in enumerate(run.sleeps[:5]):
        full = min(30.0, 0.5 * 2**n)
        assert full / 2 <= slept <= full
    assert w.stats["errors"] == 5
    assert run.warnings == ["watch Pod: HTTP 503 ServiceUnavailable: injected ServiceUnavailable"]


def test_a_stalled_stream_times_out_and_resumes(api: FakeApi) -> None:
    run = Run(api)
    api.fault("watch:/api/v1/pods", "stall", seconds=4.0)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        await until(lambda: len(api.calls("watch")) >= 2, timeout=15)
        api.put(running(pod(api, "llm-7b-worker-0")))
        await until(lambda: len(run.changes) == 6)

    w = run(script)
    assert w.stats["errors"] == 1
    assert "ReadTimeout" in run.warnings[0]


def test_malformed_and_oversized_lines_are_counted_and_skipped(api: FakeApi) -> None:
    options = WatchOptions(page_size=50, timeout_seconds=(2, 2), read_slack=0.5, max_line=4096)
    run = Run(api, options=options)
    garbage = (
        b"this is not json\n",
        b'{"type": "MODIFIED", "object": {"metadata": 17}}\n',
        b'{"type": "SURPRISE", "object": {}}\n',
        b'{"type": "ADDED", "object": {"metadata": {"name": "' + b"x" * 10_000 + b'"}}}\n',
        b"\x00\x01\x02\xff\xfe binary\n",
        b'{"type": "ADDED", "object": ' + b"[" * 1500 + b"]" * 1500 + b"}\n",
        b"\n",
    )
    api.fault("watch:/api/v1/pods", "garbage", lines=garbage)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        api.put(running(pod(api, "llm-7b-worker-1")))
        await until(lambda: len(run.changes) == 6)

    w = run(script)
    assert w.stats["malformed"] == 5
    assert w.stats["oversize"] == 1
    assert run.changes[-1].new.name == "llm-7b-worker-1"


def test_an_expired_continue_token_restarts_the_list(api: FakeApi) -> None:
    run = Run(api)

    def expire() -> None:  # a write, then compaction: the first page's token is too old
        api.put(running(pod(api, "llm-7b-worker-0")))
        api.compact()

    pages = iter([expire])
    api.after_page = lambda: next(pages, lambda: None)()

    async def script(w: Watcher) -> None:
        await w.synced.wait()

    w = run(script)
    assert w.stats["gone"] == 1
    assert w.stats["relists"] == 1
    assert len(run.sleeps) == 1  # a list refused with 410 is not retried in a hot loop
    assert len(run.store) == 5
    assert [c.type for c in run.changes] == ["ADDED"] * 2 + ["MODIFIED"] * 2 + ["ADDED"] * 3


def test_a_crd_that_is_not_installed_is_looked_for_again_later(api: FakeApi) -> None:
    run = Run(api, "PyTorchJob")
    api.fault("list:.*/pytorchjobs", "status", code=404, reason="NotFound", times=2)

    async def script(w: Watcher) -> None:
        await w.synced.wait()
        assert w.absent
        await until(lambda: w.stats["relists"] == 1)

    w = run(script)
    assert w.stats["absent"] == 2
    assert run.sleeps[:2] == [0.05, 0.05]
    assert not w.absent and len(run.store) == 1


def test_events_keep_only_what_explains_a_failure(api: FakeApi) -> None:
    api.load("events.json")
    run = Run(api, "Event")

    async def script(w: Watcher) -> None:
        await w.synced.wait()

    run(script)
    log: EventLog = run.store
    assert [e.reason for e in log.about("Node/gpu-h100-02")] == ["GPUXidError"]
    assert [e.reason for e in log.about("Node/gpu-h100-03")] == ["NodeNotReady"]
    assert log.about("Pod/ml-team/llm-7b-worker-2") == []  # a Normal "Started"
    assert "NVRM: Xid (PCI:0000:c1:00): 79" in log.about("Node/gpu-h100-02")[0].fact[0]


# records -------------------------------------------------------------------------------------
def test_pod_records_keep_what_diagnosis_needs_and_little_else() -> None:
    items = fixture("pytorchjob-llm-7b.json")
    worker = next(o for o in items if o["metadata"]["name"] == "llm-7b-worker-2")
    record: PodRecord = pod_record(msgspec.json.decode(json.dumps(worker), type=PodWire))
    assert (record.owner, record.node, record.rank, record.gpus) == (
        "PyTorchJob/ml-team/llm-7b",
        "gpu-h100-02",
        "2",
        4,
    )
    assert record.problem == "Failed" and record.failed_at is not None
    assert any("State: Terminated Reason: Error Exit Code: 1" in f for f, _ in record.facts)
    healthy = pod_record(msgspec.json.decode(json.dumps(running(worker)), type=PodWire))
    assert healthy.facts == () and healthy.problem == ""
    assert len(msgspec.json.encode(healthy)) < len(json.dumps(worker)) / 10


def test_pods_of_other_controllers_are_not_jobs() -> None:
    raw = fixture("pytorchjob-llm-7b.json")[1]
    raw["metadata"]["ownerReferences"][0].update(apiVersion="apps/v1", kind="ReplicaSet")
    assert pod_record(msgspec.json.decode(json.dumps(raw), type=PodWire)).owner == NOT_A_JOB
    raw["metadata"]["ownerReferences"] = []
    assert pod_record(msgspec.json.decode(json.dumps(raw), type=PodWire)).owner == ""


def test_crd_records_say_failed_and_how_many_attempts() -> None:
    records: dict[str, JobRecord] = {}
    for obj in fixture("crds.json"):
        kind = workload_kind(obj["apiVersion"], obj["kind"])
        records[kind] = job_record(kind, msgspec.json.decode(json.dumps(obj), type=WorkloadWire))
    assert records["VolcanoJob"].status == "failed" and records["VolcanoJob"].attempt_hint == 3
    assert records["RayJob"].status == "failed" and records["RayJob"].cluster
    assert records["MPIJob"].status == "failed"
    workload = records["Workload"]
    assert (workload.status, workload.parent, workload.attempt_hint) == (
        "evicted",
        "Job/ml-team/tokenize-shards",
        2,
    )
    assert any("Evicted=True Reason: Preempted" in f for f, _ in workload.facts)


def test_node_records_say_ready_or_not() -> None:
    nodes = {
        o["metadata"]["name"]: node_record(msgspec.json.decode(json.dumps(o), type=NodeWire))
        for o in fixture("nodes.json")
    }
    assert nodes["gpu-h100-01"].ready == "True" and nodes["gpu-h100-01"].facts == ()
    lost = nodes["gpu-h100-03"]
    assert lost.ready == "Unknown" and lost.pool == "p5.48xlarge"
    assert any("condition Ready=Unknown Reason: NodeStatusUnknown" in f for f, _ in lost.facts)


def test_objects_of_the_wrong_shape_raise_for_the_watcher_to_count() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(KINDS["Pod"], b'{"metadata": {"name": 5}}')
    with pytest.raises(msgspec.ValidationError):
        decode(KINDS["Node"], b'{"status": {"conditions": "Ready"}}')


# caches and backoff ----------------------------------------------------------------------------
def _record(name: str, owner: str = "Job/ns/j") -> PodRecord:
    return PodRecord("ns", name, name, owner, "n", "Running", "", "", 0, (), (), 0, "", None, ())


def test_the_cache_is_bounded_and_its_index_follows() -> None:
    cache: Cache[PodRecord] = Cache(3, lambda p: p.owner)
    for i in range(5):
        cache.put(_record(f"p{i}"))
    assert len(cache) == 3 and cache.evicted == 2
    assert {p.name for p in cache.grouped("Job/ns/j")} == {"p2", "p3", "p4"}
    cache.put(_record("p3", owner="Job/ns/other"))
    assert {p.name for p in cache.grouped("Job/ns/j")} == {"p2", "p4"}
    cache.remove("ns/p4")
    cache.remove("ns/p2")
    assert "Job/ns/j" not in cache.index


def test_backoff_doubles_with_jitter_up_to_a_cap_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(3))
    delays = [backoff.next() for _ in range(6)]
    for n, delay in enumerate(delays):
        full = min(8.0, 2.0**n)
        assert full / 2 <= delay <= full
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.next() <= 1.0
    assert 120.0 <= backoff.after(3600) <= 121.0


def test_kinds_sharing_the_jobs_cache_do_not_delete_each_other(api: FakeApi) -> None:
    shared: Cache[Any] = Cache(100)
    jobs, torch = Run(api, "Job"), Run(api, "PyTorchJob")
    jobs.store = torch.store = shared

    async def script(w: Watcher) -> None:
        await w.synced.wait()

    torch(script)
    jobs(script)
    jobs(script)  # a second list of Jobs: the PyTorchJob stays
    assert sorted(shared.items) == ["Job/ml-team/tokenize-shards", "PyTorchJob/ml-team/llm-7b"]
    assert [c.type for c in jobs.changes] == ["ADDED", "MODIFIED"]
