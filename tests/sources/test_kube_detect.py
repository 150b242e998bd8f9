"""The detector on recorded object shapes: what opens an episode, what joins it, what is a
duplicate, what each attempt is, what a bundle holds, and when a cause is cleared.

The clock is a number the tests move; no server, no sleeping.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kube_watch_fake import fixture, healthy, running

from fleetmedic.sources.kube_detect import Caches, Detector
from fleetmedic.sources.kube_records import workload_kind
from fleetmedic.sources.kube_watch import KINDS, Change, decode
from fleetmedic.sources.signals import NodeSignal

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


class Rig:
    def __init__(self, settle: float = 5.0, **options: Any) -> None:
        self.t = 0.0
        self.caches = Caches()
        self.detector = Detector(
            self.caches, settle=settle, clock=lambda: self.t, now=lambda: NOW, **options
        )

    def feed(self, obj: dict[str, Any], *, initial: bool = False, delete: bool = False) -> None:
        """What a watcher does with one object: store it, then report the change."""
        api = obj.get("apiVersion", "v1")
        kind = workload_kind(api, obj["kind"]) or obj["kind"]
        spec = KINDS[kind]
        record, _ = decode(spec, json.dumps(obj).encode())
        if record is None:
            return
        store: Any = {
            "pod": self.caches.pods,
            "node": self.caches.nodes,
            "job": self.caches.jobs,
            "event": self.caches.events,
        }[spec.role]
        if delete:
            self.detector.on_change(Change(kind, "DELETED", store.remove(record.key), None))
            return
        old = store.put(record)
        self.detector.on_change(Change(kind, "MODIFIED" if old else "ADDED", old, record, initial))

    def later(self, seconds: float) -> list[Any]:
        self.t += seconds
        return self.detector.due()


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(copy.deepcopy(o) for o in items if o["metadata"]["name"] == name)


@pytest.fixture
def gang() -> list[dict[str, Any]]:
    return fixture("pytorchjob-llm-7b.json")


def start_gang(rig: Rig, gang: list[dict[str, Any]]) -> None:
    job = copy.deepcopy(gang[0])
    job["status"]["conditions"] = job["status"]["conditions"][:1]
    rig.feed(job, initial=True)
    for obj in gang[1:]:
        rig.feed(running(obj), initial=True)
    for node in fixture("nodes.json"):
        rig.feed(node, initial=True)


# gangs ---------------------------------------------------------------------------------------
def test_a_gang_failing_together_is_one_episode_with_every_rank(gang: list[dict[str, Any]]) -> None:
    rig = Rig()
    start_gang(rig, gang)
    for obj in gang[1:]:
        rig.feed(obj)
        rig.t += 0.5
    rig.feed(gang[0])  # the PyTorchJob's Failed condition follows
    assert rig.later(1.0) == []  # not settled yet
    [bundle] = rig.later(5.0)
    assert (bundle.subject, bundle.attempt, bundle.job_id) == (
        "PyTorchJob/ml-team/llm-7b",
        1,
        "ml-team/llm-7b",
    )
    assert [p.name for p in bundle.pods] == [
        "llm-7b-master-0",
        "llm-7b-worker-0",
        "llm-7b-worker-1",
        "llm-7b-worker-2",
    ]
    names = [d.name for d in bundle.documents]
    assert names[0] == "pytorchjob/ml-team/llm-7b" and "pod/ml-team/llm-7b-worker-2" in names
    assert bundle.job is not None and bundle.job.status == "failed" and bundle.job.num_gpus == 16
    assert bundle.node == "gpu-h100-01"
    assert rig.detector.stats["joined"] == 4


def test_a_flapping_pod_is_diagnosed_once(gang: list[dict[str, Any]]) -> None:
    rig = Rig()
    start_gang(rig, gang)
    worker = named(gang, "llm-7b-worker-2")
    rig.feed(worker)
    assert len(rig.later(10)) == 1
    for _ in range(5):  # back to Running and Failed again, same pod
        rig.feed(running(worker))
        rig.feed(worker)
    assert rig.later(10) == []
    assert rig.detector.stats["duplicates"] == 5


def test_a_new_incarnation_failing_is_the_next_attempt(gang: list[dict[str, Any]]) -> None:
    rig = Rig()
    start_gang(rig, gang)
    worker = named(gang, "llm-7b-worker-2")
    rig.feed(worker)
    [first] = rig.later(10)
    again = copy.deepcopy(worker)
    again["metadata"]["uid"] = "99999999-0000-4000-8000-000000000001"  # recreated by the operator
    again["metadata"]["creationTimestamp"] = "2026-03-04T10:33:00Z"
    rig.feed(running(again))
    rig.feed(again)
    [second] = rig.later(10)
    assert (first.attempt, second.attempt) == (1, 2)


def test_a_rank_of_the_same_generation_failing_late_is_the_same_attempt(
    gang: list[dict[str, Any]],
) -> None:
    """The Pod watch reconnected after the episode settled: the late ranks are not a retry."""
    rig = Rig()
    start_gang(rig, gang)
    rig.feed(named(gang, "llm-7b-worker-2"))
    [bundle] = rig.later(10)
    assert len(bundle.pods) == 4  # the diagnosis had every rank, failed or not yet
    for name in ("llm-7b-master-0", "llm-7b-worker-0"):
        rig.feed(named(gang, name))
    assert rig.later(10) == []
    assert rig.detector.stats["duplicates"] == 2


def test_a_job_failure_waits_for_its_pods_to_show_it() -> None:
    rig = Rig(settle=1.0)
    job, pod = fixture("job-tokenize-shards.json")
    rig.feed(running(pod))
    rig.feed(job)  # the Job watch is ahead of the Pod watch
    assert rig.later(2) == []  # settled, but no pod shows the failure yet
    rig.feed(pod)
    [bundle] = rig.later(0.1)
    assert any("OOMKilled" in f.text for d in bundle.documents for f in d.facts)
    rig.feed(fixture("crds.json")[3])  # an MPIJob whose pods are not watched here
    assert rig.later(5.0) == []
    assert [b.subject for b in rig.later(1.1)] == ["MPIJob/ml-team/hpl-burnin"]


def test_volcano_attempts_come_from_its_retry_count() -> None:
    rig = Rig()
    volcano = fixture("crds.json")[0]
    rig.feed(volcano)
    [bundle] = rig.later(31)  # no pod of it showed the failure: closed after waiting for one
    assert (bundle.subject, bundle.attempt) == ("VolcanoJob/ml-team/sd-finetune", 3)
    assert any("Phase: Failed Reason: PodFailed" in f.text for f in bundle.documents[0].facts)


# batch Jobs ----------------------------------------------------------------------------------
def test_each_failed_pod_of_a_batch_job_is_an_attempt_and_the_job_failure_is_the_last() -> None:
    rig = Rig()
    job, pod = fixture("job-tokenize-shards.json")
    before = copy.deepcopy(job)
    before["status"] = {"active": 1, "startTime": "2026-03-04T09:00:00Z"}
    rig.feed(before)
    rig.feed(running(pod))
    rig.feed(pod)
    rig.feed(job)  # Failed, status.failed = 1: the same attempt
    [bundle] = rig.later(10)
    assert (bundle.subject, bundle.attempt) == ("Job/ml-team/tokenize-shards", 1)
    assert rig.detector.stats["joined"] == 1
    second = copy.deepcopy(pod)
    second["metadata"].update(
        name="tokenize-shards-2b9vz", uid="2b9vz000-0000-4000-8000-000000000002"
    )
    second["metadata"]["creationTimestamp"] = "2026-03-04T09:45:00Z"
    rig.feed(second)
    [again] = rig.later(10)
    assert again.attempt == 2


def test_a_crash_loop_is_one_episode_and_clears_when_the_pod_runs() -> None:
    rig = Rig()
    job, pod = fixture("job-eval-gemma.json")
    rig.feed(job)
    rig.feed(running(pod))
    rig.feed(pod)
    [bundle] = rig.later(10)
    assert "CrashLoopBackOff" in bundle.reason
    assert bundle.pods[0].previous == ("eval",)
    looping = copy.deepcopy(pod)
    for restarts in range(5, 9):
        looping["status"]["containerStatuses"][0]["restartCount"] = restarts
        rig.feed(looping)
    assert rig.later(10) == []
    rig.feed(running(pod))
    assert rig.detector.take_cleared() == ["Job/ml-team/eval-gemma"]


def test_pods_of_other_controllers_are_left_alone(gang: list[dict[str, Any]]) -> None:
    rig = Rig()
    serving = named(gang, "llm-7b-worker-2")
    serving["metadata"]["ownerReferences"][0].update(apiVersion="apps/v1", kind="ReplicaSet")
    rig.feed(serving)
    assert rig.later(10) == []


def test_at_start_only_recent_failures_are_diagnosed(gang: list[dict[str, Any]]) -> None:
    rig = Rig(since=timedelta(minutes=15))
    for obj in gang:  # failed at 10:31, two hours before NOW
        rig.feed(obj, initial=True)
    rig.feed(fixture("job-eval-gemma.json")[1], initial=True)  # stuck now: always current
    [bundle] = rig.later(10)
    assert bundle.subject == "Job/ml-team/eval-gemma"
    assert rig.detector.stats["old_failures"] == 5
    recent = Rig(since=timedelta(hours=3))
    for obj in gang:
        recent.feed(obj, initial=True)
    assert [b.subject for b in recent.later(10)] == ["PyTorchJob/ml-team/llm-7b"]


def test_an_evicted_workload_is_an_episode_of_the_job_it_admits() -> None:
    rig = Rig()
    job = fixture("job-tokenize-shards.json")[0]
    job["status"] = {"active": 1}
    rig.feed(job)
    rig.feed(fixture("crds.json")[2])
    [bundle] = rig.later(31)
    assert (bundle.subject, bundle.attempt) == ("Job/ml-team/tokenize-shards", 2)
    workload = next(d for d in bundle.documents if d.name.startswith("workload/"))
    assert workload.name == "workload/ml-team/job-tokenize-shards-2f1a3"
    assert any("Evicted=True Reason: Preempted" in f.text for f in workload.facts)


# nodes and signals ---------------------------------------------------------------------------
def test_a_node_going_not_ready_and_back_is_one_cause_then_cleared() -> None:
    rig = Rig()
    lost = fixture("nodes.json")[2]
    rig.feed(healthy(lost))
    rig.feed(lost)
    [bundle] = rig.later(10)
    assert bundle.job_id is None and bundle.node == "gpu-h100-03"
    assert bundle.ref == "node:gpu-h100-03:NotReady@2026-03-04T11:20:41+00:00"
    assert any("Ready=Unknown" in f.text for d in bundle.documents for f in d.facts)
    rig.feed(healthy(lost))
    assert rig.detector.take_cleared() == [bundle.ref]


def test_an_xid_event_and_an_alert_together_are_one_node_episode() -> None:
    rig = Rig()
    xid = fixture("events.json")[0]
    rig.feed(xid)
    alert = NodeSignal("gpu-h100-02", "alert:abc@t", "firing", ("NVIDIA Xid 79 reported",))
    rig.detector.on_signal(alert)
    bumped = copy.deepcopy(xid)
    bumped["count"] = 2  # the same event, counted again
    rig.feed(bumped)
    rig.detector.on_signal(alert)  # Alertmanager's resend
    [bundle] = rig.later(10)
    assert bundle.refs == (f"event:{xid['metadata']['uid']}", "alert:abc@t")
    texts = [f.text for d in bundle.documents for f in d.facts]
    assert any("NVRM: Xid (PCI:0000:c1:00): 79" in t for t in texts)
    assert rig.detector.stats["duplicates"] == 2
    rig.detector.on_signal(NodeSignal("gpu-h100-02", "alert:abc@t", "resolved"))
    assert rig.detector.take_cleared() == ["alert:abc@t"]
    assert rig.caches.signals == {}


def test_a_firing_alert_is_part_of_a_job_bundle_on_its_node(gang: list[dict[str, Any]]) -> None:
    rig = Rig()
    start_gang(rig, gang)
    rig.detector.on_signal(NodeSignal("gpu-h100-02", "alert:x@t", "firing", ("NVIDIA Xid 79",)))
    rig.later(10)  # the node episode
    rig.feed(named(gang, "llm-7b-worker-2"))
    [bundle] = rig.later(10)
    nodes = next(d for d in bundle.documents if d.name == "nodes")
    assert [f.text for f in nodes.facts] == ["NVIDIA Xid 79"]


# bounds --------------------------------------------------------------------------------------
def test_open_episodes_and_memory_of_closed_ones_are_bounded(gang: list[dict[str, Any]]) -> None:
    rig = Rig(max_open=3, remember=5)
    worker = named(gang, "llm-7b-worker-2")
    for i in range(10):
        pod = copy.deepcopy(worker)
        pod["metadata"]["ownerReferences"][0]["name"] = f"job-{i}"
        pod["metadata"].update(name=f"job-{i}-worker-0", uid=f"uid-{i}")
        rig.feed(pod)
    assert len(rig.detector.open) == 3 and rig.detector.stats["forced"] == 7
    assert len(rig.later(10)) == 10
    assert len(rig.detector.closed) == 5 and len(rig.detector.last) == 5
