"""Text from the store never reaches a page as markup: job ids, diagnoses, action results."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from web_store import EVIL_JOB, EVIL_RESULT, EVIL_SUMMARY, OPERATOR, PAYLOADS

AUTH = {"Authorization": f"Bearer {OPERATOR}"}


@pytest.mark.parametrize(
    "url",
    [
        f"/jobs/{quote(EVIL_JOB, safe='')}",
        "/jobs",
        f"/jobs?q={quote('<script>', safe='')}",
        "/actions",
        "/tickets",
        "/nodes/gpu-h100-0001",
        f"/nodes/{quote(EVIL_JOB, safe='')}",
    ],
)
def test_hostile_text_is_escaped_on_every_page(client: TestClient, url: str) -> None:
    page = client.get(url, headers=AUTH).text

    for payload in PAYLOADS:
        assert payload not in page
    assert "<script>alert" not in page
    assert "onerror=" not in page.replace("onerror=alert", "") or "&lt;img" in page


def test_job_page_shows_the_escaped_text(client: TestClient) -> None:
    page = client.get(f"/jobs/{quote(EVIL_JOB, safe='')}", headers=AUTH).text

    assert "&lt;script&gt;alert(&#39;job&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;diagnosis&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(&#39;evidence&#39;)&gt;" in page
    assert "&lt;script&gt;alert(&#39;result&#39;)&lt;/script&gt;" in page


def test_api_returns_the_raw_text_as_json_data(client: TestClient) -> None:
    detail = client.get(f"/api/v1/jobs/{EVIL_JOB}", headers=AUTH)

    assert detail.headers["content-type"] == "application/json"
    assert detail.json()["attempts"][0]["diagnosis"]["summary"] == EVIL_SUMMARY
    assert EVIL_RESULT in {a["result"] for a in detail.json()["actions"]}


def test_pages_forbid_inline_scripts(client: TestClient) -> None:
    response = client.get("/actions", headers=AUTH)

    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # only <script src=...> from this server


def test_csv_export_neutralises_formulas() -> None:
    from fleetmedic.web.api.failures import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell("gpu_oom") == "gpu_oom"
