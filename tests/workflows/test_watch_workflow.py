"""The whole live loop against the fake API server: watch → detect → fetch logs → diagnose → heal
events → the controller (packaged policies, dry-run), with alerts coming in over HTTP and
notifications going out to a recording webhook; and ``fleetmedic watch`` itself."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sources"))
from kube_watch_fake import OBJECTS, FakeApi, healthy, running, session_for

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller
from fleetmedic.heal.guard import Guard
from fleetmedic.heal.notify import Destination, WebhookNotifier
from fleetmedic.heal.pipeline import Pipeline
from fleetmedic.heal.policy import load_policies
from fleetmedic.heal.state import ControlStore
from fleetmedic.model.executor import RecordingExecutor
from fleetmedic.model.records import Action
from fleetmedic.sources.alertmanager import AlertReceiver, ReceiverServer
from fleetmedic.sources.kube_watch import WatchOptions
from fleetmedic.workflows.watch import WatchConfig, WatchLoop, envelope

ROOT = Path(__file__).parents[2]
RANKS = ROOT / "examples" / "oom-cascade"
FLEETMEDIC = Path(sys.executable).parent / "fleetmedic"
CONFIG = WatchConfig(
    settle=0.3,
    since=timedelta(days=3650),
    tick=0.05,
    watch=WatchOptions(timeout_seconds=(2, 3), read_slack=1.0),
)


class Recorder:
    """A webhook that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                recorder.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def load_cluster(api: FakeApi, *, failed: bool) -> dict[str, dict[str, Any]]:
    """The recorded objects, as they were before anything failed unless ``failed``."""
    objects = {}
    for name in (
        "nodes.json",
        "pytorchjob-llm-7b.json",
        "job-tokenize-shards.json",
        "job-eval-gemma.json",
    ):
        for obj in json.loads((OBJECTS / name).read_text())["items"]:
            objects[obj["metadata"]["name"]] = obj
    for name, obj in objects.items():
        before = obj
        if not failed and obj["kind"] == "Pod":
            before = running(obj)
        elif not failed and obj["kind"] in ("PyTorchJob", "Job"):
            before = copy.deepcopy(obj)
            before["status"] = {"active": 1, "conditions": obj["status"].get("conditions", [])[:1]}
            if obj["kind"] == "Job":
                before["status"].pop("conditions")
        elif not failed and name == "gpu-h100-03":
            before = healthy(obj)
        api.put(before, event=None)
    for rank, name in enumerate(["master-0", "worker-0", "worker-1", "worker-2"]):
        api.log("ml-team", f"llm-7b-{name}", "pytorch", (RANKS / f"rank{rank}.log").read_bytes())
    logs = OBJECTS / "logs"
    api.log(
        "ml-team",
        "tokenize-shards-8xk2w",
        "tokenize",
        (logs / "tokenize-shards-8xk2w.tokenize.log").read_bytes(),
    )
    api.log(
        "ml-team", "eval-gemma-q7x9d", "eval", (logs / "eval-gemma-q7x9d.eval.log").read_bytes()
    )
    previous = (logs / "eval-gemma-q7x9d.eval.previous.log").read_bytes()
    api.log("ml-team", "eval-gemma-q7x9d", "eval", previous, previous=True)
    return objects


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi(bookmark_every=0.5, max_watch_seconds=3)
    fake.start()
    yield fake
    fake.stop()
    assert fake.crashes == []


async def until(check: Callable[[], bool], timeout: float = 20.0, said: Any = "") -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met in time: {said() if callable(said) else said}")


