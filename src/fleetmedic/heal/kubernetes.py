"""The :class:`~fleetmedic.model.executor.Executor` for a real cluster, over the Kubernetes API.

Every verb is a few plain API calls (docs/healing.md, "Kubernetes executor"), made with
`lightkube <https://lightkube.readthedocs.io>`_ so they are typed and a test can point the client at
a local fake server. The executor keeps no state of its own: what it did is on the objects (the
node's ``fleetmedic.io/cordon-reason`` annotation, the Job's affinity), so a restarted controller
can run an action again and get the same result.

Failures are translated for the controller: what a later try may fix (conflict, throttling, a
PodDisruptionBudget, a 5xx, a dropped connection) becomes :class:`TemporaryActionError`, a timeout
``TimeoutError``, and what never will (gone, forbidden, invalid) :class:`PermanentActionError`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
from lightkube import ALL_NS, ApiError, Client, KubeConfig
from lightkube.core.client import FieldSelector, LabelSelector
from lightkube.generic_resource import GenericNamespacedResource, create_namespaced_resource
from lightkube.models.batch_v1 import JobStatus as JobStatusModel
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job, JobStatus
from lightkube.resources.core_v1 import Node, Pod, PodEviction
from lightkube.types import PatchType

from fleetmedic.model.executor import PermanentActionError, TemporaryActionError

JobKind = Literal["Job", "PyTorchJob", "auto"]

CORDON_REASON = "fleetmedic.io/cordon-reason"
"""Marks a cordon as fleetmedic's: only such a cordon is ever undone by :meth:`uncordon`."""
DEFAULT_CORDON_REASON = "fleetmedic: a failure on this node was diagnosed as a node fault"
HOSTNAME = "kubernetes.io/hostname"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
PYTORCH_JOB_LABEL = "training.kubeflow.org/job-name"
MIRROR_POD = "kubernetes.io/config.mirror"

PyTorchJob = create_namespaced_resource("kubeflow.org", "v1", "PyTorchJob", "pytorchjobs")
"""Kubeflow training-operator's PyTorchJob (a CRD, so a generic, dict-like resource)."""

_TEMPORARY_CODES = frozenset({408, 409, 425, 429})
_JOB_DONE = frozenset({"Complete", "Failed"})
_PYTORCH_DONE = frozenset({"Succeeded", "Failed"})
_POD_DONE = frozenset({"Succeeded", "Failed"})
_MERGE = PatchType.MERGE


@dataclass(frozen=True)
class JobRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_job(job: str, default_namespace: str) -> JobRef:
    """``name``, ``namespace/name``, or the trace importer's ``[source:]namespace/job/name``.

    Kubernetes names never contain ``:``, so anything before the last one is a source prefix.
    """
    parts = job.rsplit(":", 1)[-1].split("/")
    if len(parts) == 3 and parts[1] == "job":
        parts = [parts[0], parts[2]]
    if len(parts) == 1:
        parts = [default_namespace, parts[0]]
    if len(parts) != 2 or not all(parts):
        raise PermanentActionError(f"job id {job!r} is not 'namespace/name' or 'name'")
    return JobRef(parts[0], parts[1])


# errors ------------------------------------------------------------------------------------------
def _classify(what: str, code: int, detail: str) -> TemporaryActionError | PermanentActionError:
    message = f"{what}: HTTP {code} {detail}".rstrip()
    if code in _TEMPORARY_CODES or code >= 500:
        return TemporaryActionError(message)
    return PermanentActionError(message)


def _code(exc: ApiError) -> int:
    return exc.status.code or exc.response.status_code


@contextmanager
def _api(what: str) -> Iterator[None]:
    """Translate client failures into the errors the controller acts on; ``what`` names the call.

    lightkube raises :class:`ApiError` only for JSON bodies; a proxy's plain-text 502 arrives as a
    bare ``HTTPStatusError`` and must be classified by its code all the same.
    """
    try:
        yield
    except ApiError as exc:
        detail = f"{exc.status.reason or ''}: {exc.status.message or ''}"
        raise _classify(what, _code(exc), detail) from exc
    except httpx2.HTTPStatusError as exc:
        response = exc.response
        raise _classify(what, response.status_code, response.text[:200]) from exc
    except httpx2.TimeoutException as exc:
        raise TimeoutError(f"{what}: the API server did not answer in time ({exc})") from exc
    except httpx2.TransportError as exc:
        raise TemporaryActionError(f"{what}: {type(exc).__name__}: {exc}") from exc


# object helpers ----------------------------------------------------------------------------------
def _meta(obj: Node | Pod | Job) -> ObjectMeta:
    return obj.metadata or ObjectMeta()


