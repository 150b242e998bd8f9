"""The REST API: shapes, the KPI contract, pagination limits and structured errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_store import EVIL_JOB, VIEWER

from fleetmedic.cli import app as cli

AUTH = {"Authorization": f"Bearer {VIEWER}"}


def get(client: TestClient, url: str, **params: object) -> dict:
    response = client.get(url, headers=AUTH, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_kpi_equals_the_cli_json(client: TestClient, web_db: Path) -> None:
    result = CliRunner().invoke(cli, ["kpi", "--db", str(web_db), "--format", "json"])
    assert result.exit_code == 0, result.output

    assert get(client, "/api/v1/kpi") == json.loads(result.stdout)


def test_kpi_with_period_and_grouping_equals_the_cli(client: TestClient, web_db: Path) -> None:
    args = ["--since", "2024-06-04", "--until", "2024-06-05T12:00", "--by", "team"]
    result = CliRunner().invoke(cli, ["kpi", "--db", str(web_db), "--format", "json", *args])

    api = get(client, "/api/v1/kpi", since="2024-06-04", until="2024-06-05T12:00", by="team")
    assert api == json.loads(result.stdout)
    assert api["groups"]


def test_second_kpi_request_is_served_from_the_cache(client: TestClient) -> None:
    first = client.get("/api/v1/kpi", headers=AUTH)
    second = client.get("/api/v1/kpi", headers=AUTH)

    assert first.headers["X-Fleetmedic-Cache"] == "miss"
    assert second.headers["X-Fleetmedic-Cache"] == "hit"
    assert first.json() == second.json()


def test_overview_has_cards_trends_and_series(client: TestClient) -> None:
    data = get(client, "/api/v1/overview", period="7d")

    keys = {card["key"] for card in data["cards"]}
    assert {"goodput", "ettr", "success_rate", "utilization", "mttr_hours"} <= keys
    assert data["period"]["name"] == "7d" and data["period"]["previous"] is not None
    assert data["weekly"]["weeks"] and set(data["weekly"]["hours_by_status"]) >= {"failed"}
    assert data["queue_wait_by_size"] and data["open_incidents"] == 0
    assert all(0 <= (c["value"] or 0) <= 1 for c in data["cards"] if c["unit"] == "ratio")


def test_failures_pareto_adds_up_and_drills_down(client: TestClient) -> None:
    data = get(client, "/api/v1/failures", period="all", limit=100)
    pareto = data["pareto"]
    assert pareto[-1]["cumulative_share"] == pytest.approx(1.0, abs=1e-3)
    assert [row["rank"] for row in pareto] == list(range(1, len(pareto) + 1))
    assert {row["owner"] for row in data["by_owner"]} >= {"user"}

    top = pareto[0]
    jobs = get(
        client,
        "/api/v1/failures/jobs",
        category=top["category"],
        signature=top["signature"] or "",
        period="all",
        limit=5,
    )
    assert jobs["total"] == top["failures"]
    assert len(jobs["items"]) == min(5, jobs["total"])


def test_priorities_export_formats(client: TestClient) -> None:
    csv = client.get("/api/v1/priorities", headers=AUTH, params={"format": "csv", "limit": 3})
    markdown = client.get("/api/v1/priorities", headers=AUTH, params={"format": "markdown"})

    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[0].startswith("rank,category,signature")
    assert len(csv.text.splitlines()) == 4
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "|" in markdown.text


def test_job_detail_has_attempts_diagnosis_actions_and_tickets(client: TestClient) -> None:
    detail = get(client, f"/api/v1/jobs/{EVIL_JOB}")

    assert detail["job"]["job_id"] == EVIL_JOB
    diagnosis = detail["attempts"][0]["diagnosis"]
    assert diagnosis["category"] == "gpu_oom" and diagnosis["evidence"][0]["line"] == 7
    assert "memory" in diagnosis["highlight"]
    assert {a["kind"] for a in detail["actions"]} == {"retry_from_checkpoint", "notify"}
    assert [t["ticket_id"] for t in detail["tickets"]] == ["T-1"]


def test_nodes_map_lemons_and_detail(client: TestClient) -> None:
    listing = get(client, "/api/v1/nodes", limit=3)
    assert listing["total"] == 16 and len(listing["items"]) == 3
    nodes_map = get(client, "/api/v1/nodes/map")
    assert nodes_map["shown"] == nodes_map["total"] == sum(nodes_map["counts"].values())
    lemons = get(client, "/api/v1/nodes/lemons", flagged_only=True)
    assert all(row["flagged"] and row["evidence"] for row in lemons)
    node = get(client, "/api/v1/nodes/gpu-h100-0009")
    assert [a["kind"] for a in node["cordon_history"]] == ["cordon_and_drain"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs",
        "/api/v1/actions",
        "/api/v1/tickets",
        "/api/v1/nodes",
        "/api/v1/nodes/cordons",
    ],
)
def test_every_list_is_paged_and_capped(client: TestClient, url: str) -> None:
    page = get(client, url, limit=2)
    assert len(page["items"]) <= 2 and page["limit"] == 2
    if page["total"] > 2:
        assert page["next_offset"] == 2

    too_many = client.get(url, headers=AUTH, params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "invalid_request"


def test_paging_walks_the_whole_list(client: TestClient) -> None:
    seen, offset = [], 0
    while offset is not None:
        page = get(client, "/api/v1/actions", limit=3, offset=offset)
        seen += [a["action_id"] for a in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 4


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/v1/jobs/no-such-job", 404, "not_found"),
        ("/api/v1/nodes/no-such-node", 404, "not_found"),
        ("/api/v1/actions/abc123", 404, "not_found"),
        ("/api/v1/overview?period=2y", 422, "invalid_request"),
        ("/api/v1/kpi?since=yesterday", 422, "invalid_request"),
        ("/api/v1/kpi?by=moon", 422, "invalid_request"),
        ("/api/v1/nope", 404, "not_found"),
    ],
)
def test_errors_are_structured(client: TestClient, url: str, status: int, code: str) -> None:
    response = client.get(url, headers=AUTH)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and error["code"] == code and error["message"]


def test_openapi_spec_is_served_without_a_cdn_ui(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()

    assert spec["openapi"].startswith("3.")
    assert "/api/v1/kpi" in spec["paths"] and "/api/v1/actions/{action_id}/approve" in spec["paths"]
    assert client.get("/docs").status_code in (303, 404)


def test_metrics_has_requests_kpis_and_controller(client: TestClient) -> None:
    get(client, "/api/v1/overview")  # computes the default period the gauges read
    text = client.get("/metrics", headers=AUTH).text

    assert (
        'fleetmedic_http_requests_total{method="GET",route="/api/v1/overview",status="200"}' in text
    )
    assert "fleetmedic_http_request_duration_seconds_bucket" in text
    assert 'fleetmedic_goodput_ratio{period="30d"}' in text
    assert 'fleetmedic_jobs{period="30d",status="failed"}' in text
    assert 'fleetmedic_heal_actions{state="proposed"} 3.0' in text
    assert 'fleetmedic_heal_switch_engaged{switch="kill_switch"} 0.0' in text


def test_metrics_label_routes_not_paths(client: TestClient) -> None:
    for job in ("a", "b", "c"):
        client.get(f"/api/v1/jobs/{job}", headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text

    assert 'route="/api/v1/jobs/{job_id}"' in text
    assert 'route="/api/v1/jobs/a"' not in text


def test_a_ticket_is_triaged_through_the_api(client: TestClient) -> None:
    failed = get(client, "/api/v1/jobs", status="failed", limit=50)["items"]
    job = next(j for j in failed if j["job_id"] != EVIL_JOB)
    text = f"hi, my job {job['job_id']} failed overnight, what happened? <script>x()</script>"
    body = {"text": text, "user": job["user"], "created_at": "2024-06-06T09:00:00Z"}
    response = client.post("/api/v1/tickets/triage", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [link["job_id"] for link in result["jobs"]][:1] == [job["job_id"]]
    assert result["verdict"]["category"] and result["route"]["team"]
    assert result["draft"] and "<script>" not in result["draft"]
    stored = get(client, "/api/v1/tickets")["total"]
    assert stored == 1  # read-only: triage does not store the ticket


def test_triage_refuses_an_empty_or_malformed_ticket(client: TestClient) -> None:
    empty = client.post("/api/v1/tickets/triage", headers=AUTH, json={"text": "\x00\x07 "})
    assert empty.status_code == 422 and empty.json()["error"]["message"]
    extra = client.post("/api/v1/tickets/triage", headers=AUTH, json={"text": "x", "evil": 1})
    assert extra.status_code == 422
    anonymous = client.post("/api/v1/tickets/triage", json={"text": "my job died"})
    assert anonymous.status_code == 401
