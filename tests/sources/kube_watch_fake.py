"""A fake Kubernetes API server for the watch, log and workflow tests: real HTTP on 127.0.0.1, the
real list and watch protocol, objects in memory.

Like the API server:

* ``GET <collection>?limit=N[&continue=T]`` pages through the objects in name order and gives the
  list's ``resourceVersion``; an expired ``continue`` token is a 410 ``Status``;
* ``GET <collection>?watch=true&resourceVersion=RV[&allowWatchBookmarks=true][&timeoutSeconds=S]``
  answers 200 with a chunked body of newline-delimited ``{"type": ..., "object": ...}`` events
  newer than RV, then waits for more until S seconds pass, sending a ``BOOKMARK`` (an object with
  only ``kind``, ``apiVersion`` and ``metadata.resourceVersion``) every ``bookmark_every`` seconds
  when asked; a version older than the retained history (:meth:`FakeApi.compact`) is answered
  with a 410 ``Status`` (``gone="http"``) or, as the API server does for a watch already
  accepted, a 200 whose first line is an ``ERROR`` event carrying that ``Status``
  (``gone="event"``);
* ``GET /api/v1/namespaces/NS/pods/NAME/log?container=C&previous=true&tailLines=N&limitBytes=B``
  serves ``text/plain`` logs, with the API server's 400s for a wrong container or a missing
  previous instance, and 404 for a missing pod.

Faults for the next matching watch/list/log request (:meth:`FakeApi.fault`): an HTTP error with
an optional ``Retry-After``, a stream dropped after N events (no final chunk), a stall (headers
then silence), garbage lines before the events, an ``ERROR`` event.

Not modelled: authentication, field and label selectors, ``sendInitialEvents``, watch-list,
protobuf, server-side timeouts other than ``timeoutSeconds``.
"""

from __future__ import annotations

import bisect
import copy
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

OBJECTS = Path(__file__).parent / "kube_watch_objects"
TOKEN = "fake-watch-token"

# (group, plural) -> kind, apiVersion
COLLECTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("", "pods"): ("Pod", "v1"),
    ("", "nodes"): ("Node", "v1"),
    ("", "events"): ("Event", "v1"),
    ("batch", "jobs"): ("Job", "batch/v1"),
    ("kubeflow.org", "pytorchjobs"): ("PyTorchJob", "kubeflow.org/v1"),
    ("kubeflow.org", "mpijobs"): ("MPIJob", "kubeflow.org/v2beta1"),
    ("kueue.x-k8s.io", "workloads"): ("Workload", "kueue.x-k8s.io/v1beta1"),
    ("batch.volcano.sh", "jobs"): ("Job", "batch.volcano.sh/v1alpha1"),
    ("ray.io", "rayjobs"): ("RayJob", "ray.io/v1"),
}
BY_KIND = {
    (api.rsplit("/", 1)[0] if "/" in api else "", kind): key
    for key, (kind, api) in COLLECTIONS.items()
}
PATH = re.compile(
    r"/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>log))?)?"
)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def gone_status(version: str) -> dict[str, Any]:
    return status(410, "Expired", f"too old resource version: {version} (48300000)")


@dataclass
class Fault:
    """What to do to the next request matching ``method``/``pattern`` (a regex on the path and
    ``?watch`` or ``?list`` or ``?log``), ``times`` times."""

    where: str
    kind: str  # status | drop | stall | garbage | error_event
    code: int = 500
    reason: str = "InternalError"
    retry_after: str | None = None
    after: int = 0
    seconds: float = 0.0
    lines: tuple[bytes, ...] = ()
    times: int = 1


@dataclass
class Entry:
    rv: int
    collection: tuple[str, str]
    namespace: str
    line: bytes


