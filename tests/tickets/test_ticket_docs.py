"""docs/tickets.md documents every option of ``fleetmedic ticket`` and every catalog entry kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.tickets.extract import KINDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tickets.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["triage", "import", "stats"])
def test_every_option_is_documented(command: str) -> None:
    result = CliRunner().invoke(app, ["ticket", command, "--help"], env={"COLUMNS": "200"})
    options = set(re.findall(r"(--[a-z][a-z-]+)", result.stdout)) - {"--help"}

    assert options, result.stdout
    assert sorted(o for o in options if o not in DOC) == []


def test_every_pattern_kind_is_documented() -> None:
    assert [kind for kind in KINDS if f"`{kind}`" not in DOC] == []
