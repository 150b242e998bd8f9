"""What the watcher keeps of each Kubernetes object: only what a diagnosis needs, in a few hundred bytes.

A pod as the API server sends it is 5 to 20 KB of JSON (env, volumes, managed fields, annotations);
a cluster of 100,000 pods would hold gigabytes. Decoding goes straight from the bytes into the
``*Wire`` structs below (msgspec skips every field they do not name, without building it), and the
wire object is then boiled down to a frozen record: names, phase, node, owner, restart counts, and
the fact lines of whatever is abnormal, in the phrasing of :mod:`kubernetes_objects` so the same
signatures match. Repeated strings (namespaces, nodes, owners, container names) are interned.

A healthy running pod keeps no fact lines; a failed one keeps its few. Objects that do not decode
into these shapes (a field of the wrong type) raise ``msgspec.ValidationError``; the watcher counts
them as malformed and goes on.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import msgspec

from fleetmedic.sources.kubernetes_objects import facts_from_object, parse_time

Fact = tuple[str, datetime | None]

STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Waiting reasons that mean the container will not start by itself: the pod is stuck."""

RANK_LABELS = (
    "training.kubeflow.org/replica-index",
    "batch.kubernetes.io/job-completion-index",
    "volcano.sh/task-index",
    "ray.io/node-type",
)
NOT_A_JOB = "~"
"""The owner of a pod controlled by something that is not a job (a ReplicaSet, a DaemonSet)."""
POOL_LABELS = ("fleetmedic.io/pool", "node.kubernetes.io/instance-type")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_EVENT_NORMAL_REASONS = frozenset(
    {"NodeNotReady", "Preempted", "Evicted", "TaintManagerEviction", "Rebooted", "Killing"}
)


