"""The Alertmanager webhook receiver: payload validation, the mapping of alerts to node signals,
both servers (Starlette on uvicorn, and the standard library's), and a real Alertmanager
(Debian's ``prometheus-alertmanager``) sending to it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.model.inputs import Document, FactLine
from fleetmedic.sources.alertmanager import (
    Alert,
    AlertReceiver,
    ReceiverServer,
    asgi_available,
    to_signal,
)
from fleetmedic.sources.signals import NodeSignal

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
STARTS = "2026-03-04T11:40:00Z"


def alert(
    name: str, labels: dict[str, str], status: str = "firing", **annotations: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": annotations,
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-03-04T11:55:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=DCGM_FI_DEV_XID_ERRORS",
        "fingerprint": f"{abs(hash(name + json.dumps(labels))) % 16**16:016x}",
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    """Alertmanager 0.25's webhook body (version 4), as it sends it."""
    return {
        "receiver": "fleetmedic",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"].get("alertname", "")} if alerts else {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="GPUXidError"}',
        "truncatedAlerts": 0,
    }


XID = alert(
    "GPUXidError",
    {"Hostname": "gpu-h100-02", "gpu": "3", "xid": "79", "severity": "critical"},
    summary="XID 79 on gpu-h100-02 GPU 3",
    description="GPU has fallen off the bus",
)
NOT_READY = alert(
    "KubeNodeNotReady", {"instance": "gpu-h100-03:9100"}, summary="gpu-h100-03 has been unready"
)
ECC = alert("DCGMDoubleBitEccErrors", {"node": "gpu-h100-04", "gpu": "1"}, summary="DBE errors")
CLUSTER_WIDE = alert("KubeAPIErrorBudgetBurn", {"severity": "warning"}, summary="API errors")


def category(signal: NodeSignal) -> str:
    facts = tuple(FactLine(text, i) for i, text in enumerate(signal.facts, 1))
    return diagnose([Document("alerts", "k8s", facts=facts)], signal.key).category


# mapping -------------------------------------------------------------------------------------
def test_gpu_and_node_alerts_become_signals_the_catalog_diagnoses() -> None:
    signals = [to_signal(Alert.model_validate(a)) for a in (XID, NOT_READY, ECC)]
    assert all(s is not None for s in signals)
    xid, down, ecc = (s for s in signals if s is not None)
    assert (xid.node, down.node, ecc.node) == ("gpu-h100-02", "gpu-h100-03", "gpu-h100-04")
    assert xid.facts[0] == "alert GPUXidError on node/gpu-h100-02: NVIDIA Xid 79 reported (gpu 3)"
    assert [category(s) for s in (xid, down, ecc)] == [
        "gpu_hardware",
        "node_failure",
        "gpu_hardware",
    ]
    assert xid.key == f"alert:{XID['fingerprint']}@2026-03-04T11:40:00+00:00"
    assert xid.event is not None and (xid.event.source, xid.event.severity) == (
        "alertmanager",
        "error",
    )


def test_the_xid_code_is_read_from_the_annotations_when_no_label_has_it() -> None:
    raw = alert("DCGMXidErrors", {"node": "gpu-7"}, description="GPU 2 reported XID 48 (DBE)")
    signal = to_signal(Alert.model_validate(raw))
    assert signal is not None and "NVIDIA Xid 48" in signal.facts[0]


def test_an_alert_without_a_node_is_not_a_signal() -> None:
    assert to_signal(Alert.model_validate(CLUSTER_WIDE)) is None


# the receiver --------------------------------------------------------------------------------
def test_a_payload_is_validated_mapped_and_counted() -> None:
    got: list[NodeSignal] = []
    receiver = AlertReceiver(got.extend)
    code, answer = receiver.handle(json.dumps(payload(XID, NOT_READY, CLUSTER_WIDE)).encode())
    assert (code, answer) == (200, {"status": "ok", "alerts": 3, "mapped": 2})
    resolved = dict(XID, status="resolved", endsAt="2026-03-04T11:55:00Z")
    receiver.handle(json.dumps(payload(resolved, status="resolved")).encode())
    assert [(s.node, s.status) for s in got] == [
        ("gpu-h100-02", "firing"),
        ("gpu-h100-03", "firing"),
        ("gpu-h100-02", "resolved"),
    ]
    assert got[0].key == got[2].key
    assert receiver.stats == {"requests": 2, "alerts": 4, "mapped": 3, "unmapped": 1, "resolved": 1}