def test_failures_are_watched_diagnosed_healed_and_notified(api: FakeApi, tmp_path: Path) -> None:
    objects = load_cluster(api, failed=False)
    sink = Recorder()
    notifier = WebhookNotifier([Destination(sink.url)], sleep=lambda s: None)
    events: list[dict[str, Any]] = []

    async def main() -> tuple[Any, list[Action], dict[str, Any]]:
        session = session_for(api)
        loop = WatchLoop(
            session, CONFIG, notifier=notifier, on_event=lambda i: events.append(envelope(i))
        )
        with ControlStore(tmp_path / "heal.sqlite") as control:
            policies = load_policies()
            guard = Guard(policies.guard, loop.fleet_now(), _now)
            controller = Controller(
                policies, guard, AuditLog(control), RecordingExecutor(), clock=_now
            )
            api.fault("watch:/api/v1/pods", "drop", after=2)  # a dropped stream mid-failure
            await loop.start()
            assert await loop.synced(10)
            guard.fleet = loop.fleet_now()
            receiver = ReceiverServer(AlertReceiver(loop.deliver_from_thread())).start()
            run = asyncio.create_task(Pipeline(controller).run(loop.events()))
            await fail_everything(api, objects, receiver)
            await until(
                lambda: loop.stats["diagnosed"] >= 5,
                said=lambda: ([e["diagnosis"]["input"] for e in events], loop.report()),
            )
            await resolve_and_recover(api, objects, receiver, loop)
            loop.stop()
            summary = await run
            receiver.stop()
            actions = AuditLog(control).recent(100)
            await session.aclose()
            return summary, actions, loop.report()

    summary, actions, report = asyncio.run(main())
    notifier.close()
    sink.stop()
    got = {e["diagnosis"]["input"]: e for e in events}
    assert {k: e["diagnosis"]["category"] for k, e in got.items()} == {
        "PyTorchJob/ml-team/llm-7b#1": "gpu_oom",
        "Job/ml-team/tokenize-shards#1": "host_oom",
        "Job/ml-team/eval-gemma#1": "dependency_error",
        f"event:{objects_uid(objects)}": "gpu_hardware",
        next(k for k in got if k.startswith("alert:")): "gpu_hardware",
    }
    llm = got["PyTorchJob/ml-team/llm-7b#1"]
    assert llm["job"] == {
        "job_id": "ml-team/llm-7b",
        "num_gpus": 16.0,
        "num_nodes": 2,
        "status": "failed",
        "attempts": 1,
    }
    assert llm["diagnosis"]["evidence"][0]["file"] == "ml-team/llm-7b-worker-2/pytorch.log"
    assert summary.handled == 5 and summary.duplicates == 0
    assert {(a.kind, a.target, a.state) for a in actions} >= {
        ("suggest_fix", "ml-team/llm-7b", "proposed"),
        ("suggest_fix", "ml-team/eval-gemma", "proposed"),
    }
    statuses = [(b["status"], b["scope"]) for b in sink.bodies]
    assert statuses.count(("firing", "gpu-h100-04")) == 1
    assert ("resolved", "gpu-h100-04") in statuses  # the alert resolved
    assert ("resolved", "ml-team/eval-gemma") in statuses  # the crash loop ended
    assert report["kinds"]["Pod"]["errors"] == 1  # the dropped stream, resumed
    assert report["logs"]["fetched"] >= 7


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def objects_uid(objects: dict[str, dict[str, Any]]) -> str:
    events = json.loads((OBJECTS / "events.json").read_text())["items"]
    return str(events[0]["metadata"]["uid"])


async def fail_everything(
    api: FakeApi, objects: dict[str, dict[str, Any]], receiver: ReceiverServer
) -> None:
    """The recorded failures happen, in the order a cluster would show them."""
    for name in (
        "llm-7b-worker-2",
        "llm-7b-master-0",
        "llm-7b-worker-0",
        "llm-7b-worker-1",
        "llm-7b",
    ):
        api.put(objects[name])
    api.put(objects["tokenize-shards-8xk2w"])
    api.put(objects["tokenize-shards"])
    api.put(objects["eval-gemma-q7x9d"])
    xid = json.loads((OBJECTS / "events.json").read_text())["items"][0]
    api.put(xid)
    alert = {
        "status": "firing",
        "labels": {"alertname": "DCGMDoubleBitEccErrors", "node": "gpu-h100-04", "gpu": "1"},
        "annotations": {"summary": "double-bit ECC errors on GPU 1"},
        "startsAt": "2026-11-26T09:00:00Z",
        "fingerprint": "6b1c2d3e4f5a6b7c",
    }
    body = {"version": "4", "status": "firing", "receiver": "fleetmedic", "alerts": [alert]}
    async with httpx.AsyncClient() as client:
        assert (await client.post(receiver.url, json=body)).status_code == 200
    receiver.receiver.stats["last_alert"] = 0
    objects["_alert"] = alert


async def resolve_and_recover(
    api: FakeApi, objects: dict[str, dict[str, Any]], receiver: ReceiverServer, loop: WatchLoop
) -> None:
    alert = dict(objects["_alert"], status="resolved", endsAt="2026-11-26T09:30:00Z")
    body = {"version": "4", "status": "resolved", "receiver": "fleetmedic", "alerts": [alert]}
    async with httpx.AsyncClient() as client:
        assert (await client.post(receiver.url, json=body)).status_code == 200
    api.put(running(objects["eval-gemma-q7x9d"]))
    await until(lambda: loop.stats["resolved"] >= 2, said=loop.report)


def test_a_crashing_watcher_stops_the_loop_loudly(api: FakeApi) -> None:
    load_cluster(api, failed=False)

    async def main() -> None:
        session = session_for(api)
        loop = WatchLoop(session, CONFIG)

        def broken(change: Any) -> None:
            raise RuntimeError("a bug in the detector")

        await loop.start()
        loop.watchers[1].on_change = broken
        api.put(running(api.objects[("", "pods")][("ml-team", "llm-7b-worker-0")]))
        with pytest.raises(RuntimeError, match="a bug in the detector"):
            async for _ in loop.events():
                pass
        await session.aclose()

    asyncio.run(main())


