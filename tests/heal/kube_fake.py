"""A fake Kubernetes API server for the executor tests: real HTTP on 127.0.0.1, real REST paths,
real object and ``Status`` bodies, objects kept in memory.

What it does like the API server: GET/LIST (label and field selectors), merge and strategic-merge
PATCH, PUT, DELETE, the pods/eviction and jobs/status subresources; a global ``resourceVersion``
bumped on every write and checked when a PATCH or PUT carries one (409); status ignored on the main
resource and only status taken on the status subresource; strategic merge refused on custom
resources (415); the Job validation that allows pod-template scheduling changes only on a
suspended Job without ``status.startTime``, and a change of ``startTime`` only on a suspended Job
(422). A small Job controller (``job_controller``)
acknowledges a suspension (deletes the Job's running pods, ``Suspended=True``) and a resume (sets
``status.startTime``), as kube-controller-manager would a moment later.

What it does not: authentication, admission, watches, JSON patch, server-side apply, graceful
deletion (a deleted pod is gone at once), PodDisruptionBudget arithmetic (:meth:`FakeKube.pdb`
marks which evictions are refused). Strategic merge knows only a few list merge keys.

Tests inject failures with :meth:`FakeKube.fail`, :meth:`~FakeKube.fail_plain`,
:meth:`~FakeKube.drop`, :meth:`~FakeKube.stall`, :meth:`~FakeKube.before` and
:meth:`~FakeKube.forbid`, and read :attr:`FakeKube.requests` and :meth:`FakeKube.get`.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

OBJECTS = Path(__file__).parent / "kube_objects"
USER = "system:serviceaccount:fleetmedic:fleetmedic"

# kind -> (group, version, plural); all four have a status subresource
KINDS: dict[str, tuple[str, str, str]] = {
    "Node": ("", "v1", "nodes"),
    "Pod": ("", "v1", "pods"),
    "Job": ("batch", "v1", "jobs"),
    "PyTorchJob": ("kubeflow.org", "v1", "pytorchjobs"),
}
PLURALS = {plural: (group, kind) for kind, (group, _, plural) in KINDS.items()}
CUSTOM_GROUPS = {"kubeflow.org"}
LIST_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ownerReferences": "uid",
}
SCHEDULING_FIELDS = ("affinity", "nodeSelector", "tolerations", "schedulingGates")
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
PATH = re.compile(
    r"/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?"
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# request and response shapes ---------------------------------------------------------------
@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it; ``group``, ``resource`` and ``verb`` are its RBAC terms."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any
    authorization: str | None = None
    group: str | None = None
    resource: str | None = None
    verb: str | None = None


@dataclass(frozen=True)
class Route:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    sub: str | None

    @property
    def resource(self) -> str:
        return f"{self.plural}/{self.sub}" if self.sub else self.plural

    @property
    def qualified(self) -> str:
        """How error messages name the resource: ``nodes``, ``jobs.batch``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def parse_route(path: str) -> Route | None:
    m = PATH.fullmatch(path)
    if m is None:
        return None
    group = m["group"] or ""
    return Route(group, m["core"] or m["version"], m["ns"], m["plural"], m["name"], m["sub"])


def rbac_verb(method: str, route: Route, query: dict[str, str]) -> str:
    if method == "GET" and route.name is None:
        return "watch" if query.get("watch") == "true" else "list"
    if method == "DELETE" and route.name is None:
        return "deletecollection"
    return {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "delete")


