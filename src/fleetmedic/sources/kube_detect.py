"""Notice failures in the watched objects and gather what explains them into a bundle.

Triggers: a pod reaching ``Failed``; a container stuck (``CrashLoopBackOff``, ``ImagePullBackOff``
and the other :data:`~kube_records.STUCK_REASONS`); a job or CRD reaching its failed state; a Kueue
Workload evicted; a node turning NotReady; a node event about an Xid or ECC error; an alert
(:class:`~signals.NodeSignal`).

A trigger opens an **episode** for its subject (a job, or a node) and attempt, left open for
``settle`` seconds: the other ranks of a gang fail within seconds of the first, the job's failed
condition follows, and the diagnosis must see them all to tell rank 3's OOM from the NCCL timeouts
it caused. Then the episode closes into a :class:`Bundle` (the fact documents, the pods whose logs
to fetch, a job snapshot) and is remembered, so the same ``(job, attempt)`` never closes twice: a
pod flapping between MODIFIED events is diagnosed once.

Attempts (what ``(job, attempt)`` counts):

* a batch/v1 Job's pods are its attempts, as the Job controller counts them (``status.failed``):
  the n-th of its pods to fail, by creation time, is attempt n; the Job's own failure is the
  attempt of its last failed pod; a bare pod is attempt 1 of itself;
* gang jobs (PyTorchJob, MPIJob, Volcano Job, RayJob) fail and restart all their pods at once:
  every pod that fails while an episode is open joins it; a pod of an episode already diagnosed
  stays in it; another pod starts the next attempt, numbered from the operator's own count when it
  keeps one (Volcano ``retryCount``, Kueue requeues, RayJob ``failed``) and else by this watcher.

At start, the first list shows every failure still in the cluster; only those newer than
``since`` are diagnosed (a stuck container is always current). Later lists after a 410 report
only changes, like the watch.
"""

from __future__ import annotations

import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fleetmedic.model.inputs import Document, FactLine
from fleetmedic.model.records import Job, JobStatus
from fleetmedic.sources.kube_records import (
    NOT_A_JOB,
    EventRecord,
    Fact,
    JobRecord,
    NodeRecord,
    PodRecord,
)
from fleetmedic.sources.kube_watch import Cache, Change, EventLog
from fleetmedic.sources.signals import NodeSignal

BATCH_KINDS = frozenset({"Job", "Pod"})
PATIENCE = 6
"""An episode opened by a job's state alone waits up to this many ``settle`` periods for one of
its pods to show the failure: the Pod watch may be a reconnect behind the Job watch."""
"""Kinds whose pods are attempts one by one; every other workload kind is a gang."""
HARDWARE_EVENT = re.compile(r"\bxid\b|nvrm|\becc\b|dbe|row.?remap|fallen off the bus", re.I)
_JOB_STATUS: dict[str, JobStatus] = {
    "failed": "failed",
    "evicted": "preempted",
    "succeeded": "succeeded",
    "running": "running",
    "pending": "pending",
}


def _job_of(pod: PodRecord) -> str:
    return "" if pod.owner == NOT_A_JOB else pod.owner


def _parent_of(job: JobRecord) -> str:
    return job.parent


@dataclass
class Caches:
    """Everything the watchers keep; sized for 10k nodes and 100k pods by default."""

    pods: Cache[PodRecord] = field(default_factory=lambda: Cache(250_000, _job_of))
    nodes: Cache[NodeRecord] = field(default_factory=lambda: Cache(50_000))
    jobs: Cache[JobRecord] = field(default_factory=lambda: Cache(200_000, _parent_of))
    events: EventLog = field(default_factory=EventLog)
    signals: dict[str, dict[str, NodeSignal]] = field(default_factory=dict)
    """Firing signals by node, then key."""


@dataclass
class Closed:
    """A diagnosed attempt: its pods, and the creation time of the youngest pod of the job then
    (a pod created no later is of that attempt, even if it fails after the diagnosis)."""

    pods: set[str]
    born: str