def _annotations(obj: Node | Pod) -> Mapping[str, str]:
    return cast(Mapping[str, str], _meta(obj).annotations or {})


def _unschedulable(node: Node) -> bool:
    return bool(node.spec and node.spec.unschedulable)


def _taints(node: Node) -> list[dict[str, Any]]:
    taints = node.spec.taints if node.spec else None
    return [t.to_dict() for t in taints or []]


def _controller_kind(pod: Pod) -> str | None:
    owners = _meta(pod).ownerReferences or []
    return next((o.kind for o in owners if o.controller), None)


def _owned_by(pod: Pod, uid: str | None) -> bool:
    return any(o.uid == uid for o in _meta(pod).ownerReferences or [])


def _phase(pod: Pod) -> str | None:
    return pod.status.phase if pod.status else None


def _skipped_by_drain(pod: Pod) -> bool:
    """DaemonSet pods would come straight back (and their controller ignores cordons); a mirror
    pod is the kubelet's view of a static pod and cannot be evicted; a finished or terminating pod
    holds nothing."""
    return (
        _controller_kind(pod) == "DaemonSet"
        or MIRROR_POD in _annotations(pod)
        or _meta(pod).deletionTimestamp is not None
        or _phase(pod) in _POD_DONE
    )


def _pod_name(pod: Pod) -> tuple[str, str]:
    meta = _meta(pod)
    return meta.namespace or "default", meta.name or ""


def _job_conditions(status: JobStatusModel | None) -> list[tuple[str, str]]:
    return [(c.type, c.status) for c in (status.conditions if status else None) or []]


def _failed(pod: Pod) -> bool:
    return _phase(pod) == "Failed"


def _any_pod(pod: Pod) -> bool:
    return True