# wire shapes: the subset of each object the records are made from ------------------------------
class OwnerWire(msgspec.Struct, omit_defaults=True, frozen=True):
    apiVersion: str = ""
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class MetaWire(msgspec.Struct, omit_defaults=True, frozen=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    creationTimestamp: str | None = None
    labels: dict[str, str] = {}
    ownerReferences: list[OwnerWire] = []


class ConditionWire(msgspec.Struct, omit_defaults=True, frozen=True):
    type: str = ""
    status: str = ""
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: str | None = None


class StateWire(msgspec.Struct, omit_defaults=True, frozen=True):
    reason: str | None = None
    message: str | None = None
    exitCode: int | None = None
    signal: int | None = None
    startedAt: str | None = None
    finishedAt: str | None = None


class ContainerStatusWire(msgspec.Struct, omit_defaults=True, frozen=True):
    name: str = ""
    restartCount: int = 0
    state: dict[str, StateWire] = {}
    lastState: dict[str, StateWire] = {}


class ResourcesWire(msgspec.Struct, omit_defaults=True, frozen=True):
    limits: dict[str, str | int | float] = {}
    requests: dict[str, str | int | float] = {}


class ContainerWire(msgspec.Struct, omit_defaults=True, frozen=True):
    name: str = ""
    resources: ResourcesWire = ResourcesWire()


class PodSpecWire(msgspec.Struct, omit_defaults=True, frozen=True):
    nodeName: str | None = None
    containers: list[ContainerWire] = []
    initContainers: list[ContainerWire] = []


class PodStatusWire(msgspec.Struct, omit_defaults=True, frozen=True):
    phase: str = ""
    reason: str | None = None
    message: str | None = None
    conditions: list[ConditionWire] = []
    containerStatuses: list[ContainerStatusWire] = []
    initContainerStatuses: list[ContainerStatusWire] = []


class PodWire(msgspec.Struct, omit_defaults=True, frozen=True):
    metadata: MetaWire = MetaWire()
    spec: PodSpecWire = PodSpecWire()
    status: PodStatusWire = PodStatusWire()


class TaintWire(msgspec.Struct, omit_defaults=True, frozen=True):
    key: str = ""
    effect: str = ""
    timeAdded: str | None = None


class NodeSpecWire(msgspec.Struct, omit_defaults=True, frozen=True):
    unschedulable: bool = False
    taints: list[TaintWire] = []


class NodeStatusWire(msgspec.Struct, omit_defaults=True, frozen=True):
    conditions: list[ConditionWire] = []


class NodeWire(msgspec.Struct, omit_defaults=True, frozen=True):
    metadata: MetaWire = MetaWire()
    spec: NodeSpecWire = NodeSpecWire()
    status: NodeStatusWire = NodeStatusWire()


class VolcanoStateWire(msgspec.Struct, omit_defaults=True, frozen=True):
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: str | None = None


class RequeueWire(msgspec.Struct, omit_defaults=True, frozen=True):
    count: int = 0


class WorkloadStatusWire(msgspec.Struct, omit_defaults=True, frozen=True):
    """Status fields of batch Jobs and the ML operators' CRDs, all optional."""

    conditions: list[ConditionWire] = []
    active: int = 0
    failed: int = 0
    succeeded: int = 0
    state: VolcanoStateWire | None = None
    retryCount: int = 0
    jobStatus: str | None = None
    jobDeploymentStatus: str | None = None
    rayClusterName: str | None = None
    message: str | None = None
    requeueState: RequeueWire | None = None


class WorkloadWire(msgspec.Struct, omit_defaults=True, frozen=True):
    metadata: MetaWire = MetaWire()
    status: WorkloadStatusWire = WorkloadStatusWire()


class InvolvedWire(msgspec.Struct, omit_defaults=True, frozen=True):
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""


class SourceWire(msgspec.Struct, omit_defaults=True, frozen=True):
    component: str | None = None
    host: str | None = None


class EventWire(msgspec.Struct, omit_defaults=True, frozen=True):
    metadata: MetaWire = MetaWire()
    involvedObject: InvolvedWire = InvolvedWire()
    reason: str = ""
    message: str = ""
    type: str = "Normal"
    count: int = 1
    source: SourceWire = SourceWire()
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    eventTime: str | None = None


# records: what the caches keep -----------------------------------------------------------------
class PodRecord(msgspec.Struct, frozen=True, gc=False):
    namespace: str
    name: str
    uid: str
    owner: str
    """The controlling workload as ``Kind/namespace/name`` (group-qualified kinds, see
    :func:`workload_kind`); ``""`` for a bare pod, :data:`NOT_A_JOB` for pods of ReplicaSets,
    DaemonSets and the like."""
    node: str
    phase: str
    created: str
    rank: str
    restarts: int
    containers: tuple[str, ...]
    previous: tuple[str, ...]
    """Containers that restarted: their previous instance's log holds the crash."""
    gpus: int
    problem: str
    """``Failed``, a stuck waiting reason (``CrashLoopBackOff``...), or ``""``."""
    failed_at: datetime | None
    facts: tuple[Fact, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class NodeRecord(msgspec.Struct, frozen=True, gc=False):
    name: str
    pool: str
    cordoned: bool
    ready: str
    """The Ready condition's status: ``True``, ``False``, ``Unknown`` or ``""`` (not reported)."""
    ready_since: datetime | None
    facts: tuple[Fact, ...]

    @property
    def key(self) -> str:
        return self.name


class JobRecord(msgspec.Struct, frozen=True, gc=False):
    kind: str
    namespace: str
    name: str
    uid: str
    parent: str
    """The workload controlling this one (an MPIJob's launcher Job, a Workload's Job)."""
    status: str
    """``failed``, ``succeeded``, ``running``, ``evicted`` or ``pending``."""
    ended_at: datetime | None
    attempt_hint: int
    """A restart count the operator keeps (Volcano retryCount, Kueue requeues, failed pods): 0 if
    it keeps none."""
    cluster: str
    facts: tuple[Fact, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class EventRecord(msgspec.Struct, frozen=True, gc=False):
    subject: str
    """``Kind/namespace/name`` of the object the event is about (``Node/name`` for nodes)."""
    uid: str
    reason: str
    first_seen: str
    fact: Fact

    @property
    def key(self) -> str:
        return self.uid


# group-qualified kinds ---------------------------------------------------------------------------
_KIND_NAMES = {
    ("batch", "Job"): "Job",
    ("kubeflow.org", "PyTorchJob"): "PyTorchJob",
    ("kubeflow.org", "MPIJob"): "MPIJob",
    ("kueue.x-k8s.io", "Workload"): "Workload",
    ("batch.volcano.sh", "Job"): "VolcanoJob",
    ("ray.io", "RayJob"): "RayJob",
    ("ray.io", "RayCluster"): "RayCluster",
}


def workload_kind(api_version: str, kind: str) -> str:
    """Our name for a workload kind, or ``""``: Volcano's ``Job`` is not batch/v1's ``Job``."""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return _KIND_NAMES.get((group, kind), "")


def _s(text: str) -> str:
    return sys.intern(text)


_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object for every pod with the same container names (a job's ranks share it)."""
    if len(_TUPLES) > 10_000:
        _TUPLES.clear()
    return _TUPLES.setdefault(names, names)


def _controller(meta: MetaWire) -> str:
    for owner in meta.ownerReferences:
        if owner.controller:
            kind = workload_kind(owner.apiVersion, owner.kind)
            return _s(f"{kind}/{meta.namespace}/{owner.name}") if kind else NOT_A_JOB
    return ""


def _facts(kind: str, wire: msgspec.Struct) -> tuple[Fact, ...]:
    obj: dict[str, Any] = msgspec.to_builtins(wire)
    obj["kind"] = kind
    return tuple(facts_from_object(obj))


# pods ----------------------------------------------------------------------------------------
def _gpus(spec: PodSpecWire) -> int:
    total = 0
    for container in spec.containers:
        value = container.resources.limits.get(GPU_RESOURCES[0])
        value = value if value is not None else container.resources.limits.get(GPU_RESOURCES[1])
        try:
            total += int(float(value)) if value is not None else 0
        except ValueError:
            continue
    return total


def _pod_problem(status: PodStatusWire) -> str:
    if status.phase == "Failed":
        return "Failed"
    for cs in (*status.initContainerStatuses, *status.containerStatuses):
        waiting = cs.state.get("waiting")
        if waiting is not None and waiting.reason in STUCK_REASONS:
            return waiting.reason or ""
    return ""


def _abnormal(status: PodStatusWire) -> bool:
    """Whether the pod has anything :func:`facts_from_object` would report (cheap check first)."""
    if status.phase in ("Failed", "Unknown") or status.reason:
        return True
    for c in status.conditions:
        if (c.type, c.status) == ("DisruptionTarget", "True"):
            return True
        if c.type == "PodScheduled" and c.status != "True":
            return True
    return any(
        cs.restartCount or cs.lastState or "running" not in cs.state
        for cs in (*status.initContainerStatuses, *status.containerStatuses)
    )


def _finished(status: PodStatusWire) -> datetime | None:
    times = [
        parse_time(detail.finishedAt)
        for cs in (*status.initContainerStatuses, *status.containerStatuses)
        for detail in (cs.state.get("terminated"), cs.lastState.get("terminated"))
        if detail is not None
    ]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    ended = [parse_time(c.lastTransitionTime) for c in status.conditions if c.type == "Ready"]
    return next((t for t in ended if t is not None), None)


def pod_record(wire: PodWire) -> PodRecord:
    meta, spec, status = wire.metadata, wire.spec, wire.status
    statuses = (*status.initContainerStatuses, *status.containerStatuses)
    names = tuple(c.name for c in (*spec.initContainers, *spec.containers))
    problem = _pod_problem(status)
    rank = next((meta.labels[k] for k in RANK_LABELS if k in meta.labels), "")
    return PodRecord(
        namespace=_s(meta.namespace),
        name=meta.name,
        uid=meta.uid,
        owner=_controller(meta),
        node=_s(spec.nodeName or ""),
        phase=_s(status.phase),
        created=meta.creationTimestamp or "",
        rank=_s(rank),
        restarts=max((cs.restartCount for cs in statuses), default=0),
        containers=_shared(tuple(_s(n) for n in names)),
        previous=_shared(tuple(_s(cs.name) for cs in statuses if cs.restartCount > 0)),
        gpus=_gpus(spec),
        problem=_s(problem),
        failed_at=_finished(status) if problem else None,
        facts=_facts("Pod", wire) if _abnormal(status) else (),
    )


# nodes ---------------------------------------------------------------------------------------
def node_record(wire: NodeWire) -> NodeRecord:
    meta = wire.metadata
    ready = next((c for c in wire.status.conditions if c.type == "Ready"), None)
    pool = next((meta.labels[k] for k in POOL_LABELS if meta.labels.get(k)), "default")
    healthy = ready is not None and ready.status == "True" and not wire.spec.unschedulable
    unhealthy_condition = any(
        (c.type == "Ready") != (c.status == "True") for c in wire.status.conditions
    )
    return NodeRecord(
        name=meta.name,
        pool=_s(pool),
        cordoned=wire.spec.unschedulable,
        ready=_s(ready.status) if ready is not None else "",
        ready_since=parse_time(ready.lastTransitionTime) if ready is not None else None,
        facts=_facts("Node", wire) if not healthy or unhealthy_condition else (),
    )


# jobs and the operators' CRDs -------------------------------------------------------------------
def _true(status: WorkloadStatusWire, *types: str) -> ConditionWire | None:
    return next((c for c in status.conditions if c.type in types and c.status == "True"), None)


def _job_status(kind: str, status: WorkloadStatusWire) -> tuple[str, ConditionWire | None]:
    """The job's state in the controller's terms, and the condition that says so."""
    if kind == "Workload":
        evicted = _true(status, "Evicted", "Preempted")
        if evicted is not None:
            return "evicted", evicted
        finished = _true(status, "Finished")
        if finished is not None:
            return ("failed" if finished.reason == "Failed" else "succeeded"), finished
        return ("running" if _true(status, "Admitted") else "pending"), None
    failed = _true(status, "Failed")
    if failed is not None:
        return "failed", failed
    phase = (status.state.phase if status.state else None) or ""
    if phase in ("Failed", "Aborted", "Terminated") or status.jobStatus == "FAILED":
        return "failed", None
    if status.jobDeploymentStatus == "Failed":
        return "failed", None
    if _true(status, "Complete", "Succeeded") or phase == "Completed":
        return "succeeded", None
    if status.jobStatus == "SUCCEEDED":
        return "succeeded", None
    running = status.active or _true(status, "Running") or phase == "Running"
    return ("running" if running else "pending"), None


def _attempt_hint(kind: str, status: WorkloadStatusWire) -> int:
    if kind == "VolcanoJob":
        return status.retryCount + 1
    if kind == "Workload":
        return (status.requeueState.count if status.requeueState else 0) + 1
    if kind in ("Job", "RayJob"):
        return status.failed
    return 0


def job_record(kind: str, wire: WorkloadWire) -> JobRecord:
    meta, status = wire.metadata, wire.status
    state, condition = _job_status(kind, status)
    ended = parse_time(condition.lastTransitionTime) if condition is not None else None
    if ended is None and status.state is not None:
        ended = parse_time(status.state.lastTransitionTime)
    interesting = state in ("failed", "evicted") or any(
        c.status == "True" and c.type not in ("Running", "Created", "Admitted", "QuotaReserved")
        for c in status.conditions
    )
    return JobRecord(
        kind=kind,
        namespace=_s(meta.namespace),
        name=meta.name,
        uid=meta.uid,
        parent=_controller(meta).replace(NOT_A_JOB, ""),
        status=_s(state),
        ended_at=ended,
        attempt_hint=_attempt_hint(kind, status),
        cluster=status.rayClusterName or "",
        facts=_facts(kind, wire) if interesting else (),
    )


# events --------------------------------------------------------------------------------------
def keep_event(wire: EventWire) -> bool:
    """Warnings, and the few Normal events that explain a failure (node lost, preempted)."""
    return wire.type != "Normal" or wire.reason in _EVENT_NORMAL_REASONS


def event_record(wire: EventWire) -> EventRecord:
    inv = wire.involvedObject
    subject = f"Node/{inv.name}" if inv.kind == "Node" else f"{inv.kind}/{inv.namespace}/{inv.name}"
    obj: dict[str, Any] = msgspec.to_builtins(wire)
    fact = next(iter(facts_from_object(obj)), (f"{wire.type} {wire.reason}", None))
    return EventRecord(
        subject=_s(subject),
        uid=wire.metadata.uid or f"{subject}/{wire.reason}/{wire.firstTimestamp}",
        reason=_s(wire.reason),
        first_seen=wire.firstTimestamp or wire.eventTime or wire.lastTimestamp or "",
        fact=fact,
    )
