"""Watch Pods, Jobs, Nodes, Events and the ML operators' CRDs: list, then watch, then resume.

Each kind has one :class:`Watcher`, the informer pattern of client-go in a few functions:

* **list** (``GET ...?limit=500``, following ``continue``), replace the cache, and report objects
  that vanished while we were not watching as deleted;
* **watch** from the list's ``resourceVersion`` (``?watch=true&allowWatchBookmarks=true``), one
  newline-delimited JSON event at a time, remembering the newest ``resourceVersion`` (bookmarks
  included) so a dropped stream resumes where it stopped, without a relist;
* **410 Gone** (as an HTTP answer or as an ``ERROR`` event carrying a ``Status``) means the
  version was compacted away: list again. **429** waits as long as ``Retry-After`` says; 5xx,
  timeouts, dropped connections and stalls back off exponentially with jitter, so a thousand
  watchers do not reconnect in step; a CRD that is not installed (404) is looked for again every
  few minutes.

The connection (kubeconfig, in-cluster token, exec plugins, TLS) is lightkube's ``AsyncClient``'s.
Its own ``watch()`` is not used: it cannot ask for bookmarks, drops ``Retry-After``, answers a 410
by watching without a version (which never reports what was deleted meanwhile), ends on the first
undecodable line, and decodes every object into the full model. Here a line that does not decode
is counted and skipped, and objects go straight into the slim records of :mod:`kube_records`.

Memory is bounded twice: the records are small, and each cache has a size limit (the oldest entry
is dropped, and counted, past it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

import httpx2
import msgspec
from lightkube import AsyncClient, KubeConfig

from fleetmedic.sources.kube_records import (
    EventRecord,
    EventWire,
    JobRecord,
    NodeRecord,
    NodeWire,
    PodRecord,
    PodWire,
    WorkloadWire,
    event_record,
    job_record,
    keep_event,
    node_record,
    pod_record,
)

Role = Literal["pod", "node", "job", "event"]
Record = PodRecord | NodeRecord | JobRecord | EventRecord
R = TypeVar("R", PodRecord, NodeRecord, JobRecord, EventRecord)
Sleep = Callable[[float], Awaitable[None]]

MAX_LINE_BYTES = 16 << 20
"""Longest watch line read (an object is at most ~1.5 MiB in etcd); longer ones are skipped."""
MAX_ERROR_BODY = 64 << 10


@dataclass(frozen=True)
class KindSpec:
    """One watched kind: where it lives in the API and what record it becomes."""

    name: str
    group: str
    version: str
    plural: str
    namespaced: bool
    role: Role

    def path(self, namespace: str | None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec("Node", "", "v1", "nodes", False, "node"),
        KindSpec("Pod", "", "v1", "pods", True, "pod"),
        KindSpec("Event", "", "v1", "events", True, "event"),
        KindSpec("Job", "batch", "v1", "jobs", True, "job"),
        KindSpec("PyTorchJob", "kubeflow.org", "v1", "pytorchjobs", True, "job"),
        KindSpec("MPIJob", "kubeflow.org", "v2beta1", "mpijobs", True, "job"),
        KindSpec("Workload", "kueue.x-k8s.io", "v1beta1", "workloads", True, "job"),
        KindSpec("VolcanoJob", "batch.volcano.sh", "v1alpha1", "jobs", True, "job"),
        KindSpec("RayJob", "ray.io", "v1", "rayjobs", True, "job"),
    )
}


# the connection --------------------------------------------------------------------------------
class KubeSession:
    """The API server connection: an ``httpx2.AsyncClient`` with base URL, auth and TLS set."""

    def __init__(self, http: httpx2.AsyncClient, namespace: str | None = None) -> None:
        self.http = http
        self.namespace = namespace

    @classmethod
    def from_client(cls, client: AsyncClient, namespace: str | None = None) -> KubeSession:
        """Borrow lightkube's connection: the one place that reaches inside its AsyncClient."""
        return cls(client._client._client, namespace)

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | Path | None = None,
        *,
        context: str | None = None,
        namespace: str | None = None,
        timeout: float = 10.0,
    ) -> KubeSession:
        """In a pod the service account; else ``path``, ``$KUBECONFIG`` or ``~/.kube/config``."""
        kubeconfig = KubeConfig.from_env() if path is None else KubeConfig.from_file(path)
        config = kubeconfig.get(context_name=context)
        client = AsyncClient(config=config, timeout=httpx2.Timeout(timeout))
        return cls.from_client(client, namespace)

    async def aclose(self) -> None:
        await self.http.aclose()


