"""The HTTP client: auth headers, response parsing and every way a response can be bad."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fleetmedic.model.errors import FleetmedicError
from fleetmedic.sources.prometheus_api import Auth, PrometheusAPI, PrometheusError


def _ok(result: object, kind: str = "vector") -> httpx.Response:
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": kind, "result": result}}
    )


def _api(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> PrometheusAPI:
    transport = httpx.MockTransport(handler)
    return PrometheusAPI(
        "http://prom:9090/prometheus/", transport=transport, sleep=lambda _s: None, **kw
    )


def test_bearer_token_org_id_and_form_body_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok([{"metric": {"gpu": "0"}, "value": [1700000000.5, "42"]}])

    at = datetime(2026, 1, 1, tzinfo=UTC)
    with _api(handler, auth=Auth(token="s3cret", org_id="team-a")) as api:
        result = api.query("DCGM_FI_DEV_GPU_UTIL", at)
    request = seen[0]
    assert request.url.path == "/prometheus/api/v1/query" and request.method == "POST"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Scope-OrgID"] == "team-a"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"query": "DCGM_FI_DEV_GPU_UTIL", "time": f"{at.timestamp():.3f}"}
    assert result.series[0].labels == {"gpu": "0"}
    assert result.series[0].points == ((1700000000.5, 42.0),)


def test_basic_auth_and_range_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok([{"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}], "matrix")

    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
    with _api(handler, auth=Auth(username="grafana", password="pw")) as api:
        result = api.query_range("up", start, end, 60)
    assert seen[0].headers["Authorization"].startswith("Basic ")
    form = dict(httpx.QueryParams(seen[0].content.decode()))
    assert form["step"] == "60" and seen[0].url.path.endswith("/api/v1/query_range")
    assert result.series[0].points == ((1.0, 1.0), (2.0, 2.0))


def test_token_and_username_together_are_refused() -> None:
    with pytest.raises(FleetmedicError, match="not both"):
        PrometheusAPI("http://x", auth=Auth(token="t", username="u"))


def test_nan_and_inf_samples_are_dropped_and_counted() -> None:
    result_rows = [
        {"metric": {"gpu": "0"}, "value": [1.0, "NaN"]},
        {"metric": {"gpu": "1"}, "value": [1.0, "+Inf"]},
        {"metric": {"gpu": "2"}, "value": [1.0, "-Inf"]},
        {"metric": {"gpu": "3"}, "value": [1.0, "0.5"]},
    ]
    with _api(lambda _r: _ok(result_rows)) as api:
        result = api.query("x")
    assert [s.labels["gpu"] for s in result.series] == ["3"] and result.skipped == 3


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(200, content=b"<html>proxy</html>"),
            "HTTP 200, not JSON: <html>proxy</html>",
        ),
        (httpx.Response(200, content=b""), "not JSON: (empty)"),
        (httpx.Response(200, json=[1, 2]), "expected a JSON object"),
        (httpx.Response(200, json={"status": "success"}), "no data object"),
        (
            httpx.Response(
                200, json={"status": "success", "data": {"resultType": "string", "result": []}}
            ),
            "unexpected result shape",
        ),
        (
            httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"value": [1, "1"]}]},
                },
            ),
            "unexpected result shape",
        ),
        (
            httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {}, "value": [1, "abc"]}],
                    },
                },
            ),
            "unexpected result shape",
        ),
        (
            httpx.Response(
                422,
                json={
                    "status": "error",
                    "errorType": "execution",
                    "error": "many-to-many\nmatching",
                },
            ),
            "HTTP 422 execution: many-to-many matching",
        ),
    ],
)
def test_bad_responses_are_one_line_errors(response: httpx.Response, message: str) -> None:
    with _api(lambda _r: response) as api, pytest.raises(PrometheusError) as caught:
        api.query("x")
    text = str(caught.value)
    assert message in text and "\n" not in text and not caught.value.transient


def test_transient_errors_are_retried_with_backoff_then_reported() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, text="upstream overloaded")

    transport = httpx.MockTransport(handler)
    api = PrometheusAPI(
        "http://prom", transport=transport, retries=2, backoff=0.5, sleep=sleeps.append
    )
    with (
        api,
        pytest.raises(PrometheusError, match="HTTP 503, not JSON: upstream overloaded") as caught,
    ):
        api.query("x")
    assert len(calls) == 3 and sleeps == [0.5, 1.0] and caught.value.transient


def test_a_transient_error_then_success_returns_the_result() -> None:
    answers = [
        httpx.Response(
            429, json={"status": "error", "errorType": "too_many", "error": "slow down"}
        ),
        _ok([]),
    ]
    with _api(lambda _r: answers.pop(0)) as api:
        assert api.query("x").series == []


def test_connection_refused_and_timeouts_do_not_hang() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with (
        _api(refused, retries=0) as api,
        pytest.raises(
            PrometheusError, match="cannot reach http://prom:9090/prometheus: connection refused"
        ),
    ):
        api.query("x")
    with _api(slow, retries=0) as api, pytest.raises(PrometheusError, match="timed out"):
        api.query("x")


def test_a_real_closed_port_fails_fast() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        PrometheusAPI(f"http://127.0.0.1:{port}", timeout=2, retries=0) as api,
        pytest.raises(PrometheusError) as caught,
    ):
        api.query("up")
    assert caught.value.transient and "cannot reach" in str(caught.value)


def test_scalar_results_and_warnings() -> None:
    body = {
        "status": "success",
        "warnings": ["partial response"],
        "data": {"resultType": "scalar", "result": [5.0, "3"]},
    }
    with _api(lambda _r: httpx.Response(200, content=json.dumps(body).encode())) as api:
        result = api.query("scalar(x)")
    assert result.series[0].points == ((5.0, 3.0),) and result.warnings == ("partial response",)
