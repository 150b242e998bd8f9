"""PNG export: the browser lookup, its one-line failure, and a real render with Chromium."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.model.errors import InputError
from fleetmedic.report.png import find_browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_browser(folder: Path) -> str:
    path = folder / "chromium"
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_browser_path_override_wins(tmp_path: Path) -> None:
    browser = _fake_browser(tmp_path)

    assert find_browser({"BROWSER_PATH": browser}, which=lambda _: None, typical=()) == browser


def test_browser_found_on_path_then_in_typical_places(tmp_path: Path) -> None:
    browser = _fake_browser(tmp_path)

    on_path = find_browser({}, which=lambda name: browser if name == "chromium" else None)
    assert on_path == browser
    assert find_browser({}, which=lambda _: None, typical=("/nope", browser)) == browser


def test_no_browser_is_an_input_error() -> None:
    with pytest.raises(InputError, match="apt-get install chromium"):
        find_browser({}, which=lambda _: None, typical=())
    with pytest.raises(InputError, match="BROWSER_PATH=/nope"):
        find_browser({"BROWSER_PATH": "/nope"})


def test_png_without_browser_fails_in_one_line_before_writing(
    report_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    out = tmp_path / "report.html"

    result = CliRunner().invoke(
        app, ["report", "--db", str(report_db), "--out", str(out), "--png", str(tmp_path / "img")]
    )

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "BROWSER_PATH" in result.stderr
    assert not out.exists()


def test_missing_database_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html")]
    )

    assert result.exit_code == 2 and "no database at" in result.stderr


@pytest.mark.chromium
@pytest.mark.skipif(
    os.environ.get("FLEETMEDIC_SKIP_CHROMIUM") == "1", reason="FLEETMEDIC_SKIP_CHROMIUM=1"
)
def test_png_export_draws_every_chart(report_db: Path, tmp_path: Path) -> None:
    """Needs Debian's chromium; fails (not skips) without it so CI can't silently lose PNGs."""
    images = tmp_path / "img"
    result = CliRunner().invoke(
        app,
        ["report", "--db", str(report_db), "--out", str(tmp_path / "r.html"), "--png", str(images)],
    )

    assert result.exit_code == 0, result.stderr
    written = sorted(p.name for p in images.iterdir())
    assert written == sorted(
        f"{name}.png"
        for name in (
            "gpu_hours_by_outcome",
            "pareto_causes",
            "goodput_ettr",
            "queue_wait_by_size",
            "mttf_by_size",
            "worst_nodes",
        )
    )
    for name in written:
        data = (images / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "report.md").read_text("utf-8")
    result = CliRunner().invoke(app, ["report", "--help"])
    options = set(re.findall(r"--[a-z][a-z-]+", result.stdout)) - {"--help"}
    assert options == {"--out", "--png", "--db", "--since", "--until", "--limit"}
    for option in options:
        assert option in doc, option
