"""The Kubernetes executor against a fake API server (kube_fake) speaking the real REST shapes.

Every assertion is on the server's state or on the requests it received, never on a mock. The
objects are in kube_objects/: three A100 nodes (gpu-a100-09 cordoned by a person), the Job
``ml-team/train-llama`` whose index-1 pod failed on gpu-a100-07, the PyTorchJob
``ml-team/resnet-ddp``, and the pods on those nodes (DaemonSet, mirror, job and serving pods).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from healkit import FakeClock
from kube_fake import FakeKube
from lightkube import ApiError, Client, KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.resources.batch_v1 import Job as K8sJob
from lightkube.resources.batch_v1 import JobStatus as K8sJobStatus
from lightkube.types import PatchType

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.kubernetes import (
    CORDON_REASON,
    HOSTNAME,
    KubernetesExecutor,
    exclude_hosts,
    parse_job,
)
from fleetmedic.heal.policy import PolicySet, load_policies
from fleetmedic.heal.state import ControlStore
from fleetmedic.model.executor import PermanentActionError, TemporaryActionError
from fleetmedic.model.records import ActionRef, Diagnosis, Job

TOKEN = "fake-service-account-token"
RBAC = Path(__file__).parents[2] / "deploy" / "rbac.yaml"
NODE = "/api/v1/nodes/gpu-a100-07"
TRAIN = "/apis/batch/v1/namespaces/ml-team/jobs/train-llama"
ROUTER = ("serving", "llm-router-5d8f7c9b4-xv2lp")
ON_07 = {
    "nvidia-device-plugin-daemonset-7xk2p",
    "nvidia-dcgm-exporter-q8v4z",
    "node-problem-detector-gpu-a100-07",
    "train-llama-0-6k2xq",
    "train-llama-1-p9d4w",
    "resnet-ddp-worker-1",
    "llm-router-5d8f7c9b4-xv2lp",
}


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube()
    fake.load_all()
    fake.start()
    yield fake
    fake.stop()
    assert fake.crashes == []


def client_for(kube: FakeKube, timeout: float = 5.0) -> Client:
    """lightkube 1.0 needs a user (``KubeConfig.from_server`` alone has none): a bearer token."""
    config = KubeConfig.from_one(cluster=Cluster(server=kube.url), user=User(token=TOKEN))
    return Client(config=config, timeout=httpx2.Timeout(timeout), trust_env=False)


@pytest.fixture
def ex(kube: FakeKube) -> Iterator[KubernetesExecutor]:
    client = client_for(kube)
    yield KubernetesExecutor(client, "ml-team", poll_interval=0.01, suspend_timeout=2.0)
    client.close()


def node(kube: FakeKube, name: str = "gpu-a100-07") -> dict[str, Any]:
    obj = kube.get("Node", name)
    assert obj is not None
    return obj


def job(kube: FakeKube, name: str = "train-llama") -> dict[str, Any]:
    obj = kube.get("Job", name, "ml-team")
    assert obj is not None
    return obj


def pods_on(kube: FakeKube, node_name: str) -> set[str]:
    return {
        key[3]
        for key, obj in kube.objects.items()
        if key[1] == "pods" and obj["spec"].get("nodeName") == node_name
    }


def taint_keys(obj: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(t["key"], t.get("value"), t["effect"]) for t in obj["spec"].get("taints", [])]


def required_terms(template_spec: dict[str, Any]) -> list[dict[str, Any]]:
    node_affinity = template_spec["affinity"]["nodeAffinity"]
    terms: list[dict[str, Any]] = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    return terms


# nodes -------------------------------------------------------------------------------------
def test_cordon_marks_the_node_and_says_why(ex: KubernetesExecutor, kube: FakeKube) -> None:
    before = node(kube)
    ex.cordon("gpu-a100-07", reason="Xid 79 on GPU 5")
    after = node(kube)
    assert after["spec"]["unschedulable"] is True
    assert after["metadata"]["annotations"][CORDON_REASON] == "Xid 79 on GPU 5"
    assert after["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] == "0"
    assert taint_keys(after) == taint_keys(before)
    (patch,) = kube.calls("PATCH", NODE)
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_cordon_and_uncordon_are_idempotent(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.cordon("gpu-a100-07")
    ex.cordon("gpu-a100-07")
    assert node(kube)["spec"]["unschedulable"] is True
    assert len(kube.calls("PATCH", NODE)) == 1
    ex.uncordon("gpu-a100-07")
    ex.uncordon("gpu-a100-07")
    after = node(kube)
    assert "unschedulable" not in after["spec"]
    assert CORDON_REASON not in after["metadata"]["annotations"]
    assert len(kube.calls("PATCH", NODE)) == 2


def test_someone_elses_cordon_is_left_to_them(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.cordon("gpu-a100-09")
    assert CORDON_REASON not in node(kube, "gpu-a100-09")["metadata"]["annotations"]
    with pytest.raises(PermanentActionError, match="cordoned by someone else"):
        ex.uncordon("gpu-a100-09")
    assert node(kube, "gpu-a100-09")["spec"]["unschedulable"] is True
    assert kube.calls("PATCH") == []


def test_taint_keeps_the_other_taints(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.taint("gpu-a100-09", "fleetmedic.io/faulty", "xid79", "NoExecute")
    taints = node(kube, "gpu-a100-09")["spec"]["taints"]
    assert [t["key"] for t in taints] == [
        "nvidia.com/gpu",
        "node.kubernetes.io/unschedulable",
        "fleetmedic.io/faulty",
    ]
    assert taints[1]["timeAdded"] == "2026-03-01T22:05:13Z"
    ex.taint("gpu-a100-09", "fleetmedic.io/faulty", "xid48", "NoExecute")
    ex.taint("gpu-a100-09", "fleetmedic.io/faulty", "xid48", "NoExecute")  # no change: no write
    assert taint_keys(node(kube, "gpu-a100-09"))[2:] == [
        ("fleetmedic.io/faulty", "xid48", "NoExecute")
    ]
    assert len(kube.calls("PATCH")) == 2
    ex.untaint("gpu-a100-09", "fleetmedic.io/faulty")
    ex.untaint("gpu-a100-09", "fleetmedic.io/faulty")
    assert [k for k, _, _ in taint_keys(node(kube, "gpu-a100-09"))] == [
        "nvidia.com/gpu",
        "node.kubernetes.io/unschedulable",
    ]


def test_concurrent_node_change_is_a_temporary_conflict(
    ex: KubernetesExecutor, kube: FakeKube
) -> None:
    def other_writer(fake: FakeKube) -> None:
        extra = {"key": "example.com/maintenance", "value": "true", "effect": "NoSchedule"}
        fake.mutate("Node", "gpu-a100-07", "", lambda n: n["spec"]["taints"].append(extra))

    kube.before("PATCH", NODE, other_writer)
    with pytest.raises(TemporaryActionError, match="409 Conflict"):
        ex.taint("gpu-a100-07", "fleetmedic.io/faulty", "xid79", "NoSchedule")
    keys = [k for k, _, _ in taint_keys(node(kube))]
    assert keys == ["nvidia.com/gpu", "example.com/maintenance"]
    ex.taint("gpu-a100-07", "fleetmedic.io/faulty", "xid79", "NoSchedule")  # a retry works
    assert [k for k, _, _ in taint_keys(node(kube))][-1] == "fleetmedic.io/faulty"


def test_label_sets_and_removes(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.label("gpu-a100-07", "fleetmedic.io/state", "repair")
    assert node(kube)["metadata"]["labels"]["fleetmedic.io/state"] == "repair"
    ex.label("gpu-a100-07", "fleetmedic.io/state", None)
    labels = node(kube)["metadata"]["labels"]
    assert "fleetmedic.io/state" not in labels
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"


# drain -------------------------------------------------------------------------------------
def test_drain_evicts_all_but_daemonset_mirror_and_finished_pods(
    ex: KubernetesExecutor, kube: FakeKube
) -> None:
    assert pods_on(kube, "gpu-a100-07") == ON_07
    ex.drain("gpu-a100-07")
    assert pods_on(kube, "gpu-a100-07") == {
        "nvidia-device-plugin-daemonset-7xk2p",
        "nvidia-dcgm-exporter-q8v4z",
        "node-problem-detector-gpu-a100-07",
        "train-llama-1-p9d4w",
    }
    (listing,) = kube.calls("GET", "/api/v1/pods")
    assert listing.query["fieldSelector"] == "spec.nodeName=gpu-a100-07"
    evictions = kube.calls("POST", r"/api/v1/namespaces/.*/pods/.*/eviction")
    assert {e.body["metadata"]["name"] for e in evictions} == {
        "train-llama-0-6k2xq",
        "resnet-ddp-worker-1",
        "llm-router-5d8f7c9b4-xv2lp",
    }
    assert all(e.body["apiVersion"] == "policy/v1" for e in evictions)
    assert all(e.body["kind"] == "Eviction" for e in evictions)
    assert kube.calls("DELETE") == []
    assert pods_on(kube, "gpu-a100-08")  # other nodes untouched


def test_pdb_refusal_is_temporary_and_the_rest_is_evicted(
    ex: KubernetesExecutor, kube: FakeKube
) -> None:
    kube.pdb(*ROUTER, budget="llm-router-pdb")
    with pytest.raises(TemporaryActionError) as caught:
        ex.drain("gpu-a100-07")
    message = str(caught.value)
    assert "serving/llm-router-5d8f7c9b4-xv2lp" in message
    assert "violate the pod's disruption budget" in message
    left = pods_on(kube, "gpu-a100-07")
    assert "llm-router-5d8f7c9b4-xv2lp" in left
    assert not left & {"train-llama-0-6k2xq", "resnet-ddp-worker-1"}
    del kube.blocked_evictions[ROUTER]  # the budget allows it now: the retry finishes the drain
    ex.drain("gpu-a100-07")
    assert "llm-router-5d8f7c9b4-xv2lp" not in pods_on(kube, "gpu-a100-07")


def test_drain_of_a_pod_that_just_went_away_is_fine(ex: KubernetesExecutor, kube: FakeKube) -> None:
    path = "/api/v1/namespaces/ml-team/pods/train-llama-0-6k2xq/eviction"
    gone = ("", "pods", "ml-team", "train-llama-0-6k2xq")
    kube.before("POST", path, lambda fake: fake.objects.pop(gone))
    ex.drain("gpu-a100-07")
    assert kube.calls("POST", path)  # it was asked for, answered 404, and that is fine
    assert "resnet-ddp-worker-1" not in pods_on(kube, "gpu-a100-07")


# errors ------------------------------------------------------------------------------------
def test_missing_node_is_permanent(ex: KubernetesExecutor) -> None:
    with pytest.raises(PermanentActionError, match=r'404 NotFound: nodes "gpu-a100-99" not found'):
        ex.cordon("gpu-a100-99")


def test_forbidden_is_permanent(ex: KubernetesExecutor, kube: FakeKube) -> None:
    kube.forbid("", "nodes", "patch")
    with pytest.raises(PermanentActionError, match=r"403 Forbidden.*cannot patch resource"):
        ex.cordon("gpu-a100-07")
    kube.forbid("", "pods/eviction", "create")
    with pytest.raises(PermanentActionError, match='cannot create resource "pods/eviction"'):
        ex.drain("gpu-a100-07")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (429, "TooManyRequests"),
        (504, "Timeout"),
    ],
)
def test_server_errors_and_throttling_are_temporary(
    ex: KubernetesExecutor, kube: FakeKube, code: int, reason: str
) -> None:
    kube.fail("GET", NODE, code, reason, "etcdserver: request timed out")
    with pytest.raises(TemporaryActionError, match=f"HTTP {code} {reason}"):
        ex.cordon("gpu-a100-07")
    ex.cordon("gpu-a100-07")  # the next try reaches the server
    assert node(kube)["spec"]["unschedulable"] is True


def test_invalid_request_is_permanent(ex: KubernetesExecutor, kube: FakeKube) -> None:
    kube.fail("PATCH", NODE, 422, "Invalid", 'Node "gpu-a100-07" is invalid')
    with pytest.raises(PermanentActionError, match="422 Invalid"):
        ex.cordon("gpu-a100-07")


def test_plain_text_gateway_error_is_temporary(ex: KubernetesExecutor, kube: FakeKube) -> None:
    kube.fail_plain("GET", NODE, 502, "<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(TemporaryActionError, match="HTTP 502"):
        ex.cordon("gpu-a100-07")


def test_dropped_connection_is_temporary(ex: KubernetesExecutor, kube: FakeKube) -> None:
    kube.drop("PATCH", NODE)
    with pytest.raises(TemporaryActionError, match="RemoteProtocolError"):
        ex.cordon("gpu-a100-07")
    assert "unschedulable" not in node(kube)["spec"]


def test_stalled_server_is_a_timeout(kube: FakeKube) -> None:
    kube.stall("GET", NODE, seconds=1.5)
    with (
        client_for(kube, timeout=0.2) as client,
        pytest.raises(TimeoutError, match="did not answer in time"),
    ):
        KubernetesExecutor(client).cordon("gpu-a100-07")


# jobs --------------------------------------------------------------------------------------
def test_restart_deletes_only_the_jobs_failed_pods(ex: KubernetesExecutor, kube: FakeKube) -> None:
    before = kube.names("Pod", "ml-team")
    ex.restart_from_checkpoint("ml-team/train-llama")
    assert before - kube.names("Pod", "ml-team") == {"train-llama-1-p9d4w"}
    # the older same-named job's failed pod and eval-bert's failed pod stay
    assert {"train-llama-0-zz9rt", "eval-bert-kx8q2"} <= kube.names("Pod", "ml-team")
    (listing,) = kube.calls("GET", "/api/v1/namespaces/ml-team/pods")
    assert listing.query["labelSelector"] == "batch.kubernetes.io/job-name=train-llama"
    ex.restart_from_checkpoint("train-llama")  # bare name: default namespace; nothing left to do
    assert len(kube.calls("DELETE")) == 1


def test_restart_of_a_finished_job_is_refused(ex: KubernetesExecutor, kube: FakeKube) -> None:
    failed = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
    kube.mutate("Job", "train-llama", "ml-team", lambda j: j["status"].update(conditions=[failed]))
    with pytest.raises(PermanentActionError, match="already ended"):
        ex.restart_from_checkpoint("ml-team/train-llama")
    assert kube.calls("DELETE") == []


def test_restart_of_a_missing_job_is_permanent(ex: KubernetesExecutor) -> None:
    with pytest.raises(PermanentActionError, match=r'jobs.batch "nope" not found'):
        ex.restart_from_checkpoint("ml-team/nope")


def test_pytorchjob_restart_recreates_every_rank(kube: FakeKube) -> None:
    with client_for(kube) as client:
        KubernetesExecutor(client, "ml-team", job_kind="PyTorchJob").restart_from_checkpoint(
            "resnet-ddp"
        )
    left = kube.names("Pod", "ml-team")
    assert not any(name.startswith("resnet-ddp-") for name in left)
    assert "train-llama-0-6k2xq" in left
    (listing,) = kube.calls("GET", "/api/v1/namespaces/ml-team/pods")
    assert listing.query["labelSelector"] == "training.kubeflow.org/job-name=resnet-ddp"
    assert kube.calls("GET", "/apis/kubeflow.org/v1/namespaces/ml-team/pytorchjobs/resnet-ddp")


def test_auto_kind_finds_jobs_and_pytorchjobs(kube: FakeKube) -> None:
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", job_kind="auto")
        ex.restart_from_checkpoint("ml-team/resnet-ddp")
        ex.restart_from_checkpoint("ml-team/train-llama")
        with pytest.raises(PermanentActionError, match="not found"):
            ex.restart_from_checkpoint("ml-team/nope")
    left = kube.names("Pod", "ml-team")
    assert "train-llama-1-p9d4w" not in left
    assert not any(name.startswith("resnet-ddp-") for name in left)


def test_requeue_suspends_excludes_the_node_and_resumes(
    ex: KubernetesExecutor, kube: FakeKube
) -> None:
    ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-07"])
    patches = kube.calls("PATCH")
    assert [(p.path, list(p.body["spec"]) if "spec" in p.body else None) for p in patches] == [
        (TRAIN, ["suspend"]),
        (TRAIN + "/status", None),
        (TRAIN, ["template"]),
        (TRAIN, ["suspend"]),
    ]
    assert [patches[0].body["spec"]["suspend"], patches[-1].body["spec"]["suspend"]] == [
        True,
        False,
    ]
    assert patches[1].body == {"status": {"startTime": None}}
    after = job(kube)
    assert after["spec"]["suspend"] is False
    (term,) = required_terms(after["spec"]["template"]["spec"])
    assert term["matchExpressions"] == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-40GB"]},
        {"key": HOSTNAME, "operator": "NotIn", "values": ["gpu-a100-07"]},
    ]
    assert "podAntiAffinity" in after["spec"]["template"]["spec"]["affinity"]
    assert after["status"]["startTime"] != "2026-03-02T08:14:07Z"  # resumed: a new start
    # the Job controller deleted the running pods when it saw the suspension
    assert "train-llama-0-6k2xq" not in kube.names("Pod", "ml-team")


def test_requeue_twice_widens_the_exclusion(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-07"])
    ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-08", "gpu-a100-07"])
    (term,) = required_terms(job(kube)["spec"]["template"]["spec"])
    hostname = [e for e in term["matchExpressions"] if e["key"] == HOSTNAME]
    assert hostname == [
        {"key": HOSTNAME, "operator": "NotIn", "values": ["gpu-a100-07", "gpu-a100-08"]}
    ]


def test_a_failure_after_suspending_resumes_the_job(ex: KubernetesExecutor, kube: FakeKube) -> None:
    kube.forbid("batch", "jobs/status", "patch")
    with pytest.raises(PermanentActionError, match=r'403 Forbidden.*"jobs/status"'):
        ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-07"])
    after = job(kube)
    assert after["spec"]["suspend"] is False  # resumed, not left idle
    assert len(required_terms(after["spec"]["template"]["spec"])[0]["matchExpressions"]) == 1


def test_template_of_a_started_job_is_immutable_even_when_suspended(kube: FakeKube) -> None:
    """Why requeue clears status.startTime: the API server refuses the affinity change otherwise."""
    kube.job_controller = False
    kube.mutate("Job", "train-llama", "ml-team", lambda j: j["spec"].update(suspend=True))
    terms = exclude_hosts(None, ["gpu-a100-07"])
    required = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
    patch = {"spec": {"template": {"spec": {"affinity": {"nodeAffinity": required}}}}}
    with client_for(kube) as client, pytest.raises(ApiError) as caught:
        client.patch(K8sJob, "train-llama", patch, namespace="ml-team", patch_type=PatchType.MERGE)
    assert caught.value.status.code == 422
    assert caught.value.status.message is not None
    assert "field is immutable" in caught.value.status.message


def test_start_time_can_only_be_cleared_while_suspended(kube: FakeKube) -> None:
    """Why requeue suspends before clearing status.startTime, not after."""
    with client_for(kube) as client, pytest.raises(ApiError) as caught:
        client.patch(
            K8sJobStatus,
            "train-llama",
            {"status": {"startTime": None}},
            namespace="ml-team",
            patch_type=PatchType.MERGE,
        )
    assert caught.value.status.code == 422
    assert job(kube)["status"]["startTime"] == "2026-03-02T08:14:07Z"


def test_requeue_leaves_a_suspended_job_suspended(ex: KubernetesExecutor, kube: FakeKube) -> None:
    ex.suspend("ml-team/train-llama")
    assert job(kube)["spec"]["suspend"] is True
    ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-07"])
    after = job(kube)
    assert after["spec"]["suspend"] is True
    assert required_terms(after["spec"]["template"]["spec"])[0]["matchExpressions"][-1][
        "values"
    ] == ["gpu-a100-07"]
    ex.resume("ml-team/train-llama")
    assert job(kube)["spec"]["suspend"] is False


def test_requeue_times_out_without_a_job_controller(kube: FakeKube) -> None:
    kube.job_controller = False
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", suspend_timeout=0.1, poll_interval=0.02)
        with pytest.raises(TimeoutError, match="did not suspend the job"):
            ex.requeue("ml-team/train-llama", exclude_nodes=["gpu-a100-07"])
    after = job(kube)
    assert after["spec"]["suspend"] is False
    assert "nodeAffinity" in after["spec"]["template"]["spec"]["affinity"]
    assert [
        e["key"] for e in required_terms(after["spec"]["template"]["spec"])[0]["matchExpressions"]
    ] == ["nvidia.com/gpu.product"]


def test_pytorchjob_requeue_excludes_the_node_on_every_replica(kube: FakeKube) -> None:
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", job_kind="PyTorchJob")
        ex.requeue("ml-team/resnet-ddp", exclude_nodes=["gpu-a100-07"])
    obj = kube.get("PyTorchJob", "resnet-ddp", "ml-team")
    assert obj is not None
    specs = obj["spec"]["pytorchReplicaSpecs"]
    master = required_terms(specs["Master"]["template"]["spec"])
    worker = required_terms(specs["Worker"]["template"]["spec"])
    assert master == [
        {"matchExpressions": [{"key": HOSTNAME, "operator": "NotIn", "values": ["gpu-a100-07"]}]}
    ]
    assert worker[0]["matchExpressions"][0]["values"] == ["gpu-a100-03", "gpu-a100-07"]
    assert specs["Worker"]["template"]["spec"]["containers"][0]["name"] == "pytorch"
    assert all(p.content_type == "application/merge-patch+json" for p in kube.calls("PATCH"))
    assert not any(name.startswith("resnet-ddp-") for name in kube.names("Pod", "ml-team"))


def test_pytorchjob_suspend_uses_the_run_policy(kube: FakeKube) -> None:
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", job_kind="PyTorchJob")
        ex.suspend("resnet-ddp")
        obj = kube.get("PyTorchJob", "resnet-ddp", "ml-team")
        assert obj is not None and obj["spec"]["runPolicy"] == {
            "cleanPodPolicy": "None",
            "suspend": True,
        }
        ex.resume("resnet-ddp")
    obj = kube.get("PyTorchJob", "resnet-ddp", "ml-team")
    assert obj is not None and obj["spec"]["runPolicy"]["suspend"] is False


def test_delete_pod_is_idempotent(ex: KubernetesExecutor, kube: FakeKube) -> None:
    assert ex.delete_pod("ml-team", "eval-bert-kx8q2") is True
    assert ex.delete_pod("ml-team", "eval-bert-kx8q2") is False
    assert "eval-bert-kx8q2" not in kube.names("Pod", "ml-team")


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("train-llama", ("default", "train-llama")),
        ("ml-team/train-llama", ("ml-team", "train-llama")),
        ("k8s:ml-team/job/train-llama", ("ml-team", "train-llama")),
        ("ml-team/job/train-llama", ("ml-team", "train-llama")),
    ],
)
def test_job_ids(job_id: str, expected: tuple[str, str]) -> None:
    ref = parse_job(job_id, "default")
    assert (ref.namespace, ref.name) == expected


@pytest.mark.parametrize("job_id", ["", "a/b/c/d", "ml-team/", "/x", "ml-team/pod/x"])
def test_bad_job_ids_are_permanent(job_id: str) -> None:
    with pytest.raises(PermanentActionError):
        parse_job(job_id, "default")


def test_exclusion_goes_into_every_term() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]},
                ]
            }
        }
    }
    terms = exclude_hosts(affinity, ["n1"])
    assert all(
        {"key": HOSTNAME, "operator": "NotIn", "values": ["n1"]} in t["matchExpressions"]
        for t in terms
    )
    assert terms[1]["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": ["x"]}]
    assert exclude_hosts(affinity, ["n1"]) == terms  # the input is not modified


# real use ----------------------------------------------------------------------------------
def test_from_kubeconfig(kube: FakeKube, tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "bot", "namespace": "ml-team"}}
        ],
        "current-context": "fake",
        "users": [{"name": "bot", "user": {"token": TOKEN}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    ex = KubernetesExecutor.from_kubeconfig(path)
    try:
        assert ex.namespace == "ml-team"
        ex.cordon("gpu-a100-07")
    finally:
        ex.client.close()
    (patch,) = kube.calls("PATCH", NODE)
    assert patch.query["fieldManager"] == "fleetmedic"
    assert patch.authorization == f"Bearer {TOKEN}"


def auto(policies: PolicySet) -> PolicySet:
    modes = tuple(p.model_copy(update={"mode": "auto"}) for p in policies.policies)
    return policies.model_copy(update={"policies": modes})


def xid_event(attempt: int) -> HealEvent:
    diagnosis = Diagnosis.model_validate(
        {
            "input": f"train-llama-attempt-{attempt}.log",
            "category": "gpu_hardware",
            "owner": "hardware",
            "confidence": 0.95,
            "summary": "Xid 79: GPU has fallen off the bus",
            "action": ActionRef(kind="cordon_and_drain", advice="drain the node for repair"),
            "retryable": True,
            "signature": "xid_79",
            "job_id": "ml-team/train-llama",
            "attempt": attempt,
        }
    )
    job_record = Job(job_id="ml-team/train-llama", status="failed", attempts=attempt)
    return HealEvent(diagnosis=diagnosis, job=job_record, node="gpu-a100-07")


def test_controller_heals_through_the_api(
    kube: FakeKube, control: ControlStore, clock: FakeClock
) -> None:
    """The packaged policies, all switched to auto, drive the executor end to end. They requeue
    off the node at the first hardware faults and cordon it at the third within two weeks."""
    policies = auto(load_policies())
    fleet = Fleet({f"gpu-a100-{i:02d}": "a100-train" for i in range(1, 41)})
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", poll_interval=0.01)
        guard = Guard(policies.guard, fleet, clock)
        controller = Controller(policies, guard, AuditLog(control), ex, clock=clock)
        for attempt in (1, 2):
            early = controller.handle(xid_event(attempt))
            assert [(a.kind, a.state) for a in early] == [("requeue_excluding_node", "done")]
            assert "unschedulable" not in node(kube)["spec"]
            clock.advance(3600)
        third = controller.handle(xid_event(3))
    assert [(a.kind, a.state, a.result) for a in third] == [
        ("cordon_and_drain", "done", "ok"),
        ("requeue_excluding_node", "done", "ok"),
    ]
    cordoned = node(kube)
    assert cordoned["spec"]["unschedulable"] is True
    assert CORDON_REASON in cordoned["metadata"]["annotations"]
    assert pods_on(kube, "gpu-a100-07") == ON_07 - {
        "train-llama-0-6k2xq",
        "resnet-ddp-worker-1",
        "llm-router-5d8f7c9b4-xv2lp",
    }
    after = job(kube)
    assert after["spec"]["suspend"] is False
    excluded = required_terms(after["spec"]["template"]["spec"])[0]["matchExpressions"][-1]
    assert excluded == {"key": HOSTNAME, "operator": "NotIn", "values": ["gpu-a100-07"]}


# RBAC --------------------------------------------------------------------------------------
DECLARED = {
    ("", "nodes", "get"),
    ("", "nodes", "patch"),
    ("", "pods", "list"),
    ("", "pods", "delete"),
    ("", "pods/eviction", "create"),
    ("batch", "jobs", "get"),
    ("batch", "jobs", "patch"),
    ("batch", "jobs/status", "patch"),
    ("kubeflow.org", "pytorchjobs", "get"),
    ("kubeflow.org", "pytorchjobs", "patch"),
}
"""Everything the executor may do. Widening it is a deliberate change to this list and the file."""


def granted(path: Path) -> set[tuple[str, str, str]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_grants_exactly_what_the_executor_uses(kube: FakeKube) -> None:
    """Every verb of the executor, in one process (xdist splits the other tests), against the
    fake; what the server saw must be granted, and nothing beyond :data:`DECLARED`."""
    with client_for(kube) as client:
        ex = KubernetesExecutor(client, "ml-team", job_kind="auto", poll_interval=0.01)
        ex.cordon("gpu-a100-07")
        ex.taint("gpu-a100-07", "fleetmedic.io/faulty", "xid79", "NoSchedule")
        ex.untaint("gpu-a100-07", "fleetmedic.io/faulty")
        ex.label("gpu-a100-07", "fleetmedic.io/state", "repair")
        ex.drain("gpu-a100-07")
        ex.uncordon("gpu-a100-07")
        ex.restart_from_checkpoint("ml-team/train-llama")
        ex.requeue("ml-team/train-llama", ["gpu-a100-07"])
        ex.suspend("ml-team/train-llama")
        ex.resume("ml-team/train-llama")
        ex.requeue("ml-team/resnet-ddp", ["gpu-a100-07"])
        ex.restart_from_checkpoint("ml-team/resnet-ddp")
        ex.suspend("ml-team/resnet-ddp")
        ex.delete_pod("ml-team", "eval-bert-kx8q2")
    rbac = granted(RBAC)
    assert kube.seen() <= rbac, f"not granted: {kube.seen() - rbac}"
    assert rbac == DECLARED, f"beyond the declared list: {rbac - DECLARED}"
    assert kube.seen() == DECLARED, f"granted but never used: {DECLARED - kube.seen()}"
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert binding["roleRef"]["name"] == "fleetmedic-healer"
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "fleetmedic",
            "namespace": account["metadata"]["namespace"],
        }
    ]