@dataclass
class Episode:
    subject: str
    attempt: int
    opened: float
    due: float
    reason: str
    node: str = ""
    refs: list[str] = field(default_factory=list)
    pods: dict[str, PodRecord] = field(default_factory=dict)
    signals: list[NodeSignal] = field(default_factory=list)

    @property
    def is_node(self) -> bool:
        return self.subject.startswith("Node/")


@dataclass(frozen=True)
class Bundle:
    """What one episode needs diagnosed: the k8s facts now, the pods whose logs to fetch."""

    subject: str
    attempt: int
    reason: str
    documents: tuple[Document, ...]
    pods: tuple[PodRecord, ...] = ()
    job: Job | None = None
    node: str | None = None
    ref: str | None = None
    refs: tuple[str, ...] = ()

    @property
    def job_id(self) -> str | None:
        """``namespace/name``, the id the executor takes; ``None`` for a node."""
        if self.subject.startswith("Node/"):
            return None
        return self.subject.split("/", 1)[1]

    @property
    def name(self) -> str:
        return f"{self.subject}#{self.attempt}" if self.ref is None else self.ref


class Detector:
    """Fed by the watchers (:meth:`on_change`) and the alert receiver (:meth:`on_signal`);
    :meth:`due` hands over the bundles whose episode has settled."""

    def __init__(
        self,
        caches: Caches,
        *,
        settle: float = 5.0,
        since: timedelta = timedelta(minutes=15),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        remember: int = 100_000,
        max_open: int = 10_000,
        near: timedelta = timedelta(minutes=10),
    ) -> None:
        self.caches = caches
        self.settle = settle
        self.since = since
        self.clock = clock
        self.now = now
        self.remember = remember
        self.max_open = max_open
        self.near = near
        self.open: dict[str, Episode] = {}
        self.closed: OrderedDict[tuple[str, int], Closed] = OrderedDict()
        self.last: OrderedDict[str, int] = OrderedDict()
        self.refs: OrderedDict[str, None] = OrderedDict()
        self.cleared: list[str] = []
        self.stats: Counter[str] = Counter()
        self._ready: list[Bundle] = []

    # intake ------------------------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        if change.kind == "Pod":
            self._pod(change.old, change.new, change.initial)
        elif change.kind == "Node":
            self._node(change.old, change.new, change.initial)
        elif change.kind == "Event":
            if change.new is not None:
                self._event(change.new, change.initial)
        else:
            self._job(change.old, change.new, change.initial)

    def on_signal(self, signal: NodeSignal) -> None:
        """A signal from outside the cluster's objects (an alert): firing opens a node episode
        once per key; resolved forgets it and reports the cause cleared."""
        book = self.caches.signals
        if signal.status == "resolved":
            if book.get(signal.node, {}).pop(signal.key, None) is not None:
                self.cleared.append(signal.key)
            if not book.get(signal.node, True):
                del book[signal.node]
            return
        book.setdefault(signal.node, {})[signal.key] = signal
        self._node_signal(signal)

    # pods --------------------------------------------------------------------------------------
    def _pod(self, old: PodRecord | None, new: PodRecord | None, initial: bool) -> None:
        if new is None:
            return
        subject = self._subject(new)
        if not subject:
            return
        if not new.problem:
            if old is not None and old.problem and new.phase in ("Running", "Succeeded"):
                self.cleared.append(subject)
            return
        if old is not None and (old.problem, old.uid) == (new.problem, new.uid):
            return
        if initial and new.problem == "Failed" and not self._recent(new.failed_at):
            self.stats["old_failures"] += 1
            return
        attempt = self._attempt(subject, new)
        reason = f"pod {new.key} {new.problem}"
        self._trigger(subject, attempt, reason, new)

    def _subject(self, pod: PodRecord) -> str:
        """The workload the pod belongs to: its controller, that controller's own controller
        (an MPIJob's launcher Job), the RayJob of a RayCluster; the pod itself when bare."""
        if pod.owner == NOT_A_JOB:
            return ""
        if not pod.owner:
            return f"Pod/{pod.namespace}/{pod.name}"
        owner = self.caches.jobs.get(pod.owner)
        if owner is not None and owner.parent:
            return owner.parent
        if pod.owner.startswith("RayCluster/"):
            cluster = pod.owner.rsplit("/", 1)[1]
            for job in self.caches.jobs.items.values():
                if job.kind == "RayJob" and job.cluster == cluster:
                    return job.key
        return pod.owner

    def _attempt(self, subject: str, pod: PodRecord) -> int:
        kind = subject.split("/", 1)[0]
        if kind in BATCH_KINDS:
            troubled = [p for p in self.caches.pods.grouped(subject) if p.problem]
            return 1 + sum((p.created, p.name) < (pod.created, pod.name) for p in troubled)
        episode = self.open.get(subject)
        if episode is not None:
            return episode.attempt
        last = self.last.get(subject, 0)
        closed = self.closed.get((subject, last))
        if closed is not None and (pod.uid in closed.pods or pod.created <= closed.born):
            return last
        job = self.caches.jobs.get(subject)
        return max(job.attempt_hint if job else 0, last + 1)

    # jobs --------------------------------------------------------------------------------------
    def _job(self, old: JobRecord | None, new: JobRecord | None, initial: bool) -> None:
        if new is None:
            if old is not None and old.status in ("failed", "evicted"):
                self.cleared.append((old.parent or old.key) if old.kind == "Workload" else old.key)
            return
        was = old.status if old is not None else ""
        subject = new.parent if new.kind == "Workload" and new.parent else new.key
        if new.status in ("running", "succeeded") and was in ("failed", "evicted"):
            self.cleared.append(subject)
        if new.status not in ("failed", "evicted") or was == new.status:
            return
        if initial and not self._recent(new.ended_at):
            self.stats["old_failures"] += 1
            return
        self._trigger(subject, self._job_attempt(subject, new), f"{new.key} {new.status}", None)

    def _job_attempt(self, subject: str, job: JobRecord) -> int:
        if subject.split("/", 1)[0] == "Job" and job.kind == "Job":
            return max(1, job.attempt_hint)
        episode = self.open.get(subject)
        if episode is not None:
            return episode.attempt
        last = self.last.get(subject, 0)
        if job.status == "evicted":
            return max(job.attempt_hint, last + 1)
        return last or max(job.attempt_hint, 1)

    # nodes and their signals -------------------------------------------------------------------
    def _node(self, old: NodeRecord | None, new: NodeRecord | None, initial: bool) -> None:
        if new is None:
            return
        was = old.ready if old is not None else ""
        if new.ready == "True" and was in ("False", "Unknown"):
            self.cleared.extend(r for r in self.refs if r.startswith(f"node:{new.name}:NotReady@"))
            return
        if new.ready not in ("False", "Unknown") or was in ("False", "Unknown"):
            return
        if initial and not self._recent(new.ready_since):
            self.stats["old_failures"] += 1
            return
        since = new.ready_since.isoformat() if new.ready_since else "?"
        facts = tuple(text for text, _ in new.facts)
        key = f"node:{new.name}:NotReady@{since}"
        self._node_signal(NodeSignal(new.name, key, "firing", facts, at=new.ready_since))

    def _event(self, event: EventRecord, initial: bool) -> None:
        if not event.subject.startswith("Node/") or not HARDWARE_EVENT.search(event.fact[0]):
            return
        if initial and not self._recent(event.fact[1]):
            return
        node = event.subject.split("/", 1)[1]
        signal = NodeSignal(
            node, f"event:{event.uid}", "firing", (event.fact[0],), at=event.fact[1]
        )
        self._node_signal(signal)

    def _node_signal(self, signal: NodeSignal) -> None:
        if signal.key in self.refs:
            self.stats["duplicates"] += 1
            return
        self._remember_ref(signal.key)
        subject = f"Node/{signal.node}"
        episode = self.open.get(subject)
        if episode is None:
            episode = self._open(subject, 1, f"node {signal.node}: {signal.key}", signal.node)
        episode.refs.append(signal.key)
        episode.signals.append(signal)

    # episodes ----------------------------------------------------------------------------------
    def _trigger(self, subject: str, attempt: int, reason: str, pod: PodRecord | None) -> None:
        closed = self.closed.get((subject, attempt))
        if closed is not None:
            self.stats["duplicates"] += 1
            if pod is not None:  # a flapping pod stays in the attempt it was diagnosed in
                closed.pods.add(pod.uid)
            return
        episode = self.open.get(subject)
        if episode is not None and episode.attempt != attempt:
            self._close(episode)  # the next attempt started before the last one settled
            episode = None
        if episode is None:
            episode = self._open(subject, attempt, reason, pod.node if pod else "")
        else:
            self.stats["joined"] += 1
        if pod is not None:
            episode.pods[pod.uid] = pod
            episode.node = episode.node or pod.node

    def _open(self, subject: str, attempt: int, reason: str, node: str) -> Episode:
        if len(self.open) >= self.max_open:
            oldest = next(iter(self.open.values()))
            self._close(oldest)
            self.stats["forced"] += 1
        now = self.clock()
        episode = Episode(subject, attempt, now, now + self.settle, reason, node)
        self.open[subject] = episode
        self.stats["episodes"] += 1
        return episode

    def _close(self, episode: Episode) -> None:
        self.open.pop(episode.subject, None)
        bundle = self._bundle(episode)
        if not episode.is_node:
            born = max((p.created for p in bundle.pods), default="")
            self._remember((episode.subject, episode.attempt), Closed(set(episode.pods), born))
        self.last[episode.subject] = max(self.last.get(episode.subject, 0), episode.attempt)
        self.last.move_to_end(episode.subject)
        while len(self.last) > self.remember:
            self.last.popitem(last=False)
        self._ready.append(bundle)

    def due(self) -> list[Bundle]:
        """Close every settled episode; the bundles, oldest first."""
        now = self.clock()
        for episode in [e for e in self.open.values() if self._settled(e, now)]:
            self._close(episode)
        ready, self._ready = self._ready, []
        return ready

    def _settled(self, episode: Episode, now: float) -> bool:
        if episode.due > now:
            return False
        patient = episode.opened + self.settle * PATIENCE
        return bool(episode.pods) or episode.is_node or now >= patient

    def flush(self) -> list[Bundle]:
        """Close every open episode now (at shutdown)."""
        for episode in list(self.open.values()):
            self._close(episode)
        ready, self._ready = self._ready, []
        return ready

    def take_cleared(self) -> list[str]:
        cleared, self.cleared = self.cleared, []
        return cleared

    def _remember(self, key: tuple[str, int], closed: Closed) -> None:
        self.closed[key] = closed
        while len(self.closed) > self.remember:
            self.closed.popitem(last=False)

    def _remember_ref(self, ref: str) -> None:
        self.refs[ref] = None
        while len(self.refs) > self.remember:
            self.refs.popitem(last=False)

    def _recent(self, when: datetime | None) -> bool:
        return when is not None and when >= self.now() - self.since

    # bundles -----------------------------------------------------------------------------------
    def _bundle(self, episode: Episode) -> Bundle:
        if episode.is_node:
            return self._node_bundle(episode)
        pods = self._pods_of(episode)
        nodes = sorted({p.node for p in pods if p.node})
        span = self._span(episode.subject, pods)
        documents = [*self._job_documents(episode.subject)]
        documents += [_facts_document(f"pod/{p.namespace}/{p.name}", p.facts) for p in pods]
        subjects = [episode.subject, *(f"Pod/{p.namespace}/{p.name}" for p in pods)]
        node_subjects = [f"Node/{n}" for n in nodes]
        documents.append(self._events_document(subjects, node_subjects, span))
        documents.append(self._nodes_document(nodes, span))
        return Bundle(
            subject=episode.subject,
            attempt=episode.attempt,
            reason=episode.reason,
            documents=tuple(d for d in documents if d.facts),
            pods=tuple(pods),
            job=self._job_snapshot(episode, pods),
            node=episode.node or None,
        )

    def _span(self, subject: str, pods: list[PodRecord]) -> tuple[datetime, datetime]:
        """When the failure happened, widened by ``near``: what a node showed outside it (an Xid
        an hour later) did not cause it and must not be blamed for it."""
        job = self.caches.jobs.get(subject)
        times = [p.failed_at for p in pods if p.failed_at is not None]
        if job is not None and job.ended_at is not None:
            times.append(job.ended_at)
        if not times:
            times = [self.now()]
        return min(times) - self.near, max(times) + self.near

    def _node_bundle(self, episode: Episode) -> Bundle:
        node = episode.subject.split("/", 1)[1]
        facts = [(text, s.at) for s in episode.signals for text in s.facts]
        documents = [
            _facts_document(f"signals/{node}", tuple(facts)),
            self._events_document([], [episode.subject], None),
            self._nodes_document([node], None),
        ]
        return Bundle(
            subject=episode.subject,
            attempt=1,
            reason=episode.reason,
            documents=tuple(d for d in documents if d.facts),
            node=node,
            ref=episode.refs[0],
            refs=tuple(episode.refs),
        )

    def _pods_of(self, episode: Episode) -> list[PodRecord]:
        """The episode's pods as last seen (deleted ones as they were), then the job's others."""
        pods = {p.uid: p for p in episode.pods.values()}
        current = {p.uid: p for p in self.caches.pods.grouped(episode.subject)}
        job = self.caches.jobs.get(episode.subject)
        if job is not None and job.cluster:
            for pod in self.caches.pods.grouped(f"RayCluster/{job.namespace}/{job.cluster}"):
                current[pod.uid] = pod
        for uid, pod in current.items():
            pods[uid] = pod
        return sorted(pods.values(), key=lambda p: (not p.problem, p.rank, p.name))

    def _job_documents(self, subject: str) -> list[Document]:
        job = self.caches.jobs.get(subject)
        related = [job] if job is not None else []
        related += self.caches.jobs.grouped(subject)  # its Kueue Workload, a launcher Job
        return [
            _facts_document(f"{j.kind.lower()}/{j.namespace}/{j.name}", j.facts) for j in related
        ]

    def _events_document(
        self, subjects: list[str], nodes: list[str], span: tuple[datetime, datetime] | None
    ) -> Document:
        facts = [e.fact for s in subjects for e in self.caches.events.about(s)]
        facts += [
            e.fact for s in nodes for e in self.caches.events.about(s) if _within(e.fact, span)
        ]
        facts.sort(key=lambda f: (f[1] is None, f[1] or datetime.min.replace(tzinfo=UTC)))
        return _facts_document("events", tuple(facts))

    def _nodes_document(self, nodes: list[str], span: tuple[datetime, datetime] | None) -> Document:
        facts: list[Fact] = []
        for name in nodes:
            node = self.caches.nodes.get(name)
            if node is not None:
                facts.extend(f for f in node.facts if _within(f, span))
            for signal in self.caches.signals.get(name, {}).values():
                facts.extend(
                    (text, signal.at) for text in signal.facts if _within((text, signal.at), span)
                )
        return _facts_document("nodes", tuple(facts))

    def _job_snapshot(self, episode: Episode, pods: list[PodRecord]) -> Job:
        job = self.caches.jobs.get(episode.subject)
        status: JobStatus = _JOB_STATUS.get(job.status, "failed") if job else "failed"
        return Job(
            job_id=episode.subject.split("/", 1)[1],
            status=status,
            attempts=episode.attempt,
            num_gpus=sum(p.gpus for p in pods),
            num_nodes=len({p.node for p in pods if p.node}) or None,
        )


def _within(fact: Fact, span: tuple[datetime, datetime] | None) -> bool:
    """A fact without a time cannot be ruled out; one with a time must fall in the span."""
    return span is None or fact[1] is None or span[0] <= fact[1] <= span[1]


def _facts_document(name: str, facts: tuple[Fact, ...]) -> Document:
    lines = tuple(FactLine(text=text, line=i, ts=ts) for i, (text, ts) in enumerate(facts, 1))
    return Document(name=name, kind="k8s", facts=lines)