def test_fleetmedic_watch_runs_the_loop_and_prints_envelopes(api: FakeApi, tmp_path: Path) -> None:
    load_cluster(api, failed=True)
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    sink = Recorder()
    result = subprocess.run(
        [
            str(FLEETMEDIC),
            "watch",
            "--kubeconfig",
            str(kubeconfig),
            "--control",
            str(tmp_path / "heal.sqlite"),
            "--kinds",
            "Node,Pod,Job,PyTorchJob",
            "--settle",
            "0.3",
            "--since-minutes",
            str(10 * 365 * 24 * 60),
            "--duration",
            "4",
            "--format",
            "json",
            "--notify-webhook",
            sink.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    sink.stop()
    assert result.returncode == 0, result.stderr
    assert sorted(b["category"] for b in sink.bodies) == [
        "dependency_error",
        "gpu_oom",
        "host_oom",
        "node_failure",
    ]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary = lines[-1]["summary"]
    categories = sorted(line["diagnosis"]["category"] for line in lines[:-1])
    assert categories == ["dependency_error", "gpu_oom", "host_oom", "node_failure"]
    assert summary["handled"] == 4 and summary["malformed"] == 0
    assert summary["watch"]["cached"] == {"pods": 6, "nodes": 4, "jobs": 3, "events": 0}
    assert summary["actions"] == {"proposed": 3}
    history = subprocess.run(
        [
            str(FLEETMEDIC),
            "heal",
            "history",
            "--control",
            str(tmp_path / "heal.sqlite"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    targets = {a["target"] for a in json.loads(history.stdout)["actions"]}
    assert targets == {"ml-team/llm-7b", "ml-team/tokenize-shards", "ml-team/eval-gemma"}
    envelopes = tmp_path / "events.jsonl"
    envelopes.write_text("".join(line + "\n" for line in result.stdout.splitlines()[:-1]))
    replay = subprocess.run(
        [
            str(FLEETMEDIC),
            "heal",
            "run",
            str(envelopes),
            "--control",
            str(tmp_path / "heal.sqlite"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    replayed = json.loads(replay.stdout)
    assert (replayed["handled"], replayed["malformed"], replayed["actions"]) == (4, 0, {})


def test_fleetmedic_watch_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    for args, said in [
        (["--kubeconfig", str(tmp_path / "missing")], "no kubeconfig at"),
        (["--kinds", "Pod,Deployment"], "--kinds takes"),
        (["--executor", "ssh"], "--executor must be one of"),
        (["--notify-slack", "hooks.slack.com/x"], "must start with http"),
    ]:
        result = subprocess.run(
            [str(FLEETMEDIC), "watch", *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert result.stderr.startswith("fleetmedic: error: ") and said in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_every_request_of_the_loop_is_granted_by_the_deployed_rbac(api: FakeApi) -> None:
    """What the loop asked of the server, in RBAC terms, against deploy/kustomize/rbac.yaml."""
    import re

    import yaml

    objects = load_cluster(api, failed=False)

    async def main() -> None:
        session = session_for(api)
        loop = WatchLoop(session, CONFIG)
        await loop.start()
        await loop.synced(10)
        api.put(objects["eval-gemma-q7x9d"])
        async for _ in loop.events():
            loop.stop()
        await session.aclose()

    asyncio.run(main())
    path = re.compile(
        r"/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/[^/]+)?/(?P<plural>[^/]+)"
    )
    asked = set()
    for what, url, _ in api.requests:
        m = path.match(url)
        assert m is not None
        resource = "pods/log" if what == "log" else m["plural"]
        asked.add((m["group"] or "", resource, "get" if what == "log" else what))
    docs = yaml.safe_load_all((ROOT / "deploy" / "kustomize" / "rbac.yaml").read_text())
    granted = {
        (group, resource, verb)
        for doc in docs
        if doc and doc["kind"] == "ClusterRole"
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("", "pods/log", "get") in asked and ("ray.io", "rayjobs", "watch") in asked
    assert asked <= granted, f"not granted: {sorted(asked - granted)}"


def test_every_option_of_fleetmedic_watch_is_documented() -> None:
    import re

    help_text = subprocess.run(
        [str(FLEETMEDIC), "watch", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    options = set(re.findall(r"--[a-z][a-z-]+", help_text)) - {"--help"}
    documented = (ROOT / "docs" / "live.md").read_text()
    assert len(options) > 15
    assert not [o for o in options if f"`{o}" not in documented and f"{o} " not in documented]
