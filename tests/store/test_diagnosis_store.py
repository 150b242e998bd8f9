"""``diagnose --db --job-id`` keeps the diagnosis where kpi and priorities read it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oom-cascade"


def test_diagnosis_is_stored_and_replaced(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    args = ["diagnose", str(EXAMPLE), "--db", str(db), "--job-id", "llm-7b", "--format", "json"]
    first = CliRunner().invoke(app, args)
    again = CliRunner().invoke(app, args)
    assert first.exit_code == again.exit_code == 0
    with Store(db, read_only=True) as store:
        rows = store.con.execute(
            "SELECT job_id, attempt, category, owner, signature, evidence FROM diagnoses"
        ).fetchall()
    assert len(rows) == 1
    job_id, attempt, category, owner, signature, evidence = rows[0]
    assert (job_id, attempt, category, owner) == ("llm-7b", 1, "gpu_oom", "user")
    assert signature == json.loads(first.stdout)["signature"]
    assert json.loads(evidence)[0]["file"].endswith("rank3.log")


def test_db_without_job_id_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["diagnose", str(EXAMPLE), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
