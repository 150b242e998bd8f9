"""Alertmanager's webhook in: alerts about nodes and GPUs become node signals and events.

Alertmanager POSTs a group of alerts (webhook payload version 4) to the receiver's URL, again on
every ``group_interval`` while they fire, and once more when they resolve (with
``send_resolved: true``). Each alert that names a node (label ``node``, ``kubernetes_node``,
``Hostname``, ``hostname``, ``nodename``, else ``instance`` without its port) becomes a
:class:`~fleetmedic.sources.signals.NodeSignal` whose key is the alert's fingerprint and start
time, so a resend is the same cause and a re-fire after a resolve is a new one. Its facts are
phrased for the signature catalog:

* an Xid alert (``xid`` in the alert name or a label, e.g. DCGM's ``DCGM_FI_DEV_XID_ERRORS``) with
  a code (label ``xid``/``err_code``/``code``, else the first ``Xid NN`` in the annotations) →
  ``NVIDIA Xid 79 ...`` (``kernel.xid_hardware``);
* an ECC / row-remap / retired-pages alert → ``uncorrectable ECC error detected``;
* a NotReady / unreachable / node-down alert → ``node/N condition Ready=False`` (node failure);
* any other alert → its summary and description, which the catalog may or may not recognise.

Alerts without a node are counted (``unmapped``) and dropped: there is nothing to act on.

The payload is validated with Pydantic; unknown fields are ignored (Alertmanager adds fields over
time), a wrong shape is a 400 with the reason, a body over ``max_body`` a 413: the sender sees the
error, nothing is raised here. The receiver is a small Starlette app served by uvicorn in its own
thread when both are installed (``fleetmedic serve`` brings them), else ``http.server`` in a
thread; either way the signals are handed to a callback that must be thread-safe.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from fleetmedic.model.records import Event
from fleetmedic.sources.signals import NodeSignal

PATH = "/alertmanager/webhook"
MAX_BODY = 4 << 20
NODE_LABELS = ("node", "kubernetes_node", "Hostname", "hostname", "nodename", "instance")
CODE_LABELS = ("xid", "err_code", "code", "XID")
_XID_TEXT = re.compile(r"\bxid\D{0,12}?(\d{1,3})\b", re.I)
_XID = re.compile(r"xid", re.I)
_ECC = re.compile(r"ecc|dbe|row.?remap|retired.?page", re.I)
_DOWN = re.compile(r"not.?ready|unreachable|node.?down|node.?lost", re.I)
_SEVERITY: dict[str, Literal["info", "warning", "error"]] = {
    "critical": "error",
    "error": "error",
    "page": "error",
    "warning": "warning",
}
Deliver = Callable[[list[NodeSignal]], None]


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: AwareDatetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class Payload(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(max_length=10_000)


# mapping -------------------------------------------------------------------------------------
def node_of(labels: Mapping[str, str]) -> str | None:
    for name in NODE_LABELS:
        value = labels.get(name, "").strip()
        if value:
            return value.rsplit(":", 1)[0] if name == "instance" else value
    return None


def _xid_code(alert: Alert) -> str | None:
    for name in CODE_LABELS:
        if alert.labels.get(name, "").isdigit():
            return alert.labels[name]
    text = " ".join(alert.annotations.values())
    found = _XID_TEXT.search(text)
    return found.group(1) if found else None


def _facts(alert: Alert, node: str) -> tuple[str, ...]:
    name = alert.labels.get("alertname", "alert")
    said = " ".join(
        v for k, v in sorted(alert.annotations.items()) if k in ("summary", "description")
    )
    gpu = alert.labels.get("gpu") or alert.labels.get("GPU_I_ID") or alert.labels.get("device")
    on_gpu = f" (gpu {gpu})" if gpu else ""
    facts = []
    kinds = f"{name} {' '.join(alert.labels)}"
    code = _xid_code(alert) if _XID.search(kinds) else None
    if code is not None:
        facts.append(f"alert {name} on node/{node}: NVIDIA Xid {code} reported{on_gpu}")
    elif _ECC.search(kinds):
        facts.append(f"alert {name} on node/{node}: uncorrectable ECC error detected{on_gpu}")
    elif _DOWN.search(name):
        facts.append(f"node/{node} condition Ready=False Reason: {name} Message: {said}".strip())
    facts.append(f"alert {name} node/{node} {alert.status}: {said}".strip())
    return tuple(facts)


def to_signal(alert: Alert) -> NodeSignal | None:
    """The node signal of one alert; ``None`` when it names no node."""
    node = node_of(alert.labels)
    if node is None:
        return None
    fingerprint = alert.fingerprint or _fingerprint(alert.labels)
    name = alert.labels.get("alertname", "alert")
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or name
    event = Event(
        ts=alert.startsAt,
        source="alertmanager",
        kind="alert",
        object=f"node/{node}",
        reason=name,
        message=summary,
        severity=_SEVERITY.get(alert.labels.get("severity", "").lower(), "info"),
        raw=alert.model_dump(mode="json"),
    )
    key = f"alert:{fingerprint}@{alert.startsAt.isoformat()}"
    return NodeSignal(node, key, alert.status, _facts(alert, node), event, alert.startsAt)


def _fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager always sends one; a hand-written payload may not."""
    text = json.dumps(sorted(labels.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# the receiver ----------------------------------------------------------------------------------
class AlertReceiver:
    """Validates webhook bodies and hands the node signals to ``deliver``; never raises.

    :attr:`stats` counts ``requests``, ``alerts``, ``mapped``, ``unmapped``, ``resolved``,
    ``malformed`` and ``too_large``.
    """

    def __init__(self, deliver: Deliver, *, max_body: int = MAX_BODY) -> None:
        self.deliver = deliver
        self.max_body = max_body
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON answer for one webhook body."""
        with self._lock:
            self.stats["requests"] += 1
            if len(body) > self.max_body:
                return self.too_large()
            try:
                payload = Payload.model_validate_json(body)
            except ValidationError as exc:
                self.stats["malformed"] += 1
                return 400, {"error": _one_line(exc)}
            except (ValueError, RecursionError) as exc:
                self.stats["malformed"] += 1
                return 400, {"error": f"not JSON: {exc}"[:300]}
            signals = self._signals(payload)
        if signals:
            self.deliver(signals)
        return 200, {"status": "ok", "alerts": len(payload.alerts), "mapped": len(signals)}

    def too_large(self) -> tuple[int, dict[str, Any]]:
        """Refused unread: the sender (Alertmanager) logs the 413 and the body is never held."""
        self.stats["too_large"] += 1
        return 413, {"error": f"body larger than {self.max_body} bytes"}

    def _signals(self, payload: Payload) -> list[NodeSignal]:
        signals = []
        for alert in payload.alerts:
            self.stats["alerts"] += 1
            signal = to_signal(alert)
            if signal is None:
                self.stats["unmapped"] += 1
                continue
            self.stats["mapped"] += 1
            self.stats["resolved"] += alert.status == "resolved"
            signals.append(signal)
        return signals

    def asgi(self) -> Any:
        """A Starlette app with ``POST /alertmanager/webhook`` and ``GET /healthz``; mountable in
        another app. Raises ``ImportError`` without Starlette."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def webhook(request: Request) -> JSONResponse:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_body:
                    break
            code, answer = self.handle(bytes(body))
            return JSONResponse(answer, status_code=code)

        async def healthz(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        routes = [Route(PATH, webhook, methods=["POST"]), Route("/healthz", healthz)]
        return Starlette(routes=routes)


def _one_line(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"]) or "(top)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)[:300]


def asgi_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("starlette", "uvicorn"))


class ReceiverServer:
    """Serves an :class:`AlertReceiver` on ``host:port`` in a daemon thread (port 0: any free one,
    read :attr:`port` after :meth:`start`)."""

    def __init__(
        self, receiver: AlertReceiver, host: str = "127.0.0.1", port: int = 0, *, asgi: bool = True
    ) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self.asgi = asgi and asgi_available()
        self._thread: threading.Thread | None = None
        self._stop: Callable[[], None] = lambda: None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def start(self) -> ReceiverServer:
        """Bind now (a busy port raises ``OSError`` here, not in the thread), then serve."""
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]
        if self.asgi:
            self._start_uvicorn(sock)
        else:
            self._start_stdlib(sock)
        return self

    def stop(self) -> None:
        self._stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start_uvicorn(self, sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.receiver.asgi(), log_level="warning", lifespan="off", access_log=False
        )
        server = uvicorn.Server(config)

        def stop() -> None:
            server.should_exit = True

        self._stop = stop
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fleetmedic-alerts", daemon=True
        )
        self._thread.start()

    def _start_stdlib(self, sock: socket.socket) -> None:
        receiver = self.receiver

        class Handler(_Handler):
            target = receiver

        server = ThreadingHTTPServer((self.host, self.port), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.daemon_threads = True

        def stop() -> None:
            server.shutdown()
            server.server_close()

        self._stop = stop
        self._thread = threading.Thread(
            target=server.serve_forever, name="fleetmedic-alerts", daemon=True
        )
        self._thread.start()


class _Handler(BaseHTTPRequestHandler):
    target: AlertReceiver

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != PATH:
            return self._answer(404, {"error": f"POST {PATH}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.target.max_body:
            self.close_connection = True
            with self.target._lock:
                self.target.stats["requests"] += 1
                return self._answer(*self.target.too_large())
        self._answer(*self.target.handle(self.rfile.read(length)))

    def do_GET(self) -> None:
        code = 200 if self.path == "/healthz" else 404
        self._answer(code, {"status": "ok"} if code == 200 else {"error": "not found"})

    def _answer(self, code: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None
