"""Tokens, roles, sessions and CSRF: who may read, who may approve, and how browsers prove it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_store import ADMIN, OPERATOR, TOKENS, VIEWER

from fleetmedic.cli import app as cli
from fleetmedic.model.errors import InputError
from fleetmedic.web import create_app
from fleetmedic.web.auth import Authority, Role, parse_tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_parse_with_roles_in_order() -> None:
    creds = parse_tokens(TOKENS)

    assert [(c.principal.name, c.principal.role) for c in creds] == [
        ("vera", Role.viewer),
        ("otto", Role.operator),
        ("ada", Role.admin),
    ]
    assert Role.viewer < Role.operator < Role.admin


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alice:viewer", "entry 1: expected name:role:token"),
        ("alice:root:0123456789abcdef0", "unknown role 'root'"),
        ("alice:viewer:short", "at least 16 characters"),
        ("a b:viewer:0123456789abcdef0", "bad name"),
        ("a:viewer:0123456789abcdef0,a:admin:0123456789abcdef1", "more than once"),
        (" , ", "names no token"),
    ],
)
def test_malformed_tokens_are_one_clear_line(value: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        parse_tokens(value)
    assert "\n" not in str(caught.value)
    assert "0123456789abcdef" not in str(caught.value)  # never echo a secret


def test_serve_with_bad_tokens_exits_2_in_one_line(web_db: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--db", str(web_db)], env={"FLEETMEDIC_TOKENS": "alice:viewer"}
    )

    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "FLEETMEDIC_TOKENS entry 1: expected name:role:token" in result.stderr


def test_serve_without_tokens_refuses_to_start(web_db: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--db", str(web_db)], env={"FLEETMEDIC_TOKENS": ""})

    assert result.exit_code == 2 and "--insecure-local" in result.stderr


def test_insecure_local_only_binds_loopback(web_db: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--db", str(web_db), "--insecure-local", "--host", "0.0.0.0"],
        env={"FLEETMEDIC_TOKENS": ""},
    )

    assert result.exit_code == 2 and "127.0.0.1 only" in result.stderr


def test_serve_without_a_database_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--db", str(tmp_path / "none.duckdb")], env={"FLEETMEDIC_TOKENS": TOKENS}
    )

    assert result.exit_code == 2 and "no database at" in result.stderr


def test_no_token_is_401_and_a_wrong_one_too(client: TestClient) -> None:
    for headers in ({}, bearer("x" * 30), {"Authorization": "Basic dmVyYTp4"}):
        response = client.get("/api/v1/jobs", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics").status_code == 401


def test_viewer_cannot_approve_operator_can(client: TestClient, action_ids: dict[str, str]) -> None:
    url = f"/api/v1/actions/{action_ids['cordon_and_drain']}/approve"

    refused = client.post(url, headers=bearer(VIEWER))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (
        client.get(url.removesuffix("/approve"), headers=bearer(VIEWER)).json()["state"]
        == "proposed"
    )

    approved = client.post(url, headers=bearer(OPERATOR))
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    assert approved.json()["result"] == "approved by otto"

    again = client.post(url, headers=bearer(OPERATOR))
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_reject_keeps_the_reason(client: TestClient, action_ids: dict[str, str]) -> None:
    response = client.post(
        f"/api/v1/actions/{action_ids['requeue_excluding_node']}/reject",
        headers=bearer(OPERATOR),
        json={"why": "node is fine"},
    )

    assert response.status_code == 200
    assert response.json()["result"] == "rejected by otto: node is fine"


def test_kill_switch_operator_engages_only_admin_releases(client: TestClient) -> None:
    url = "/api/v1/control/kill-switch"
    assert client.post(url, headers=bearer(VIEWER), json={"engaged": True}).status_code == 403
    on = client.post(url, headers=bearer(OPERATOR), json={"engaged": True, "reason": "drill"})
    assert on.status_code == 200 and on.json()["switches"]["kill_switch"]["engaged"] is True

    off = client.post(url, headers=bearer(OPERATOR), json={"engaged": False})
    assert off.status_code == 403
    off = client.post(url, headers=bearer(ADMIN), json={"engaged": False})
    assert off.status_code == 200 and off.json()["switches"]["kill_switch"]["engaged"] is False


def login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    response = client.post(
        "/login",
        data={"token": token, "csrf_token": csrf.group(1), "next": "/actions"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/actions"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    me = client.get("/api/v1/me").json()
    return str(me["csrf_token"])


def test_pages_redirect_to_login_then_work_with_the_session(client: TestClient) -> None:
    response = client.get("/jobs?q=sim", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fjobs%3Fq%3Dsim"

    login(client, VIEWER)
    assert client.get("/jobs").status_code == 200
    assert client.get("/api/v1/me").json()["role"] == "viewer"


def test_login_with_a_wrong_token_or_no_csrf_fails(client: TestClient) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    wrong = client.post("/login", data={"token": "nope" * 5, "csrf_token": csrf.group(1)})
    assert wrong.status_code == 401 and "Unknown token" in wrong.text
    forged = client.post("/login", data={"token": OPERATOR}, follow_redirects=False)
    assert forged.status_code == 403


def test_cookie_posts_need_the_csrf_token(client: TestClient, action_ids: dict[str, str]) -> None:
    csrf = login(client, OPERATOR)
    action = action_ids["cordon_and_drain"]

    no_token = client.post(f"/api/v1/actions/{action}/approve")
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf"
    form_no_token = client.post(f"/actions/{action}/approve", data={}, follow_redirects=False)
    assert form_no_token.status_code == 403
    cross_site = client.post(
        f"/api/v1/actions/{action}/approve",
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert client.get(f"/api/v1/actions/{action}").json()["state"] == "proposed"

    done = client.post(
        f"/actions/{action}/approve", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/actions?done=")
    assert client.get(f"/api/v1/actions/{action}").json()["state"] == "approved"


def test_viewer_session_cannot_approve_by_form(
    client: TestClient, action_ids: dict[str, str]
) -> None:
    csrf = login(client, VIEWER)
    page = client.get("/actions").text
    assert "Approve</button>" not in page and "needs the operator role" in page

    response = client.post(
        f"/actions/{action_ids['cordon_and_drain']}/approve", data={"csrf_token": csrf}
    )
    assert response.status_code == 403


def test_sessions_are_signed_and_expire() -> None:
    creds = parse_tokens(TOKENS)
    authority = Authority(creds, secret=b"k" * 32)
    cookie = authority.session_for(creds[0].principal, now=1_000_000)

    assert authority.from_session(cookie, now=1_000_100) == creds[0].principal
    assert authority.from_session(cookie, now=1_000_000 + 13 * 3600) is None
    assert authority.from_session(cookie.replace("vera", "ada"), now=1_000_100) is None
    assert Authority(creds, secret=b"x" * 32).from_session(cookie, now=1_000_100) is None


def test_insecure_local_is_admin_on_loopback_only(web_db: Path, control_db: Path) -> None:
    app = create_app(web_db, control_db, None, insecure_local=True, warm=False)
    local = TestClient(app, base_url="http://127.0.0.1:8080")
    assert local.get("/api/v1/me").json()["role"] == "admin"
    assert local.post("/api/v1/control/reset-breaker").status_code == 403  # still needs CSRF

    rebound = TestClient(app, base_url="http://attacker.example")
    assert rebound.get("/api/v1/me").status_code == 403


def test_no_tokens_without_insecure_local_is_refused(web_db: Path, control_db: Path) -> None:
    with pytest.raises(InputError, match="no tokens"):
        create_app(web_db, control_db, None, warm=False)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/jobs/x?period=7d", "/jobs/x?period=7d"),
        ("//evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
    ],
)
def test_login_only_redirects_to_this_server(given: str | None, kept: str) -> None:
    from fleetmedic.web.pages.session import local_path

    assert local_path(given) == kept