# errors --------------------------------------------------------------------------------------
class ApiFailure(Exception):
    """An answer that is not the data asked for: an HTTP error or an ``ERROR`` watch event."""

    def __init__(self, code: int, reason: str = "", message: str = "", retry_after: float = 0):
        super().__init__(f"HTTP {code} {reason}: {message}".strip(": "))
        self.code, self.reason, self.retry_after = code, reason, retry_after


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


def _status(raw: bytes, code: int) -> _Status:
    try:
        status = msgspec.json.decode(raw, type=_Status)
    except (msgspec.MsgspecError, RecursionError):
        return _Status(code, "", raw[:200].decode("utf-8", "replace").strip())
    return status if status.code else _Status(code, status.reason, status.message)


def _retry_after(response: httpx2.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:  # an HTTP date: rare from the API server; wait the default instead
        return 0.0


async def _failure(response: httpx2.Response) -> ApiFailure:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    status = _status(body, response.status_code)
    return ApiFailure(response.status_code, status.reason, status.message, _retry_after(response))


# backoff -------------------------------------------------------------------------------------
@dataclass
class Backoff:
    """Exponential with "equal jitter": half the delay fixed, half random, so retries neither
    hammer the server nor reconnect in step; ``reset()`` after a healthy stream."""

    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.failures)
        self.failures = min(self.failures + 1, 30)
        return float(delay / 2 + self.rng.uniform(0, delay / 2))

    def after(self, retry_after: float) -> float:
        """What the server asked for (capped), plus up to a second so clients spread out."""
        self.failures = min(self.failures + 1, 30)
        return float(min(retry_after, self.max_retry_after) + self.rng.uniform(0, 1.0))

    def reset(self) -> None:
        self.failures = 0


# caches ----------------------------------------------------------------------------------------
class Store(Protocol[R]):
    def put(self, record: R) -> R | None: ...
    def remove(self, key: str) -> R | None: ...
    def names(self) -> Iterable[str]: ...


