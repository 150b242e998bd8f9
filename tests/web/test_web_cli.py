"""``fleetmedic serve`` and ``demo --serve``: options, docs, and what they hand the server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app as cli

DOCS = Path(__file__).parents[2] / "docs" / "web.md"


def test_every_serve_option_is_documented() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    options = set(re.findall(r"--[a-z][a-z-]+", result.stdout)) - {"--help"}

    assert options == {"--db", "--host", "--port", "--control", "--insecure-local"}
    text = DOCS.read_text("utf-8")
    for option in options:
        assert option in text, option


def test_demo_serve_serves_the_demo_under_a_one_off_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetmedic.cli import demo as demo_cli
    from fleetmedic.cli import serve as serve_cli
    from fleetmedic.sim.config import SimConfig
    from fleetmedic.workflows import demo as demo_flow

    small = SimConfig(gpus=128, days=1, seed=5, heal="auto")
    real = demo_flow.run_demo
    monkeypatch.setattr(demo_cli, "run_demo", lambda out, progress=None: real(out, config=small))
    served: dict[str, Any] = {}
    monkeypatch.setattr(serve_cli, "run_server", lambda *a, **k: served.update(args=a, kw=k))
    monkeypatch.delenv("FLEETMEDIC_TOKENS", raising=False)

    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--serve", "--port", "8099"])

    assert result.exit_code == 0, result.output
    db, control = served["args"]
    assert db == tmp_path / "fleetmedic.duckdb" and control == tmp_path / "heal.sqlite"
    assert served["kw"]["host"] == "127.0.0.1" and served["kw"]["port"] == 8099
    token = served["kw"]["tokens"].split(":", 2)
    assert token[:2] == ["demo", "admin"] and len(token[2]) >= 32
    assert token[2] in served["kw"]["banner"]