@dataclass
class FakeApi:
    gone: str = "http"
    bookmark_every: float = 0.0
    max_watch_seconds: float = 30.0
    history_limit: int = 1_000_000
    ignore_log_limits: bool = False
    after_page: Any = None
    """Called after a list page that has a continue token is sent (to expire the token)."""
    objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = field(
        default_factory=dict
    )
    logs: dict[tuple[str, str, str, bool], bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    rv: int = 48_300_000
    oldest: int = 0
    _history: deque[Entry] = field(default_factory=deque)
    _versions: deque[int] = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None
    _closing: bool = False

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> str:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file for this server (bearer token), as ``kubectl config view`` writes."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fleetmedic", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fleetmedic"}}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))
        return path

    # objects -------------------------------------------------------------------------------
    @staticmethod
    def collection(obj: dict[str, Any]) -> tuple[str, str]:
        api = obj.get("apiVersion", "v1")
        group = api.rsplit("/", 1)[0] if "/" in api else ""
        return BY_KIND[(group, obj["kind"])]

    def load(self, *names: str) -> list[dict[str, Any]]:
        """Objects from kube_watch_objects/ (``List`` files), stored without watch events."""
        loaded = []
        for name in names:
            data = json.loads((OBJECTS / name).read_text())
            for obj in data["items"] if data.get("kind") == "List" else [data]:
                loaded.append(self.put(obj, event=None))
        return loaded

    def put(self, obj: dict[str, Any], event: str | None = "auto") -> dict[str, Any]:
        """Store (create or replace) an object; a watch event is recorded unless ``event=None``."""
        key = self.collection(obj)
        meta = obj["metadata"]
        with self._cond:
            store = self.objects.setdefault(key, {})
            where = (meta.get("namespace", ""), meta["name"])
            kind = "MODIFIED" if where in store else "ADDED"
            stored = copy.deepcopy(obj)
            self.rv += 1
            stored["metadata"]["resourceVersion"] = str(self.rv)
            store[where] = stored
            if event is not None:
                self._record(key, where[0], kind if event == "auto" else event, stored)
            return copy.deepcopy(stored)

    def delete(self, obj: dict[str, Any]) -> None:
        key = self.collection(obj)
        meta = obj["metadata"]
        with self._cond:
            gone = self.objects.get(key, {}).pop((meta.get("namespace", ""), meta["name"]), None)
            if gone is None:
                return
            self.rv += 1
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._record(key, meta.get("namespace", ""), "DELETED", gone)

    def emit_lines(
        self, collection: tuple[str, str], lines: list[bytes], namespace: str = ""
    ) -> None:
        """Append pre-encoded watch lines (the benchmark's fast path); the caller keeps them
        consistent with the stored objects."""
        with self._cond:
            for line in lines:
                self.rv += 1
                self._append(Entry(self.rv, collection, namespace, line))
            self._cond.notify_all()

    def compact(self) -> None:
        """Forget the history: watches from any version seen so far get 410 Gone."""
        with self._cond:
            self._history.clear()
            self._versions.clear()
            self.oldest = self.rv + 1

    def _record(self, key: tuple[str, str], namespace: str, kind: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
        self._append(Entry(self.rv, key, namespace, line))
        self._cond.notify_all()

    def _append(self, entry: Entry) -> None:
        self._history.append(entry)
        self._versions.append(entry.rv)
        while len(self._history) > self.history_limit:
            self._history.popleft()
            self.oldest = self._versions.popleft() + 1

    def fault(self, where: str, kind: str, **options: Any) -> None:
        self.faults.append(Fault(where, kind, **options))

    def log(
        self, namespace: str, pod: str, container: str, text: bytes | str, *, previous: bool = False
    ) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.logs[(namespace, pod, container, previous)] = data

    def calls(self, kind: str) -> list[tuple[str, dict[str, str]]]:
        """Requests of one kind (``watch``, ``list``, ``log``) as (path, query)."""
        return [(path, query) for what, path, query in self.requests if what == kind]

    # serving -------------------------------------------------------------------------------
    def _take_fault(self, where: str) -> Fault | None:
        with self._cond:
            for fault in self.faults:
                if re.fullmatch(fault.where, where):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        m = PATH.fullmatch(url.path)
        what = "log" if m and m["sub"] else "watch" if query.get("watch") == "true" else "list"
        self.requests.append((what, url.path, query))
        if m is None or (m["group"] or "", m["plural"]) not in COLLECTIONS:
            _send(
                handler,
                404,
                status(404, "NotFound", "the server could not find the requested resource"),
            )
            return
        fault = self._take_fault(f"{what}:{url.path}")
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            _send(
                handler,
                fault.code,
                status(fault.code, fault.reason, f"injected {fault.reason}"),
                headers,
            )
            return
        key = (m["group"] or "", m["plural"])
        if what == "log":
            self._serve_log(handler, m["ns"] or "", m["name"] or "", query)
        elif what == "watch":
            self._serve_watch(handler, key, m["ns"], query, fault)
        else:
            self._serve_list(handler, key, m["ns"], query)

    def _serve_list(
        self, handler: _Handler, key: tuple[str, str], ns: str | None, query: dict[str, str]
    ) -> None:
        limit = int(query.get("limit") or 0) or 1 << 30
        token = query.get("continue", "")
        with self._cond:
            items = sorted(
                (where, obj)
                for where, obj in self.objects.get(key, {}).items()
                if ns is None or where[0] == ns
            )
            version = self.rv
        start = 0
        if token:
            offset, at = token.split(":")
            if int(at) < self.oldest - 1:
                _send(
                    handler,
                    410,
                    status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                )
                return
            start, version = int(offset), int(at)
        page = items[start : start + limit]
        kind, api = COLLECTIONS[key]
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if start + limit < len(items):
            meta["continue"] = f"{start + limit}:{version}"
        body = {
            "kind": f"{kind}List",
            "apiVersion": api,
            "metadata": meta,
            "items": [self._bare(o) for _, o in page],
        }
        _send(handler, 200, body)
        if "continue" in meta and self.after_page is not None:
            self.after_page()

    @staticmethod
    def _bare(obj: dict[str, Any]) -> dict[str, Any]:
        item = dict(obj)
        item.pop("kind", None)
        item.pop("apiVersion", None)
        return item

    def _serve_watch(
        self,
        handler: _Handler,
        key: tuple[str, str],
        ns: str | None,
        query: dict[str, str],
        fault: Fault | None,
    ) -> None:
        since = int(query.get("resourceVersion") or 0)
        if since and since < self.oldest - 1:
            if self.gone == "http":
                _send(handler, 410, gone_status(str(since)))
                return
            fault = Fault("", "error_event", code=410)
        _start_chunked(handler)
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.seconds)
            return _abort(handler)
        if fault is not None and fault.kind == "garbage":
            _chunk(handler, b"".join(fault.lines))
        if fault is not None and fault.kind == "error_event":
            body = (
                gone_status(str(since))
                if fault.code == 410
                else status(fault.code, fault.reason, "injected")
            )
            _chunk(handler, json.dumps({"type": "ERROR", "object": body}).encode() + b"\n")
            return _end_chunked(handler)
        drop_after = fault.after if fault is not None and fault.kind == "drop" else -1
        self._stream(handler, key, ns, since, query, drop_after)

    def _stream(
        self,
        handler: _Handler,
        key: tuple[str, str],
        ns: str | None,
        since: int,
        query: dict[str, str],
        drop_after: int,
    ) -> None:
        seconds = min(float(query.get("timeoutSeconds") or 1800), self.max_watch_seconds)
        deadline = time.monotonic() + seconds
        bookmarks = query.get("allowWatchBookmarks") == "true" and self.bookmark_every > 0
        next_bookmark = time.monotonic() + self.bookmark_every
        cursor, sent = since, 0
        while not self._closing:
            batch, cursor = self._pending(
                key, ns, cursor, deadline, next_bookmark if bookmarks else deadline
            )
            if drop_after >= 0 and sent + len(batch) >= drop_after:
                _chunk(handler, b"".join(batch[: drop_after - sent]))
                return _abort(handler)
            if batch:
                sent += len(batch)
                if not _chunk(handler, b"".join(batch)):
                    return
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                next_bookmark = now + self.bookmark_every
                if not _chunk(handler, self._bookmark(key, cursor)):
                    return
        _end_chunked(handler)

    def _pending(
        self, key: tuple[str, str], ns: str | None, cursor: int, deadline: float, wake: float
    ) -> tuple[list[bytes], int]:
        """Lines after ``cursor`` for this collection (at most a few thousand), waiting until
        there are some, the deadline, or ``wake``."""
        with self._cond:
            while True:
                start = bisect.bisect_right(self._versions, cursor)
                if start < len(self._history) or self._closing:
                    break
                left = min(deadline, wake) - time.monotonic()
                if left <= 0:
                    return [], cursor
                self._cond.wait(left)
            lines, last = [], cursor
            for i in range(start, min(start + 4096, len(self._history))):
                entry = self._history[i]
                last = entry.rv
                if entry.collection == key and (ns is None or entry.namespace in (ns, "")):
                    lines.append(entry.line)
            return lines, last

    def _bookmark(self, key: tuple[str, str], cursor: int) -> bytes:
        kind, api = COLLECTIONS[key]
        version = max(cursor, self.rv)
        obj = {"kind": kind, "apiVersion": api, "metadata": {"resourceVersion": str(version)}}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

    def _serve_log(self, handler: _Handler, ns: str, name: str, query: dict[str, str]) -> None:
        container = query.get("container", "")
        previous = query.get("previous") == "true"
        with self._cond:
            pod = self.objects.get(("", "pods"), {}).get((ns, name))
        if pod is None:
            _send(handler, 404, status(404, "NotFound", f'pods "{name}" not found'))
            return
        names = [
            c["name"] for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
        ]
        if not container and len(names) == 1:
            container = names[0]
        if container not in names:
            message = f"container {container} is not valid for pod {name}"
            _send(handler, 400, status(400, "BadRequest", message))
            return
        data = self.logs.get((ns, name, container, previous))
        if data is None and previous:
            message = f'previous terminated container "{container}" in pod "{name}" not found'
            _send(handler, 400, status(400, "BadRequest", message))
            return
        data = data or b""
        if not self.ignore_log_limits:
            data = _limit(data, query)
        _send(handler, 200, data, content_type="text/plain")


def _limit(data: bytes, query: dict[str, str]) -> bytes:
    if query.get("tailLines"):
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else b""
    if query.get("limitBytes"):
        data = data[: int(query["limitBytes"])]
    return data


# HTTP plumbing -----------------------------------------------------------------------------
def _send(
    handler: _Handler,
    code: int,
    answer: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    try:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        handler.close_connection = True


def _start_chunked(handler: _Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.flush()


def _chunk(handler: _Handler, data: bytes) -> bool:
    if not data:
        return True
    try:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
        return False
    return True


def _end_chunked(handler: _Handler) -> None:
    try:
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True


def _abort(handler: _Handler) -> None:
    """Close the connection mid-body: the client sees an incomplete chunked read."""
    handler.close_connection = True
    try:
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeApi

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        try:
            self.fake.serve(self)
        except Exception:  # a bug in the fake must fail the test, not pass as a hang
            import traceback

            self.fake.crashes.append(traceback.format_exc())
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return None


# helpers for the tests ---------------------------------------------------------------------
def session_for(api: FakeApi, namespace: str | None = None, timeout: float = 5.0) -> Any:
    """A :class:`KubeSession` on lightkube's AsyncClient, pointed at the fake (bearer token)."""
    import httpx2
    from lightkube import AsyncClient, KubeConfig
    from lightkube.config.models import Cluster, User

    from fleetmedic.sources.kube_watch import KubeSession

    config = KubeConfig.from_one(cluster=Cluster(server=api.url), user=User(token=TOKEN))
    client = AsyncClient(config=config, timeout=httpx2.Timeout(timeout), trust_env=False)
    return KubeSession.from_client(client, namespace)


def running(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as it was before it failed: Running, every container running."""
    before = copy.deepcopy(pod)
    before["status"]["phase"] = "Running"
    before["status"].pop("reason", None)
    for status in before["status"].get("containerStatuses", []):
        status["state"] = {"running": {"startedAt": "2026-03-04T10:02:40Z"}}
        status["lastState"] = {}
        status["restartCount"] = 0
    return before


def healthy(node: dict[str, Any]) -> dict[str, Any]:
    before = copy.deepcopy(node)
    for condition in before["status"]["conditions"]:
        condition["status"] = "True" if condition["type"] == "Ready" else "False"
        condition["reason"] = (
            "KubeletReady" if condition["type"] == "Ready" else "KubeletHasNoPressure"
        )
    before["spec"]["taints"] = [
        t for t in before["spec"].get("taints", []) if "unreachable" not in t["key"]
    ]
    return before


def fixture(name: str) -> list[dict[str, Any]]:
    return list(json.loads((OBJECTS / name).read_text())["items"])
