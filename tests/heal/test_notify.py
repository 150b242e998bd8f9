"""Outgoing notifications against a local HTTP server that records what it receives: root-cause
de-duplication, the rate limit, resolves, retries, and the two payload shapes."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from healkit import FakeClock

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.notify import Destination, WebhookNotifier, incident_key
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.state import ControlStore
from fleetmedic.model.executor import RecordingExecutor
from fleetmedic.model.records import ActionRef, Diagnosis


@dataclass
class Sink:
    """Records every POST body by path; answers from a script of (code, headers, delay)."""

    received: dict[str, list[Any]] = field(default_factory=dict)
    script: dict[str, deque[tuple[int, dict[str, str], float]]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def answer(self, path: str, *answers: tuple[int, dict[str, str], float]) -> None:
        self.script.setdefault(path, deque()).extend(answers)

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[Any]:
        return self.received.get(path, [])


@pytest.fixture
def sink() -> Iterator[Sink]:
    recorder = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.received.setdefault(self.path, []).append(json.loads(body))
            queue = recorder.script.get(self.path)
            code, headers, delay = queue.popleft() if queue else (200, {}, 0.0)
            time.sleep(delay)
            try:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return None

    recorder.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.server.daemon_threads = True
    threading.Thread(target=recorder.server.serve_forever, daemon=True).start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def notifier(sink: Sink, *destinations: Destination, **options: Any) -> WebhookNotifier:
    options.setdefault("sleep", lambda s: None)
    return WebhookNotifier(
        destinations or (Destination(sink.url("/hook")),),
        now=lambda: datetime(2026, 3, 4, 12, 0, tzinfo=UTC),
        **options,
    )


KEY = incident_key("gpu_hardware", "kernel.xid_hardware", "gpu-h100-02")


# de-duplication and resolves -----------------------------------------------------------------
def test_one_message_per_root_cause_whatever_the_text(sink: Sink) -> None:
    clock = Clock()
    n = notifier(sink, clock=clock, repeat_after=3600)
    kw = {"category": "gpu_hardware", "signature": "kernel.xid_hardware", "scope": "gpu-h100-02"}
    assert n.notify_incident(KEY, "Xid 79 on GPU 3", "critical", **kw)
    assert not n.notify_incident(KEY, "NVIDIA Xid 79 (seen by DCGM)", "critical", **kw)
    assert not n.notify_incident(KEY, "GPU fell off the bus", "critical", **kw)
    other = incident_key("gpu_hardware", "kernel.xid_hardware", "gpu-h100-07")
    assert n.notify_incident(other, "Xid 79 on GPU 3", "critical", **{**kw, "scope": "gpu-h100-07"})
    clock.t = 3601  # past repeat_after: sent again, with the count
    assert n.notify_incident(KEY, "Xid 79 again", "critical", **kw)
    n.close()
    bodies = sink.bodies("/hook")
    assert [(b["scope"], b["count"]) for b in bodies] == [
        ("gpu-h100-02", 1),
        ("gpu-h100-07", 1),
        ("gpu-h100-02", 4),
    ]
    assert n.stats["deduplicated"] == 2 and n.stats["sent"] == 3


def test_a_resolve_goes_to_whoever_heard_of_the_incident(sink: Sink) -> None:
    n = notifier(sink)
    n.notify_incident(KEY, "Xid 79", "critical", category="gpu_hardware", scope="gpu-h100-02")
    assert n.resolve(KEY)
    assert not n.resolve(KEY)  # already closed
    assert not n.resolve("never|opened|x")
    n.close()
    assert [b["status"] for b in sink.bodies("/hook")] == ["firing", "resolved"]
    assert n.stats["resolved"] == 1


def test_the_controllers_notify_joins_the_incident_of_the_same_cause(sink: Sink) -> None:
    n = notifier(sink)
    key = incident_key("image_pull", "k8s.image_pull", "ml-team/train")
    n.notify_incident(
        key,
        "ErrImagePull",
        category="image_pull",
        signature="k8s.image_pull",
        scope="ml-team/train",
    )
    # what Controller._decide writes for an auto notify action, worded its own way
    n.notify("ml-team/train", "policy tell-platform-team: image_pull: Check the image name.")
    n.notify("ml-team/train", "policy tell-platform-team: image_pull: Check the image name.")
    n.notify("ml-team/other", "policy tell-platform-team: scheduling: Ask for fewer GPUs.")
    n.close()
    bodies = sink.bodies("/hook")
    assert [b["key"] for b in bodies] == [key, "scheduling|-|ml-team/other"]
    assert n.incidents[key].count == 3


# rate limit ------------------------------------------------------------------------------------
def test_a_storm_of_causes_is_rate_limited_per_destination(sink: Sink) -> None:
    clock = Clock()
    slow = Destination(sink.url("/slow"), rate_per_minute=6, burst=2)
    fast = Destination(sink.url("/fast"), rate_per_minute=600, burst=100)
    n = notifier(sink, slow, fast, clock=clock)
    for i in range(5):
        n.notify_incident(f"nccl_comm|-|job-{i}", f"NCCL timeout {i}", category="nccl_comm")
    clock.t = 10.0  # one token back at 6 per minute
    n.notify_incident("nccl_comm|-|job-5", "NCCL timeout 5", category="nccl_comm")
    n.close()
    assert len(sink.bodies("/fast")) == 6
    slow_bodies = sink.bodies("/slow")
    assert [b["key"] for b in slow_bodies] == [
        "nccl_comm|-|job-0",
        "nccl_comm|-|job-1",
        "nccl_comm|-|job-5",
    ]
    assert slow_bodies[-1]["held_back"] == 3
    assert n.stats["rate_limited"] == 3
    assert n.resolve("nccl_comm|-|job-3")  # the fast destination heard of it
    assert not n.resolve("nccl_comm|-|job-6")


# delivery ------------------------------------------------------------------------------------
def test_server_errors_and_throttling_are_retried_client_errors_are_not(sink: Sink) -> None:
    slept: list[float] = []
    sink.answer("/hook", (503, {}, 0.0), (429, {"Retry-After": "7"}, 0.0))
    sink.answer("/bad", (400, {}, 0.0))
    n = notifier(
        sink,
        Destination(sink.url("/hook")),
        Destination(sink.url("/bad")),
        sleep=slept.append,
    )
    n.notify_incident(KEY, "Xid 79", category="gpu_hardware")
    n.close()
    assert len(sink.bodies("/hook")) == 3 and len(sink.bodies("/bad")) == 1
    assert slept[0] < 1.0 + 1e-9 and slept[1] == 7.0
    assert (n.stats["sent"], n.stats["failed"], n.stats["retries"]) == (1, 1, 2)


def test_a_timeout_is_retried_and_a_dead_endpoint_gives_up(sink: Sink) -> None:
    sink.answer("/hook", (200, {}, 1.0))  # answers after the client gave up
    n = notifier(sink, timeout=0.2, retries=1)
    n.notify_incident(KEY, "Xid 79", category="gpu_hardware")
    n.close()
    assert n.stats["sent"] == 1 and n.stats["retries"] == 1
    dead = notifier(sink, Destination("http://127.0.0.1:9/hook"), retries=2)
    dead.notify_incident(KEY, "Xid 79", category="gpu_hardware")
    dead.close()
    assert dead.stats["failed"] == 1 and dead.stats["retries"] == 2


def test_a_full_queue_drops_and_counts(sink: Sink) -> None:
    sink.answer("/hook", *[(200, {}, 0.2)] * 3)
    n = notifier(sink, queue_size=1)
    for i in range(4):
        n.notify_incident(f"k{i}|-|s", "x", category="code_error")
    n.close()
    assert n.stats["dropped"] >= 2


# payloads ------------------------------------------------------------------------------------
def test_the_generic_and_slack_shapes(sink: Sink) -> None:
    n = notifier(sink, Destination(sink.url("/generic")), Destination(sink.url("/slack"), "slack"))
    n.notify_incident(
        KEY,
        "NVIDIA Xid 79 <GPU 3> & NVLink",
        "critical",
        category="gpu_hardware",
        signature="kernel.xid_hardware",
        scope="gpu-h100-02",
    )
    n.resolve(KEY)
    n.close()
    generic = sink.bodies("/generic")[0]
    assert generic == {
        "source": "fleetmedic",
        "version": 1,
        "status": "firing",
        "key": KEY,
        "category": "gpu_hardware",
        "signature": "kernel.xid_hardware",
        "scope": "gpu-h100-02",
        "severity": "critical",
        "summary": "NVIDIA Xid 79 <GPU 3> & NVLink",
        "count": 1,
        "first_seen": "2026-03-04T12:00:00+00:00",
        "sent_at": "2026-03-04T12:00:00+00:00",
        "held_back": 0,
    }
    firing, resolved = sink.bodies("/slack")
    assert firing["text"].startswith(":rotating_light: [FIRING] gpu_hardware on gpu-h100-02")
    assert "&lt;GPU 3&gt; &amp; NVLink" in firing["blocks"][0]["text"]["text"]
    assert firing["blocks"][0]["type"] == "section" and firing["blocks"][1]["type"] == "context"
    assert "signature `kernel.xid_hardware`" in firing["blocks"][1]["elements"][0]["text"]
    assert resolved["text"].startswith(":white_check_mark: [RESOLVED]")


# with the controller -------------------------------------------------------------------------
POLICIES = """
version: 1
policies:
  - name: tell-platform-team
    match: {categories: [image_pull]}
    action: notify
    mode: auto
"""


def test_the_controller_notifies_through_it(sink: Sink) -> None:
    clock = FakeClock()
    n = notifier(sink)
    policies = parse_policies(POLICIES)
    with ControlStore(":memory:") as control:
        guard = Guard(policies.guard, Fleet({}), clock)
        controller = Controller(
            policies, guard, AuditLog(control), RecordingExecutor(), clock=clock, notifier=n
        )
        diagnosis = Diagnosis(
            input="pod.json",
            category="image_pull",
            owner="platform",
            confidence=0.9,
            summary="ErrImagePull",
            action=ActionRef(kind="notify", advice="Check the image name and the registry."),
            retryable=False,
            signature="k8s.image_pull",
            job_id="ml-team/train",
        )
        [action] = controller.handle(HealEvent(diagnosis))
    n.close()
    assert action.state == "done"
    [body] = sink.bodies("/hook")
    assert body["key"] == "image_pull|-|ml-team/train"
    assert "Check the image name" in body["summary"]