def _uid(obj: Mapping[str, Any]) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def _dict_conditions(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return [(str(c.get("type")), str(c.get("status"))) for c in conditions]


def _refuse_finished(
    ref: JobRef, conditions: Iterable[tuple[str, str]], done: frozenset[str]
) -> None:
    """A finished job's controller creates no more pods, so deleting or re-placing them restarts
    nothing: say so instead of reporting success."""
    ended = [kind for kind, status in conditions if kind in done and status == "True"]
    if ended:
        raise PermanentActionError(f"{ref} has already ended ({ended[0]}); resubmit it instead")


def exclude_hosts(affinity: Mapping[str, Any] | None, nodes: Sequence[str]) -> list[dict[str, Any]]:
    """The pod template's required nodeSelectorTerms with ``kubernetes.io/hostname NotIn nodes``.

    Terms are ORed, so the exclusion goes into every term: a term without it would still let the
    pod land on the bad node. An existing NotIn on the hostname is widened, never duplicated, so a
    repeated requeue leaves the same affinity.
    """
    node_affinity = (affinity or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = copy.deepcopy(required.get("nodeSelectorTerms") or [{}])
    for term in terms:
        expressions = term.setdefault("matchExpressions", [])
        current = next(
            (e for e in expressions if e.get("key") == HOSTNAME and e.get("operator") == "NotIn"),
            None,
        )
        if current is None:
            expressions.append({"key": HOSTNAME, "operator": "NotIn", "values": sorted(set(nodes))})
        else:
            current["values"] = sorted(set(current.get("values") or []) | set(nodes))
    return terms


def _affinity_patch(terms: list[dict[str, Any]]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": terms}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def _replica_exclusion(replica: Mapping[str, Any], nodes: Sequence[str]) -> dict[str, Any]:
    """The merge patch for one PyTorchJob replica spec (``Master``, ``Worker``)."""
    pod_spec = (replica.get("template") or {}).get("spec") or {}
    affinity = _affinity_patch(exclude_hosts(pod_spec.get("affinity"), nodes))
    return {"template": {"spec": {"affinity": affinity}}}


class KubernetesExecutor:
    """Heals a cluster through its API server; safe to call again after any failure.

    ``job_kind`` says what a job id names: a batch/v1 ``Job``, a Kubeflow ``PyTorchJob``, or
    ``auto`` (look for a Job first, then a PyTorchJob). ``suspend_timeout`` bounds how long a
    requeue waits for the Job controller to acknowledge the suspension.
    """

    def __init__(
        self,
        client: Client,
        namespace: str = "default",
        *,
        job_kind: JobKind = "Job",
        cordon_reason: str = DEFAULT_CORDON_REASON,
        suspend_timeout: float = 120.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.job_kind: JobKind = job_kind
        self.cordon_reason = cordon_reason
        self.suspend_timeout = suspend_timeout
        self.poll_interval = poll_interval

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | Path | None = None,
        *,
        context: str | None = None,
        namespace: str | None = None,
        timeout: float = 10.0,
        job_kind: JobKind = "Job",
    ) -> KubernetesExecutor:
        """In a pod: the service account; else ``path``, ``$KUBECONFIG`` or ``~/.kube/config``.

        Changes are recorded under the field manager ``fleetmedic``, so ``managedFields`` show who
        cordoned a node or rewrote a Job's affinity.
        """
        kubeconfig = KubeConfig.from_env() if path is None else KubeConfig.from_file(path)
        config = kubeconfig.get(context_name=context)
        client = Client(config=config, timeout=httpx2.Timeout(timeout), field_manager="fleetmedic")
        return cls(client, namespace or str(client.namespace), job_kind=job_kind)

    # nodes -------------------------------------------------------------------------------------
    def cordon(self, node: str, reason: str | None = None) -> None:
        """Mark the node unschedulable and say why.

        A node someone else cordoned is left as it is: writing our reason on it would make the
        cordon ours, and a later :meth:`uncordon` would undo their decision.
        """
        current = self._node(node)
        if _unschedulable(current):
            return
        self._patch_node(
            node,
            {
                "metadata": {
                    "resourceVersion": _meta(current).resourceVersion,
                    "annotations": {CORDON_REASON: reason or self.cordon_reason},
                },
                "spec": {"unschedulable": True},
            },
        )

    def uncordon(self, node: str) -> None:
        """Undo fleetmedic's own cordon; refuse to undo anybody else's (see :meth:`cordon`)."""
        current = self._node(node)
        ours = CORDON_REASON in _annotations(current)
        if _unschedulable(current) and not ours:
            raise PermanentActionError(
                f"{node} was cordoned by someone else, not fleetmedic; leaving it cordoned"
            )
        if not ours:
            return
        self._patch_node(
            node,
            {
                "metadata": {
                    "resourceVersion": _meta(current).resourceVersion,
                    "annotations": {CORDON_REASON: None},
                },
                "spec": {"unschedulable": None},
            },
        )

    def taint(self, node: str, key: str, value: str | None, effect: str) -> None:
        """Add or replace the taint ``key:effect``; every other taint stays.

        Taints are one list on the node, and a patch replaces a list whole, so the list is read,
        changed, and written back under the read ``resourceVersion``: a concurrent change makes the
        write fail with 409 (temporary) instead of silently dropping the other writer's taint.
        """
        current = self._node(node)
        taints = _taints(current)
        wanted: dict[str, Any] = {"key": key, "effect": effect}
        if value is not None:
            wanted["value"] = value
        same = [t for t in taints if (t.get("key"), t.get("effect")) == (key, effect)]
        if [{k: v for k, v in t.items() if k != "timeAdded"} for t in same] == [wanted]:
            return
        kept = [t for t in taints if t not in same]
        self._write_taints(node, current, [*kept, wanted])

    def untaint(self, node: str, key: str) -> None:
        """Remove every taint with ``key`` (whatever its effect); a missing taint is not an error."""
        current = self._node(node)
        taints = _taints(current)
        kept = [t for t in taints if t.get("key") != key]
        if len(kept) != len(taints):
            self._write_taints(node, current, kept)

    def label(self, node: str, key: str, value: str | None) -> None:
        """Set the label, or remove it when ``value`` is None (labels merge key by key)."""
        self._patch_node(node, {"metadata": {"labels": {key: value}}})

    def drain(self, node: str) -> None:
        """Evict every pod on the node through the Eviction API, so PodDisruptionBudgets hold.

        Unlike ``kubectl drain`` this does not wait for the pods to be gone, and evicts pods
        without a controller and with emptyDir volumes too: the node is being taken out for a
        fault. Pods a PodDisruptionBudget protects (429) are named in one
        :class:`TemporaryActionError` after every other pod has been evicted.
        """
        blocked: list[str] = []
        for pod in self._pods(fields={"spec.nodeName": node}):
            if _skipped_by_drain(pod):
                continue
            namespace, name = _pod_name(pod)
            refusal = self._evict(namespace, name)
            if refusal is not None:
                blocked.append(f"{namespace}/{name} ({refusal})")
        if blocked:
            raise TemporaryActionError(
                f"drain {node}: eviction refused for {', '.join(blocked)}; retry later"
            )

    # jobs ----------------------------------------------------------------------------------------
    def restart_from_checkpoint(self, job: str) -> None:
        """Have the job's controller start its pods again; the training code resumes from its own
        last checkpoint.

        A Job loses only its failed pods (the Job controller replaces failed pods while the Job
        is within ``backoffLimit``); a PyTorchJob loses every pod, since all ranks must
        rendezvous again, and the training operator recreates them. A job that has already ended
        is refused: its controller would recreate nothing.
        """
        ref = parse_job(job, self.namespace)
        if self._kind(ref) == "PyTorchJob":
            obj = self._live_pytorchjob(ref)
            self._delete_pods(ref, {PYTORCH_JOB_LABEL: ref.name}, _uid(obj), _any_pod)
        else:
            batch_job = self._live_job(ref)
            self._delete_pods(ref, {JOB_NAME_LABEL: ref.name}, _meta(batch_job).uid, _failed)

    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None:
        """Run the job's pods again, away from ``exclude_nodes``.

        A Job: suspend it (its controller deletes the pods), wait until the controller says so,
        add ``kubernetes.io/hostname NotIn`` to the pod template's required node affinity, resume.
        The API server allows that template change only on a suspended Job without
        ``status.startTime``, which the Job controller does not clear on suspension, so it is
        cleared through the status subresource first, as Kueue does (the API server accepts that
        only while the Job is suspended, hence the order). A Job that was suspended
        before stays suspended: whoever suspended it (a person, a queue) decides when it runs.
        If a step fails once the suspension was asked for, the Job is resumed without the new
        exclusion rather than left idle, and the error is raised.

        A PyTorchJob: add the same exclusion to every replica's template, then delete its pods.
        """
        ref = parse_job(job, self.namespace)
        if self._kind(ref) == "PyTorchJob":
            self._requeue_pytorchjob(ref, exclude_nodes)
            return
        batch_job = self._live_job(ref)
        was_suspended = bool(batch_job.spec and batch_job.spec.suspend)
        try:
            self._patch_job(ref, {"spec": {"suspend": True}})
            self._await_suspended(ref)
            self._clear_start_time(ref)
            self._exclude_from_job(ref, exclude_nodes)
        finally:
            if not was_suspended:
                self._patch_job(ref, {"spec": {"suspend": False}})

    def suspend(self, job: str) -> None:
        """Stop the job's pods and keep it from starting new ones until :meth:`resume`.

        A PyTorchJob is suspended through ``spec.runPolicy.suspend`` (training operator >= 1.7).
        """
        self._set_suspend(parse_job(job, self.namespace), True)

    def resume(self, job: str) -> None:
        self._set_suspend(parse_job(job, self.namespace), False)

    # pods ----------------------------------------------------------------------------------------
    def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete one pod; ``False`` when it was already gone (so a repeated action succeeds)."""
        with _api(f"delete pod {namespace}/{name}"):
            try:
                self.client.delete(Pod, name, namespace=namespace)
            except ApiError as exc:
                if _code(exc) == 404:
                    return False
                raise
        return True

    # internals -------------------------------------------------------------------------------
    def _node(self, node: str) -> Node:
        with _api(f"get node {node}"):
            return self.client.get(Node, node)

    def _patch_node(self, node: str, patch: dict[str, Any]) -> None:
        with _api(f"patch node {node}"):
            self.client.patch(Node, node, patch, patch_type=_MERGE)

    def _write_taints(self, node: str, current: Node, taints: list[dict[str, Any]]) -> None:
        rv = _meta(current).resourceVersion
        self._patch_node(node, {"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}})

    def _pods(
        self,
        namespace: str = ALL_NS,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> list[Pod]:
        where = "all namespaces" if namespace == ALL_NS else namespace
        with _api(f"list pods in {where}"):
            return list(self.client.list(Pod, namespace=namespace, labels=labels, fields=fields))

    def _evict(self, namespace: str, name: str) -> str | None:
        """``None`` once evicted (or already gone); the refusal's message on a 429."""
        eviction = PodEviction(metadata=ObjectMeta(name=name, namespace=namespace))
        with _api(f"evict pod {namespace}/{name}"):
            try:
                self.client.create(eviction, name, namespace=namespace)
            except ApiError as exc:
                if _code(exc) == 404:
                    return None
                if _code(exc) == 429:
                    return exc.status.message or "429 Too Many Requests"
                raise
        return None

    def _delete_pods(
        self, ref: JobRef, labels: LabelSelector, uid: str | None, which: Callable[[Pod], bool]
    ) -> None:
        """Only pods the job owns (by uid): a same-named older job's leftovers are not touched."""
        for pod in self._pods(ref.namespace, labels=labels):
            if _owned_by(pod, uid) and _meta(pod).deletionTimestamp is None and which(pod):
                self.delete_pod(*_pod_name(pod))

    def _kind(self, ref: JobRef) -> Literal["Job", "PyTorchJob"]:
        """The configured kind, or for ``auto`` whichever exists (a Job first)."""
        if self.job_kind != "auto":
            return self.job_kind
        with _api(f"get job {ref}"):
            try:
                self.client.get(Job, ref.name, namespace=ref.namespace)
            except ApiError as exc:
                if _code(exc) != 404:
                    raise
                self.client.get(PyTorchJob, ref.name, namespace=ref.namespace)
                return "PyTorchJob"
        return "Job"

    def _set_suspend(self, ref: JobRef, suspend: bool) -> None:
        if self._kind(ref) == "PyTorchJob":
            self._patch_pytorchjob(ref, {"spec": {"runPolicy": {"suspend": suspend}}})
        else:
            self._patch_job(ref, {"spec": {"suspend": suspend}})

    # batch/v1 Job ------------------------------------------------------------------------------
    def _job(self, ref: JobRef) -> Job:
        with _api(f"get job {ref}"):
            return self.client.get(Job, ref.name, namespace=ref.namespace)

    def _live_job(self, ref: JobRef) -> Job:
        job = self._job(ref)
        _refuse_finished(ref, _job_conditions(job.status), _JOB_DONE)
        return job

    def _patch_job(self, ref: JobRef, patch: dict[str, Any]) -> None:
        with _api(f"patch job {ref}"):
            self.client.patch(Job, ref.name, patch, namespace=ref.namespace, patch_type=_MERGE)

    def _await_suspended(self, ref: JobRef) -> None:
        """The Job controller deletes the pods and sets ``Suspended=True`` in one sync; resuming
        before that could let it see only the resumed Job and keep the old pods running."""
        deadline = time.monotonic() + self.suspend_timeout
        while ("Suspended", "True") not in _job_conditions(self._job(ref).status):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"requeue {ref}: the Job controller did not suspend the job within "
                    f"{self.suspend_timeout:g}s"
                )
            time.sleep(self.poll_interval)

    def _clear_start_time(self, ref: JobRef) -> None:
        with _api(f"clear status.startTime of job {ref}"):
            self.client.patch(
                JobStatus,
                ref.name,
                {"status": {"startTime": None}},
                namespace=ref.namespace,
                patch_type=_MERGE,
            )

    def _exclude_from_job(self, ref: JobRef, nodes: Sequence[str]) -> None:
        """Written under the read ``resourceVersion``: the terms list is replaced whole."""
        if not nodes:
            return
        current = self._job(ref)
        pod_spec = current.spec.template.spec if current.spec else None
        affinity = pod_spec.affinity.to_dict() if pod_spec and pod_spec.affinity else None
        template = {"spec": {"affinity": _affinity_patch(exclude_hosts(affinity, nodes))}}
        rv = _meta(current).resourceVersion
        self._patch_job(ref, {"metadata": {"resourceVersion": rv}, "spec": {"template": template}})

    # kubeflow.org/v1 PyTorchJob ----------------------------------------------------------------
    def _live_pytorchjob(self, ref: JobRef) -> GenericNamespacedResource:
        with _api(f"get pytorchjob {ref}"):
            obj = self.client.get(PyTorchJob, ref.name, namespace=ref.namespace)
        _refuse_finished(ref, _dict_conditions(obj), _PYTORCH_DONE)
        return obj

    def _patch_pytorchjob(self, ref: JobRef, patch: dict[str, Any]) -> None:
        """Custom resources take JSON merge patches only (no strategic merge)."""
        with _api(f"patch pytorchjob {ref}"):
            self.client.patch(
                PyTorchJob, ref.name, patch, namespace=ref.namespace, patch_type=_MERGE
            )

    def _requeue_pytorchjob(self, ref: JobRef, nodes: Sequence[str]) -> None:
        """The training operator builds missing pods from the current replica templates, so a
        changed template followed by deleting the pods places every rank anew."""
        obj = self._live_pytorchjob(ref)
        specs: dict[str, Any] = (obj.get("spec") or {}).get("pytorchReplicaSpecs") or {}
        if nodes and specs:
            replicas = {role: _replica_exclusion(spec, nodes) for role, spec in specs.items()}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            patch = {"metadata": {"resourceVersion": rv}, "spec": {"pytorchReplicaSpecs": replicas}}
            self._patch_pytorchjob(ref, patch)
        self._delete_pods(ref, {PYTORCH_JOB_LABEL: ref.name}, _uid(obj), _any_pod)