@pytest.mark.parametrize(
    "body, why",
    [
        (b"not json at all", "Invalid JSON"),
        (b"\xff\xfe\x00binary", "Invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, ""),
        (json.dumps({**payload(XID), "version": "3"}).encode(), "version"),
        (json.dumps({**payload(XID), "alerts": "many"}).encode(), "alerts"),
        (json.dumps(payload({**XID, "startsAt": "yesterday"})).encode(), "startsAt"),
        (json.dumps(payload({**XID, "labels": {"alertname": "X", "node": 7}})).encode(), "labels"),
        (json.dumps(payload({**XID, "startsAt": "2026-03-04T11:40:00"})).encode(), "timezone"),
        (
            json.dumps({"alerts": [{}] * 10_001, "version": "4", "status": "firing"}).encode(),
            "alerts",
        ),
    ],
)
def test_a_malformed_payload_is_a_400_never_an_exception(body: bytes, why: str) -> None:
    got: list[NodeSignal] = []
    receiver = AlertReceiver(got.extend)
    code, answer = receiver.handle(body)
    assert code == 400 and why in answer["error"]
    assert receiver.stats["malformed"] == 1 and got == []


def test_a_body_over_the_limit_is_refused_unread() -> None:
    receiver = AlertReceiver(lambda s: None, max_body=1000)
    assert receiver.handle(b" " * 1001)[0] == 413
    assert receiver.stats["too_large"] == 1


@pytest.fixture(params=["asgi", "stdlib"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[ReceiverServer, list[NodeSignal]]]:
    if request.param == "asgi" and not asgi_available():
        pytest.fail("starlette and uvicorn are dependencies (fleetmedic serve); install them")
    got: list[NodeSignal] = []
    lock = threading.Lock()

    def deliver(signals: list[NodeSignal]) -> None:
        with lock:
            got.extend(signals)

    server = ReceiverServer(AlertReceiver(deliver, max_body=64_000), asgi=request.param == "asgi")
    server.start()
    _wait_http(f"http://127.0.0.1:{server.port}/healthz")
    yield server, got
    server.stop()


def test_both_servers_receive_over_http(served: tuple[ReceiverServer, list[NodeSignal]]) -> None:
    server, got = served
    with httpx.Client(timeout=5) as client:
        ok = client.post(server.url, json=payload(XID, ECC))
        bad = client.post(server.url, content=b"{not json")
        big = client.post(server.url, content=b"x" * 100_000)
        lost = client.post(f"http://127.0.0.1:{server.port}/elsewhere", json=payload(XID))
    assert ok.status_code == 200 and ok.json()["mapped"] == 2
    assert bad.status_code == 400 and big.status_code == 413
    assert lost.status_code in (404, 405)
    assert [s.node for s in got] == ["gpu-h100-02", "gpu-h100-04"]
    assert server.receiver.stats["malformed"] == 1 and server.receiver.stats["too_large"] == 1


def _wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s")


# a real Alertmanager -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, ReceiverServer, list[NodeSignal]]]:
    binary = shutil.which("prometheus-alertmanager") or (
        ALERTMANAGER if Path(ALERTMANAGER).exists() else None
    )
    if binary is None:
        pytest.fail(
            "prometheus-alertmanager is missing: install the Debian package "
            "prometheus-alertmanager (apt-get install -y prometheus-alertmanager)"
        )
    got: list[NodeSignal] = []
    lock = threading.Lock()

    def deliver(signals: list[NodeSignal]) -> None:
        with lock:
            got.extend(signals)

    receiver = ReceiverServer(AlertReceiver(deliver)).start()
    config = {
        "route": {
            "receiver": "fleetmedic",
            "group_by": ["alertname", "node", "Hostname", "instance"],
            "group_wait": "100ms",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "fleetmedic",
                "webhook_configs": [{"url": receiver.url, "send_resolved": True}],
            }
        ],
    }
    (tmp_path / "alertmanager.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/-/ready", timeout=30)
        yield url, receiver, got
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        receiver.stop()


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text


@pytest.mark.services
def test_a_real_alertmanager_delivers_firing_and_resolved_alerts(
    alertmanager: tuple[str, ReceiverServer, list[NodeSignal]],
) -> None:
    url, receiver, got = alertmanager
    start = datetime.now(UTC).replace(microsecond=0)
    fired = [
        {"labels": a["labels"], "annotations": a["annotations"], "startsAt": start.isoformat()}
        for a in (XID, NOT_READY, CLUSTER_WIDE)
    ]
    _post_alerts(url, fired)
    _wait_for(lambda: len(got) >= 2 and receiver.receiver.stats["unmapped"] >= 1, 20, "firing")
    firing = {s.node: s for s in got}
    assert set(firing) == {"gpu-h100-02", "gpu-h100-03"}
    assert "NVIDIA Xid 79" in firing["gpu-h100-02"].facts[0]
    assert category(firing["gpu-h100-02"]) == "gpu_hardware"
    assert category(firing["gpu-h100-03"]) == "node_failure"
    ended = (start + timedelta(seconds=1)).isoformat()
    _post_alerts(url, [{**fired[0], "endsAt": ended}])
    _wait_for(lambda: any(s.status == "resolved" for s in got), 20, "the resolved alert")
    resolved = next(s for s in got if s.status == "resolved")
    assert resolved.node == "gpu-h100-02" and resolved.key == firing["gpu-h100-02"].key
    assert receiver.receiver.stats["malformed"] == 0
