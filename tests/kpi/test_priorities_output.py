"""Every output format of ``fleetmedic priorities`` parses back, and bad input exits 2."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.kpi.priorities import priorities_report
from fleetmedic.kpi.priorities_format import render
from fleetmedic.kpi.priorities_model import PriorityReport
from fleetmedic.store import Store

UNTIL = "2024-01-15"
SINCE = "2024-01-08"

ROWS_SQL = """
INSERT INTO jobs (job_id, "user", num_gpus, started_at, ended_at, status) VALUES
  ('j1', 'alice', 8, '2024-01-09 00:00', '2024-01-09 10:00', 'FAILED'),
  ('j2', 'bob',   2, '2024-01-09 00:00', '2024-01-09 05:00', 'failed'),
  ('j3', 'carol', 1, '2024-01-10 00:00', '2024-01-10 03:00', 'failed'),
  ('j4', 'dan',   4, '2024-01-10 00:00', '2024-01-10 08:00', 'COMPLETED');
INSERT INTO diagnoses (job_id, attempt, category, owner, signature, node_id) VALUES
  ('j1', 1, 'gpu_hardware', 'hardware', 'xid|79', 'gpu-17'),
  ('j2', 1, 'gpu_oom', 'user', 'cuda_oom', NULL);
INSERT INTO tickets (ticket_id, created_at, text, job_ids, category) VALUES
  ('t1', '2024-01-09 12:00', 'my job died', '["j1"]', NULL);
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("output") / "fleet.duckdb"
    with Store(path) as store:
        store.con.execute(ROWS_SQL)
    return path


@pytest.fixture(scope="module")
def report(db: Path) -> PriorityReport:
    with Store(db, read_only=True) as store:
        return priorities_report(store, datetime(2024, 1, 8), datetime(2024, 1, 15))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["priorities", *args])
    return result.exit_code, result.stdout, result.stderr


def run_ok(db: Path, fmt: str, *extra: str) -> str:
    code, out, err = run(
        "--db", str(db), "--since", SINCE, "--until", UNTIL, "--format", fmt, *extra
    )
    assert code == 0, err
    return out


def test_json_from_the_cli_loads_with_ranked_rows(db: Path) -> None:
    data = json.loads(run_ok(db, "json"))

    assert data["window"]["since"] == "2024-01-08T00:00:00"
    assert data["window"]["previous_since"] == "2024-01-01T00:00:00"
    assert data["total_gpu_hours"] == 80 + 10 + 3 + 32
    rows = data["rows"]
    assert [(r["category"], r["gpu_hours_lost"]) for r in rows] == [
        ("gpu_hardware", 80.0),
        ("gpu_oom", 10.0),
        ("unknown", 3.0),
    ]
    assert rows[0]["node"] == {"name": "gpu-17", "share": 1.0}
    assert rows[0]["tickets"] == 1 and rows[1]["tickets"] == 0
    assert rows[0]["trend"] == {
        "direction": "new",
        "change_pct": None,
        "previous_gpu_hours_lost": 0.0,
    }
    assert rows[0]["gain_goodput_points"] == pytest.approx(80 / 125 * 100, abs=1e-3)


def test_csv_parses_with_one_row_per_cause(report: PriorityReport) -> None:
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))

    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["signature"] == "xid|79"
    assert rows[0]["team"] == "Infra / hardware ops"
    assert float(rows[1]["gpu_hours_lost"]) == 10.0
    assert rows[2]["signature"] == "" and rows[2]["owner"] == "—"


def test_markdown_is_a_table_with_escaped_cells(report: PriorityReport) -> None:
    lines = [line for line in render(report, "markdown").splitlines() if line.startswith("|")]

    header, rule, *body = lines
    assert len(body) == 3
    width = len(header.split(" | "))
    for line in [rule.replace("|", " | "), *body]:
        cells = [c for c in line.replace("\\|", "").split("|")][1:-1]
        assert len(cells) == width
    assert "xid\\|79" in body[0]


def test_text_names_cause_team_and_place(report: PriorityReport) -> None:
    out = render(report, "text")

    assert "gpu_hardware/xid|79" in out
    assert "Infra / hardware ops" in out
    assert "node gpu-17 (100%)" in out
    assert out.index("gpu_hardware") < out.index("gpu_oom")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], "--format must be one of"),
        (["--since", "last tuesday"], "--since: not an ISO date"),
        (["--since", UNTIL, "--until", SINCE], "must be before"),
        (["--owners", "/nonexistent.yaml"], "cannot read owners file"),
    ],
)
def test_bad_input_exits_2_with_one_line(db: Path, args: list[str], message: str) -> None:
    code, _, err = run("--db", str(db), *args)

    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_database_exits_2(tmp_path: Path) -> None:
    code, _, err = run("--db", str(tmp_path / "nope.duckdb"))

    assert code == 2 and "no database at" in err


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "priorities.md").read_text("utf-8")
    command = next(
        c
        for c in app.registered_commands
        if c.name == "priorities"
        or (c.name is None and c.callback is not None and c.callback.__name__ == "priorities")
    )
    assert command.callback is not None
    result = CliRunner().invoke(app, ["priorities", "--help"])
    options = set(re.findall(r"--[a-z][a-z-]+", result.stdout)) - {"--help"}
    assert options == {"--db", "--since", "--until", "--limit", "--format", "--owners"}
    for option in options:
        assert option in doc, option
