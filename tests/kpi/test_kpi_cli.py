"""``fleetmedic kpi``: the JSON contract of DESIGN.md, text output, and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from kpi_fleet import QUIET, Fleet
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.kpi import STATUSES
from fleetmedic.store import Store

runner = CliRunner()

pytestmark = QUIET


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kpi") / "fleet.duckdb"
    with Store(path) as store:
        fleet = Fleet(store)
        fleet.job("a", status="succeeded", gpus=8, sub=0, start=1, end=5, team="vision")
        fleet.job("b", status="failed", gpus=2, sub=0, start=2, end=4, team="speech")
        fleet.diagnosis("b", 1, "nccl_comm")
    return path


def test_json_has_the_contract_keys(db: Path) -> None:
    result = runner.invoke(app, ["kpi", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    k = json.loads(result.stdout)
    assert k["jobs"]["total"] == 2
    assert set(k["jobs"]["by_status"]) == set(STATUSES)
    assert set(k["gpu_hours"]["by_status"]) == set(STATUSES)
    assert k["gpu_hours"]["total"] == pytest.approx(36.0)
    for key in ("goodput", "ettr", "mttr_hours"):
        assert key in k
    assert set(k["queue_wait_hours"]) >= {"p50", "p90", "p99"}
    assert all(0.0 <= v <= 1.0 for v in k["jobs"]["by_status"].values())


def test_json_by_team_with_period(db: Path) -> None:
    result = runner.invoke(
        app, ["kpi", "--db", str(db), "--format", "json", "--by", "team",
              "--since", "2024-01-01T02:00", "--until", "2024-01-01T04:00"]
    )
    assert result.exit_code == 0, result.output
    k = json.loads(result.stdout)
    # [2, 4): a holds 8 x 2, b holds 2 x 2
    assert k["gpu_hours"]["total"] == pytest.approx(20.0)
    assert set(k["groups"]) == {"speech", "vision"}


def test_text_output_is_tables(db: Path) -> None:
    result = runner.invoke(app, ["kpi", "--db", str(db), "--by", "team"])
    assert result.exit_code == 0, result.output
    for word in ("Headline", "goodput", "ETTR", "Outcomes", "Failures by root cause", "By team",
                 "nccl_comm"):
        assert word in result.stdout


def test_missing_database_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kpi", "--db", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 2
    assert "no database" in result.stderr
    assert not (tmp_path / "nope.duckdb").exists()


def test_corrupt_database_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.duckdb"
    path.write_bytes(b"this is not a database\n" * 100)
    result = runner.invoke(app, ["kpi", "--db", str(path)])
    assert result.exit_code == 2
    assert "error" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_database_of_another_tool_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE x (a INT)").close()
    result = runner.invoke(app, ["kpi", "--db", str(path), "--format", "json"])
    assert result.exit_code == 2
    assert "not a fleetmedic database" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--since", "yesterday"], "--since"), (["--until", "2024-13-01"], "--until"),
     (["--since", "2024-02-01", "--until", "2024-01-01"], "before")],
)
def test_bad_dates_exit_2(db: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["kpi", "--db", str(db), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_bad_grouping_exits_2(db: Path) -> None:
    result = runner.invoke(app, ["kpi", "--db", str(db), "--by", "planet"])
    assert result.exit_code == 2


def test_help_names_the_documented_options() -> None:
    result = runner.invoke(app, ["kpi", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    for option in ("--db", "--since", "--until", "--by", "--format"):
        assert option in result.stdout
    for by in ("team", "user", "size", "gpu_model", "pool", "week", "cluster"):
        assert by in result.stdout