class Cache(Generic[R]):
    """Records by key, at most ``limit`` of them (least recently changed dropped first).

    ``index`` groups keys by a field (pods by owner, by node) for the detector's look-ups.
    """

    def __init__(self, limit: int, index: Callable[[R], str] | None = None) -> None:
        self.limit = limit
        self.items: OrderedDict[str, R] = OrderedDict()
        self.evicted = 0
        self._index_of: Callable[[R], str] | None = index
        self.index: dict[str, set[str]] = {}

    def get(self, key: str) -> R | None:
        return self.items.get(key)

    def put(self, record: R) -> R | None:
        key = record.key
        old = self.items.pop(key, None)
        self.items[key] = record
        self._reindex(key, old, record)
        while len(self.items) > self.limit:
            gone_key, gone = self.items.popitem(last=False)
            self._reindex(gone_key, gone, None)
            self.evicted += 1
        return old

    def remove(self, key: str) -> R | None:
        old = self.items.pop(key, None)
        self._reindex(key, old, None)
        return old

    def names(self) -> Iterable[str]:
        return list(self.items)

    def grouped(self, value: str) -> list[R]:
        return [self.items[k] for k in self.index.get(value, ()) if k in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def _reindex(self, key: str, old: R | None, new: R | None) -> None:
        if self._index_of is None:
            return
        before = self._index_of(old) if old is not None else ""
        after = self._index_of(new) if new is not None else ""
        if before == after:
            return
        if before:
            members = self.index.get(before)
            if members is not None:
                members.discard(key)
                if not members:
                    del self.index[before]
        if after:
            self.index.setdefault(after, set()).add(key)


class EventLog:
    """The last few kept events of each object; the least recently active objects are forgotten.

    Events are not a state to mirror (they expire by themselves), so a relist deletes nothing.
    """

    def __init__(self, per_subject: int = 10, subjects: int = 50_000) -> None:
        self.per_subject = per_subject
        self.limit = subjects
        self.items: OrderedDict[str, deque[EventRecord]] = OrderedDict()
        self.evicted = 0

    def put(self, record: EventRecord) -> EventRecord | None:
        events = self.items.pop(record.subject, None)
        if events is None:
            events = deque(maxlen=self.per_subject)
        self.items[record.subject] = events
        old = next((e for e in events if e.uid == record.uid), None)
        if old is not None:
            events.remove(old)
        events.append(record)
        while len(self.items) > self.limit:
            self.items.popitem(last=False)
            self.evicted += 1
        return old

    def remove(self, key: str) -> EventRecord | None:
        return None

    def names(self) -> Iterable[str]:
        return ()

    def about(self, subject: str) -> list[EventRecord]:
        return list(self.items.get(subject, ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self.items.values())


# decoding ------------------------------------------------------------------------------------
class _Line(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Meta(msgspec.Struct):
    resourceVersion: str = ""


class _Versioned(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    continue_: str = msgspec.field(default="", name="continue")


class _List(msgspec.Struct):
    items: list[msgspec.Raw] = []
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)


_POD = msgspec.json.Decoder(PodWire)
_NODE = msgspec.json.Decoder(NodeWire)
_WORKLOAD = msgspec.json.Decoder(WorkloadWire)
_EVENT = msgspec.json.Decoder(EventWire)
_LINE = msgspec.json.Decoder(_Line)
_VERSION = msgspec.json.Decoder(_Versioned)
_LIST = msgspec.json.Decoder(_List)


def decode(spec: KindSpec, raw: bytes | msgspec.Raw) -> tuple[Record | None, str]:
    """The record of one object (``None`` for an event not worth keeping) and its
    ``resourceVersion``; raises ``msgspec.MsgspecError`` when the object has the wrong shape."""
    if spec.role == "pod":
        pod = _POD.decode(raw)
        return pod_record(pod), pod.metadata.resourceVersion
    if spec.role == "node":
        node = _NODE.decode(raw)
        return node_record(node), node.metadata.resourceVersion
    if spec.role == "job":
        job = _WORKLOAD.decode(raw)
        return job_record(spec.name, job), job.metadata.resourceVersion
    event = _EVENT.decode(raw)
    return (event_record(event) if keep_event(event) else None), event.metadata.resourceVersion


# the watcher ---------------------------------------------------------------------------------
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class Change:
    """One object changed: ``old`` is what the cache held, ``new`` what it holds now (None when
    deleted). ``initial`` marks objects reported by the very first list (already there at start)."""

    kind: str
    type: ChangeType
    old: Any
    new: Any
    initial: bool = False


@dataclass
class WatchOptions:
    page_size: int = 500
    timeout_seconds: tuple[int, int] = (300, 600)
    """The server ends each watch after a random time in this range (client-go does the same)."""
    read_slack: float = 30.0
    """How much longer than ``timeoutSeconds`` (or between bookmarks) a silent stream may stay."""
    absent_recheck: float = 300.0
    max_line: int = MAX_LINE_BYTES


class Watcher:
    """List-then-watch of one kind into one store; :meth:`run` until cancelled."""

    def __init__(
        self,
        session: KubeSession,
        spec: KindSpec,
        store: Store[Any],
        on_change: Callable[[Change], None],
        *,
        options: WatchOptions | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.spec = spec
        self.store = store
        self.on_change = on_change
        self.options = options or WatchOptions()
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.warn = warn or (lambda _message: None)
        self.stats: Counter[str] = Counter()
        self.synced = asyncio.Event()
        self.absent = False
        self.version = ""
        self._warned: set[str] = set()

    @property
    def path(self) -> str:
        return self.spec.path(self.session.namespace)

    async def run(self) -> None:
        """Forever: list when there is no version to resume from, else watch; back off on errors."""
        while True:
            try:
                if not self.version:
                    await self.relist()
                await self.watch()
            except ApiFailure as failure:
                await self._after_failure(failure)
            except (httpx2.RequestError, httpx2.StreamError) as exc:  # transport, decoding
                self._note("errors", f"{type(exc).__name__}: {exc}")
                await self.sleep(self.backoff.next())

    async def _after_failure(self, failure: ApiFailure) -> None:
        if failure.code == 410:
            self.stats["gone"] += 1
            listing, self.version = not self.version, ""  # compacted: list again
            if listing:  # the list itself was refused (an expired continue token): not in a loop
                await self.sleep(self.backoff.next())
        elif failure.code == 429:
            self._note("throttled", str(failure))
            wait = failure.retry_after
            await self.sleep(self.backoff.after(wait) if wait else self.backoff.next())
        elif failure.code == 404 and self.spec.group:
            self.absent = True
            self._note("absent", f"{self.spec.name} is not served by this cluster ({failure})")
            self.synced.set()
            await self.sleep(self.options.absent_recheck)
        else:
            self._note("errors", str(failure))
            await self.sleep(self.backoff.next())

    def _note(self, counter: str, message: str) -> None:
        """Count the problem; say it once per kind of problem, not once per retry."""
        self.stats[counter] += 1
        if counter not in self._warned:
            self._warned.add(counter)
            self.warn(f"watch {self.spec.name}: {message}")

    # list ------------------------------------------------------------------------------------
    async def relist(self) -> None:
        """Replace the cache with a fresh list; what is gone is reported deleted."""
        initial = not self.synced.is_set() or self.absent
        seen: set[str] = set()
        version, cont = "", ""
        while True:
            params = {"limit": str(self.options.page_size)}
            if cont:
                params["continue"] = cont
            page = await self._get_list(params)
            for raw in page.items:
                self._apply("ADDED", raw, initial, seen)
            version, cont = page.metadata.resourceVersion, page.metadata.continue_
            if not cont:
                break
        mine = f"{self.spec.name}/" if self.spec.role == "job" else ""  # kinds share the jobs
        for key in {k for k in self.store.names() if k.startswith(mine)} - seen:
            old = self.store.remove(key)
            if old is not None:
                self.on_change(Change(self.spec.name, "DELETED", old, None))
        self.stats["relists"] += 1
        self.version = version
        self.absent = False
        self.synced.set()

    async def _get_list(self, params: dict[str, str]) -> _List:
        response = await self.session.http.get(self.path, params=params)
        if response.status_code != 200:
            status = _status(response.content[:MAX_ERROR_BODY], response.status_code)
            raise ApiFailure(status.code, status.reason, status.message, _retry_after(response))
        try:
            return _LIST.decode(response.content)
        except (msgspec.MsgspecError, RecursionError) as exc:
            raise ApiFailure(502, "BadList", f"the list is not a Kubernetes list: {exc}") from exc

    # watch -----------------------------------------------------------------------------------
    async def watch(self) -> None:
        """One watch request, from :attr:`version` until the server ends it or it fails."""
        low, high = self.options.timeout_seconds
        seconds = self.backoff.rng.randint(low, high)
        params = {
            "watch": "true",
            "resourceVersion": self.version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        timeout = httpx2.Timeout(10.0, read=seconds + self.options.read_slack)
        started, received = time.monotonic(), self.stats["events"]
        async with self.session.http.stream(
            "GET", self.path, params=params, timeout=timeout
        ) as response:
            if response.status_code != 200:
                raise await _failure(response)
            async for line in _lines(response, self.options.max_line):
                self._line(line)
        if self.stats["events"] > received or time.monotonic() - started > 5:
            self.backoff.reset()
        else:  # ended at once with nothing: do not spin on a server that closes every watch
            await self.sleep(self.backoff.next())

    def _line(self, line: bytes | None) -> None:
        if line is None:
            self._note("oversize", f"a watch line longer than {self.options.max_line} bytes")
            return
        if not line.strip():
            return
        try:
            event = _LINE.decode(line)
        except (msgspec.MsgspecError, RecursionError) as exc:
            self._note("malformed", f"undecodable watch line skipped ({exc})")
            return
        if event.type == "ERROR":
            status = _status(bytes(event.object), 500)
            raise ApiFailure(status.code or 500, status.reason, status.message)
        if event.type == "BOOKMARK":
            self.stats["bookmarks"] += 1
            self._set_version(event.object)
        elif event.type in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(event.type, event.object, False, None)
        else:
            self._note("malformed", f"unknown watch event type {event.type[:40]!r}")

    def _set_version(self, raw: msgspec.Raw) -> None:
        try:
            version = _VERSION.decode(raw).metadata.resourceVersion
        except (msgspec.MsgspecError, RecursionError):
            return
        if version:
            self.version = version

    def _apply(self, kind: str, raw: msgspec.Raw, initial: bool, seen: set[str] | None) -> None:
        try:
            record, version = decode(self.spec, raw)
        except (msgspec.MsgspecError, RecursionError) as exc:  # nesting deeper than msgspec goes
            self._note("malformed", f"an object of the wrong shape skipped ({exc})")
            return
        self.stats["events"] += 1
        if seen is None and version:
            self.version = version
        if record is None:
            return
        if seen is not None:
            seen.add(record.key)
        if kind == "DELETED":
            old = self.store.remove(record.key)
            if old is not None:
                self.on_change(Change(self.spec.name, "DELETED", old, None))
            return
        old = self.store.put(record)
        change: ChangeType = "ADDED" if old is None else "MODIFIED"
        self.on_change(Change(self.spec.name, change, old, record, initial))


async def _lines(response: httpx2.Response, limit: int) -> AsyncIterator[bytes | None]:
    """Newline-delimited lines of a streamed body; ``None`` for a line over ``limit`` bytes,
    whose bytes are dropped as they come rather than held."""
    pending = bytearray()
    skipping = False
    async for chunk in response.aiter_bytes():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end]
            start = end + 1
            if skipping or len(pending) + len(piece) > limit:
                skipping = False
                pending.clear()
                yield None
                continue
            if pending:
                pending += piece
                yield bytes(pending)
                pending.clear()
            else:
                yield piece
        if not skipping:
            pending += chunk[start:]
            if len(pending) > limit:
                pending.clear()
                skipping = True
    if skipping:
        yield None
    elif pending:
        yield bytes(pending)
