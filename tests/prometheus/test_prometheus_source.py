"""From query results to events, heal events and usage rows, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fleetmedic.heal.events import Incoming, parse_event
from fleetmedic.sources.prometheus import PrometheusSource, locate, save
from fleetmedic.sources.prometheus_api import PrometheusAPI, Series
from fleetmedic.sources.prometheus_catalog import load_catalog
from fleetmedic.store import Store

LABELS = {"Hostname": "n1", "gpu": "3", "UUID": "GPU-abc", "modelName": "NVIDIA H100 80GB HBM3"}
AT = datetime(2026, 1, 1, tzinfo=UTC)


class FakeProm:
    """Answers each query from ``answers`` (keyed by a substring of the PromQL)."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        for needle, answer in self.answers.items():
            if needle in query:
                return answer if isinstance(answer, httpx.Response) else _vector(answer)
        return _vector([])


def _vector(rows: list[tuple[dict[str, str], str]]) -> httpx.Response:
    result = [{"metric": m, "value": [AT.timestamp(), v]} for m, v in rows]
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
    )


@pytest.fixture
def prom() -> FakeProm:
    return FakeProm()


@pytest.fixture
def source(prom: FakeProm) -> PrometheusSource:
    api = PrometheusAPI("http://prom", transport=httpx.MockTransport(prom), retries=0)
    return PrometheusSource(api, load_catalog(), clock=lambda: AT)


def test_an_xid_is_one_event_until_its_code_changes(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["XID"] = [(LABELS, "79")]
    first = source.poll()
    assert [e.message for e in first.events] == [
        "Xid 79 (GPU has fallen off the bus) on GPU 3 (NVIDIA H100 80GB HBM3, GPU-abc) of node n1"
    ]
    assert source.poll().events == []
    prom.answers["XID"] = [(LABELS, "48")]
    assert [e.raw and e.raw["value"] for e in source.poll().events] == [48.0]
    prom.answers["XID"] = []
    assert source.poll().events == []
    prom.answers["XID"] = [(LABELS, "48")]
    assert len(source.poll().events) == 1, "a fault that went away and came back is new"


def test_application_xids_are_ignored(prom: FakeProm, source: PrometheusSource) -> None:
    prom.answers["XID"] = [(LABELS, "13"), ({**LABELS, "gpu": "4", "UUID": "GPU-d"}, "31")]
    assert source.poll().events == []


def test_a_heal_event_is_accepted_by_heal_run(prom: FakeProm, source: PrometheusSource) -> None:
    prom.answers["DBE"] = [(LABELS, "2")]
    result = source.poll()
    assert [e.reason for e in result.events] == ["EccDoubleBit"]
    incoming = parse_event(json.dumps(result.heal[0]))
    assert isinstance(incoming, Incoming)
    diagnosis = incoming.event.diagnosis
    assert (diagnosis.category, diagnosis.owner, incoming.event.node_id) == (
        "gpu_hardware",
        "hardware",
        "n1",
    )
    assert diagnosis.details["uuid"] == "GPU-abc"
    assert incoming.event.cause_id.startswith("id:prometheus:")


def test_signals_without_a_category_make_no_heal_event(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["GPU_TEMP[5m]"] = [(LABELS, "91.4")]
    result = source.poll()
    assert [e.message for e in result.events] == [
        "GPU 3 (NVIDIA H100 80GB HBM3) of node n1 at 91 °C for 5 min"
    ]
    assert result.heal == []


def test_node_exporter_signals_name_the_node_from_instance(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["node_filesystem"] = [
        ({"instance": "10.0.0.7:9100", "mountpoint": "/raid"}, "0.031")
    ]
    prom.answers["up{"] = [({"instance": "gpu-node-9:9100", "job": "node-exporter"}, "0")]
    result = source.poll()
    messages = sorted(e.message for e in result.events)
    assert messages == [
        "/raid on node 10.0.0.7 has 3.1% space left",
        "node exporter on gpu-node-9 is down",
    ]
    assert [h["diagnosis"]["category"] for h in result.heal] == ["node_failure"]
    assert {e.object for e in result.events} == {"node/10.0.0.7", "node/gpu-node-9"}


def test_series_without_a_node_are_counted_not_fatal(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["XID"] = [({"gpu": "0"}, "79")]
    result = source.poll()
    assert result.events == [] and result.counts["gpu_xid.unplaced"] == 1


def test_one_failing_query_does_not_stop_the_others(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["XID"] = httpx.Response(
        500, json={"status": "error", "errorType": "internal", "error": "boom"}
    )
    prom.answers["DCGM_FI_DEV_GPU_UTIL"] = [(LABELS, "50")]
    result = source.poll()
    assert result.errors == [
        "gpu_xid: DCGM_FI_DEV_XID_ERRORS != 0 and changes(DCGM_FI_DEV_XID_ERRORS[10m]) > 0: HTTP 500 internal: boom"
    ]
    assert result.counts["gpu_xid.errors"] == 1
    assert [(u.metric, u.value) for u in result.usage] == [("gpu_util", 0.5)]


def test_usage_rows_are_scaled_and_saved_idempotently(
    prom: FakeProm, source: PrometheusSource
) -> None:
    prom.answers["DCGM_FI_DEV_GPU_UTIL"] = [(LABELS, "97")]
    prom.answers["DCGM_FI_PROF_SM_ACTIVE"] = [(LABELS, "0.8")]
    prom.answers["XID"] = [(LABELS, "79")]
    result = source.poll()
    with Store(":memory:") as store:
        save(store, result)
        save(store, result)
        usage = store.con.execute(
            "SELECT metric, value, uuid, gpu_model FROM gpu_usage ORDER BY metric"
        ).fetchall()
        events = store.con.execute("SELECT source, kind, object, severity FROM events").fetchall()
    assert usage == [
        ("gpu_util", 0.97, "GPU-abc", "NVIDIA H100 80GB HBM3"),
        ("sm_active", 0.8, "GPU-abc", "NVIDIA H100 80GB HBM3"),
    ]
    assert events == [("prometheus", "gpu", "node/n1/gpu/3", "error")]


def test_backfill_reports_each_onset_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        if "XID" not in query:
            return httpx.Response(
                200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}
            )
        points = [[100, "79"], [101, "79"], [102, "48"], [110, "48"], [111, "48"]]
        result = [{"metric": LABELS, "values": points}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    api = PrometheusAPI("http://prom", transport=httpx.MockTransport(handler))
    source = PrometheusSource(api, load_catalog())
    result = source.backfill(AT, AT, 1.0)
    assert [(e.ts.timestamp(), e.raw and e.raw["value"]) for e in result.events] == [
        (100, 79.0),
        (102, 48.0),
        (110, 48.0),
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"node": "a", "Hostname": "b"}, "a"),
        ({"Hostname": "b", "instance": "c:9400"}, "b"),
        ({"instance": "c:9400"}, "c"),
        ({"instance": "[::1]:9400"}, "[::1]"),
        ({}, None),
    ],
)
def test_the_node_is_the_first_node_label_present(
    labels: dict[str, str], expected: str | None
) -> None:
    where = locate(labels, load_catalog().node_labels)
    assert (where.node if where else None) == expected


def test_read_is_pure_on_given_series(source: PrometheusSource) -> None:
    signal = next(s for s in source.catalog.signals if s.name == "power")
    series = [Series(LABELS, ((1.0, 600.0), (2.0, 610.0)))]
    result = source.read(signal, series)
    assert [(u.ts.timestamp(), u.value) for u in result.usage] == [(1.0, 600.0), (2.0, 610.0)]