class ApiFailure(Exception):
    """A ``Status`` answer: raised inside the handlers, sent as the response."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


def _details(route: Route, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name or ""}
    if route.group:
        details["group"] = route.group
    details["kind"] = route.plural
    return details


def not_found(route: Route, name: str) -> ApiFailure:
    message = f'{route.qualified} "{name}" not found'
    return ApiFailure(404, "NotFound", message, _details(route, name))


def conflict(route: Route, name: str) -> ApiFailure:
    message = (
        f'Operation cannot be fulfilled on {route.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiFailure(409, "Conflict", message, _details(route, name))


def forbidden(route: Route, verb: str) -> ApiFailure:
    who = f'{route.resource} "{route.name}"' if route.name else route.resource
    scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    message = (
        f'{who} is forbidden: User "{USER}" cannot {verb} resource "{route.resource}" '
        f'in API group "{route.group}" {scope}'
    )
    return ApiFailure(403, "Forbidden", message, _details(route, route.name))


def pdb_refusal(budget: str) -> ApiFailure:
    cause = {
        "reason": "DisruptionBudget",
        "message": f"The disruption budget {budget} needs 2 healthy pods and has 2 currently",
    }
    message = "Cannot evict pod as it would violate the pod's disruption budget."
    return ApiFailure(429, "TooManyRequests", message, {"causes": [cause]})


# patches -----------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge key by key, ``null`` deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, key: str | None = None) -> Any:
    """Strategic merge for the lists in :data:`LIST_MERGE_KEYS` (merged by their key,
    ``$patch: delete`` removes an item); other lists replace, as in a merge patch."""
    if isinstance(patch, list) and key in LIST_MERGE_KEYS and isinstance(target, list):
        return _merge_list(target, patch, LIST_MERGE_KEYS[key])
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, value in patch.items():
        if k.startswith("$"):
            continue
        if value is None:
            result.pop(k, None)
        else:
            result[k] = strategic_merge(result.get(k), value, k)
    return result


def _merge_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    result = copy.deepcopy(target)
    for item in patch:
        index = next(
            (i for i, t in enumerate(result) if t.get(merge_key) == item.get(merge_key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


# selectors ---------------------------------------------------------------------------------
def _lookup(obj: dict[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for clause in filter(None, selector.split(",")):
        negate = "!=" in clause
        key, value = re.split(r"!=|==|=", clause, maxsplit=1)
        actual = _lookup(obj, key)
        if (str(actual) if actual is not None else "") == value and negate:
            return False
        if (str(actual) if actual is not None else "") != value and not negate:
            return False
    return True


def matches_labels(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for clause in filter(None, selector.split(",")):
        if "!=" in clause:
            key, value = clause.split("!=", 1)
            ok = labels.get(key) != value
        elif "=" in clause:
            key, value = re.split(r"==|=", clause, maxsplit=1)
            ok = labels.get(key) == value
        elif clause.startswith("!"):
            ok = clause[1:] not in labels
        else:
            ok = clause in labels
        if not ok:
            return False
    return True


# faults --------------------------------------------------------------------------------------
@dataclass
class Fault:
    method: str
    path: str
    action: Callable[[BaseHTTPRequestHandler], bool]
    """Handles the request itself; returns True when the request should then proceed normally."""
    times: int = 1


# the server --------------------------------------------------------------------------------
@dataclass
class FakeKube:
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    forbidden: set[tuple[str, str, str]] = field(default_factory=set)
    blocked_evictions: dict[tuple[str, str], str] = field(default_factory=dict)
    job_controller: bool = True
    faults: list[Fault] = field(default_factory=list)
    _rv: int = 48_300_000
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        kube = self

        class Handler(_Handler):
            fake = kube

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # state -------------------------------------------------------------------------------
    def load(self, *files: str | Path) -> None:
        """Objects as ``kubectl get -o json`` prints them: one object or a ``List``."""
        for name in files:
            path = Path(name) if Path(name).is_absolute() else OBJECTS / name
            data = json.loads(path.read_text())
            for obj in data["items"] if data.get("kind") == "List" else [data]:
                self.put(obj)

    def load_all(self) -> None:
        self.load(*sorted(OBJECTS.glob("*.json")))

    def put(self, obj: dict[str, Any]) -> None:
        group, _, plural = KINDS[obj["kind"]]
        key = (group, plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        with self._lock:
            self.objects[key] = copy.deepcopy(obj)

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        group, _, plural = KINDS[kind]
        with self._lock:
            obj = self.objects.get((group, plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def names(self, kind: str, namespace: str = "") -> set[str]:
        group, _, plural = KINDS[kind]
        with self._lock:
            return {k[3] for k in self.objects if k[:3] == (group, plural, namespace)}

    def mutate(
        self, kind: str, name: str, namespace: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        """Another actor writes the object (a new resourceVersion, like any write)."""
        group, _, plural = KINDS[kind]
        with self._lock:
            obj = self.objects[(group, plural, namespace, name)]
            change(obj)
            self._bump(obj)

    def seen(self) -> set[tuple[str, str, str]]:
        """Every (apiGroup, resource, verb) requested so far: what an RBAC role must grant."""
        return {
            (r.group or "", r.resource or "", r.verb) for r in self.requests if r.verb is not None
        }

    def calls(self, method: str | None = None, path: str = ".*") -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and re.fullmatch(path, r.path)
        ]

    # failures ----------------------------------------------------------------------------
    def fail(
        self, method: str, path: str, code: int, reason: str, message: str = "", times: int = 1
    ) -> None:
        """Answer with a ``Status`` error, ``times`` times."""

        def respond(handler: BaseHTTPRequestHandler) -> bool:
            _send(handler, code, ApiFailure(code, reason, message or reason).body())
            return False

        self.faults.append(Fault(method, path, respond, times))

    def fail_plain(self, method: str, path: str, code: int, text: str) -> None:
        """A non-JSON error body, as a proxy or load balancer in front of the API sends."""

        def respond(handler: BaseHTTPRequestHandler) -> bool:
            _send(handler, code, text, content_type="text/plain; charset=utf-8")
            return False

        self.faults.append(Fault(method, path, respond))

    def drop(self, method: str, path: str) -> None:
        """Close the connection without answering."""

        def respond(handler: BaseHTTPRequestHandler) -> bool:
            handler.close_connection = True
            return False

        self.faults.append(Fault(method, path, respond))

    def stall(self, method: str, path: str, seconds: float) -> None:
        """Answer only after ``seconds`` (longer than the client's timeout)."""

        def respond(handler: BaseHTTPRequestHandler) -> bool:
            time.sleep(seconds)
            return True

        self.faults.append(Fault(method, path, respond))

    def before(self, method: str, path: str, hook: Callable[[FakeKube], object]) -> None:
        """Run ``hook`` just before the matching request is served (a concurrent writer)."""

        def respond(handler: BaseHTTPRequestHandler) -> bool:
            hook(self)
            return True

        self.faults.append(Fault(method, path, respond))

    def forbid(self, group: str, resource: str, verb: str) -> None:
        self.forbidden.add((group, resource, verb))

    def pdb(self, namespace: str, pod: str, budget: str) -> None:
        """Evictions of this pod are refused by the named PodDisruptionBudget."""
        self.blocked_evictions[(namespace, pod)] = budget

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # serving -----------------------------------------------------------------------------
    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        content_type = handler.headers.get("Content-Type")
        route = parse_route(url.path)
        verb = rbac_verb(handler.command, route, query) if route else None
        self.requests.append(
            Recorded(
                handler.command,
                url.path,
                query,
                content_type,
                body,
                handler.headers.get("Authorization"),
                route.group if route else None,
                route.resource if route else None,
                verb,
            )
        )
        fault = self._take_fault(handler.command, url.path)
        if fault is not None and not fault.action(handler):
            return
        try:
            if route is None or verb is None:
                raise ApiFailure(
                    404, "NotFound", "the server could not find the requested resource"
                )
            if (route.group, route.resource, verb) in self.forbidden:
                raise forbidden(route, verb)
            with self._lock:
                code, answer = self._dispatch(handler.command, route, query, content_type, body)
        except ApiFailure as failure:
            code, answer = failure.code, failure.body()
        except Exception:  # a bug in the fake must fail the test, not pass as a 500
            self.crashes.append(traceback.format_exc())
            code, answer = 500, ApiFailure(500, "InternalError", "fake crashed").body()
        _send(handler, code, answer)

    def _dispatch(
        self, method: str, route: Route, query: dict[str, str], content_type: str | None, body: Any
    ) -> tuple[int, Any]:
        if route.plural not in PLURALS:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        if route.name is None and method == "GET":
            return 200, self._list(route, query)
        if route.name is None:
            raise ApiFailure(405, "MethodNotAllowed", "the server does not allow this method")
        if route.sub == "eviction" and method == "POST":
            return self._evict(route, body)
        if method == "GET":
            return 200, copy.deepcopy(self._stored(route))
        if method == "PATCH":
            return 200, self._patch(route, content_type, body)
        if method == "PUT":
            return 200, self._write(route, self._stored(route), body)
        if method == "DELETE":
            return 200, self._delete(route)
        raise ApiFailure(405, "MethodNotAllowed", "the server does not allow this method")

    def _key(self, route: Route, name: str | None = None) -> tuple[str, str, str, str]:
        return (route.group, route.plural, route.namespace or "", name or route.name or "")

    def _stored(self, route: Route) -> dict[str, Any]:
        obj = self.objects.get(self._key(route))
        if obj is None:
            raise not_found(route, route.name or "")
        return obj

    def _list(self, route: Route, query: dict[str, str]) -> dict[str, Any]:
        items = []
        for (group, plural, namespace, _), obj in sorted(self.objects.items()):
            if (group, plural) != (route.group, route.plural):
                continue
            if route.namespace is not None and namespace != route.namespace:
                continue
            if not matches_labels(obj, query.get("labelSelector", "")):
                continue
            if not matches_fields(obj, query.get("fieldSelector", "")):
                continue
            item = copy.deepcopy(obj)
            item.pop("apiVersion", None)
            item.pop("kind", None)
            items.append(item)
        kind = PLURALS[route.plural][1]
        api_version = f"{route.group}/{route.version}" if route.group else route.version
        return {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _patch(self, route: Route, content_type: str | None, body: Any) -> dict[str, Any]:
        current = self._stored(route)
        media = (content_type or "").split(";")[0]
        if media == STRATEGIC and route.group in CUSTOM_GROUPS:
            raise ApiFailure(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if media not in (MERGE, STRATEGIC):
            raise ApiFailure(415, "UnsupportedMediaType", f"the fake does not implement {media}")
        apply = merge_patch if media == MERGE else strategic_merge
        return self._write(route, current, apply(current, body))

    def _write(self, route: Route, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Preconditions, subresource rules and validation of the API server, then store."""
        name = route.name or ""
        wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            raise conflict(route, name)
        stored = copy.deepcopy(current)
        if route.sub == "status":
            stored["status"] = new.get("status", {})
        else:
            stored.update({k: v for k, v in new.items() if k != "status"})
            stored["metadata"] = {**new["metadata"], "uid": current["metadata"]["uid"]}
        if route.plural == "jobs" and route.sub == "status":
            _validate_job_status_update(route, current, stored)
        elif route.plural == "jobs":
            _validate_job_update(route, current, stored)
        if stored.get("spec") != current.get("spec"):
            stored["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        self._bump(stored)
        self.objects[self._key(route)] = stored
        if route.plural == "jobs" and self.job_controller:
            self._job_controller(route, current, stored)
        return copy.deepcopy(stored)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _delete(self, route: Route) -> dict[str, Any]:
        obj = self._stored(route)
        del self.objects[self._key(route)]
        gone = copy.deepcopy(obj)
        gone["metadata"]["deletionTimestamp"] = now()
        gone["metadata"]["deletionGracePeriodSeconds"] = 0
        return gone

    def _evict(self, route: Route, body: Any) -> tuple[int, Any]:
        if (body or {}).get("kind") != "Eviction":
            raise ApiFailure(400, "BadRequest", "the body of the request is not an Eviction")
        pod_route = Route("", "v1", route.namespace, "pods", route.name, None)
        self._stored(pod_route)  # 404 for a pod already gone
        budget = self.blocked_evictions.get((route.namespace or "", route.name or ""))
        if budget is not None:
            raise pdb_refusal(budget)
        del self.objects[self._key(pod_route)]
        return 201, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def _job_controller(self, route: Route, old: dict[str, Any], job: dict[str, Any]) -> None:
        """What kube-controller-manager's Job controller does on its next sync."""
        was, now_suspended = bool(old["spec"].get("suspend")), bool(job["spec"].get("suspend"))
        if was == now_suspended:
            return
        status = job.setdefault("status", {})
        conditions = [c for c in status.get("conditions", []) if c["type"] != "Suspended"]
        stamp = now()
        if now_suspended:
            self._delete_active_pods(route.namespace or "", job["metadata"]["uid"])
            status["active"] = 0
            reason, message, value = "JobSuspended", "Job suspended", "True"
        else:
            status["startTime"] = stamp
            reason, message, value = "JobResumed", "Job resumed", "False"
        conditions.append(
            {
                "type": "Suspended",
                "status": value,
                "reason": reason,
                "message": message,
                "lastProbeTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        status["conditions"] = conditions
        self._bump(job)

    def _delete_active_pods(self, namespace: str, uid: str) -> None:
        for key, pod in list(self.objects.items()):
            owners = pod["metadata"].get("ownerReferences") or []
            if key[:3] != ("", "pods", namespace) or not any(o["uid"] == uid for o in owners):
                continue
            if pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                del self.objects[key]

    def __enter__(self) -> FakeKube:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _validate_job_update(route: Route, old: dict[str, Any], new: dict[str, Any]) -> None:
    """batch/v1 validation: the pod template is immutable, except its scheduling directives
    (and labels, annotations) while the Job is suspended and has no ``status.startTime``."""
    before, after = old["spec"]["template"], new["spec"]["template"]
    if before == after:
        return
    mutable = bool(old["spec"].get("suspend")) and not old.get("status", {}).get("startTime")
    if mutable and _without_scheduling(before) == _without_scheduling(after):
        return
    message = "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"
    cause = {"reason": "FieldValueInvalid", "message": message, "field": "spec.template"}
    details = {"name": route.name, "group": "batch", "kind": "Job", "causes": [cause]}
    raise ApiFailure(422, "Invalid", f'Job.batch "{route.name}" is invalid: {message}', details)


def _validate_job_status_update(route: Route, old: dict[str, Any], new: dict[str, Any]) -> None:
    """batch/v1 status validation (1.31+): a started Job's ``startTime`` may change only while
    the Job is suspended."""
    before = old.get("status", {}).get("startTime")
    if before is None or before == new.get("status", {}).get("startTime"):
        return
    if new["spec"].get("suspend"):
        return
    message = "status.startTime: Required value: startTime cannot be removed for unsuspended job"
    cause = {"reason": "FieldValueRequired", "message": message, "field": "status.startTime"}
    details = {"name": route.name, "group": "batch", "kind": "Job", "causes": [cause]}
    raise ApiFailure(422, "Invalid", f'Job.batch "{route.name}" is invalid: {message}', details)


def _without_scheduling(template: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(template)
    stripped.pop("metadata", None)
    for key in SCHEDULING_FIELDS:
        stripped.get("spec", {}).pop(key, None)
    return stripped


def _send(
    handler: BaseHTTPRequestHandler,
    code: int,
    answer: Any,
    content_type: str = "application/json",
) -> None:
    data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
    try:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Audit-Id", "5e3c1f0a-fake-4d2b-9a8e-000000000000")
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stalled answer)
        handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeKube

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle and delayed ACKs add ~40 ms each
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        self.fake.serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None
