"""``fleetmedic heal history|lemons|checkpoints``: JSON shapes, text output, exit 2 on a bad DB."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.store import Store

runner = CliRunner()
T0 = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("heal") / "fleet.duckdb"
    with Store(path) as store:
        con = store.con
        con.execute("INSERT INTO jobs (job_id, num_gpus, status) VALUES ('j', 8, 'failed')")
        rows = []
        for i in range(1, 17):
            # the lemon "bad" sees 6 hardware failures in 6 x 16.67 h; ten others, one each
            node = "bad" if i <= 6 else f"n{i - 6}"
            hours = 100 / 6 if i <= 6 else 100.0
            rows.append((i, node, hours))
        for i, node, hours in rows:
            start = T0 + timedelta(days=i)
            con.execute(
                "INSERT INTO attempts (job_id, attempt, started_at, ended_at, last_checkpoint_at) "
                "VALUES ('j', ?, ?, ?, ?)",
                [i, start, start + timedelta(hours=hours), start + timedelta(hours=hours - 1)],
            )
            con.execute("INSERT INTO attempt_nodes VALUES ('j', ?, ?)", [i, node])
            con.execute(
                "INSERT INTO diagnoses (job_id, attempt, category, owner) "
                "VALUES ('j', ?, 'gpu_hardware', 'hardware')",
                [i],
            )
        for n, (state, minute) in enumerate([("done", 1), ("refused", 2), ("proposed", 3)]):
            ts = T0 + timedelta(minutes=minute)
            con.execute(
                "INSERT INTO actions VALUES (?, 'cordon', ?, ?, 'auto', ?, ?, ?, ?)",
                [
                    f"a{n}",
                    f"node-{n}",
                    json.dumps([f"j#{n}:gpu_hardware"]),
                    state,
                    ts,
                    ts,
                    "guard: cooldown" if state == "refused" else None,
                ],
            )
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["heal", *args])
    return result.exit_code, result.stdout, result.stderr


def test_history_json(db: Path) -> None:
    code, out, _ = invoke("history", "--db", str(db), "--format", "json")
    assert code == 0, out
    actions = json.loads(out)["actions"]
    assert [a["action_id"] for a in actions] == ["a2", "a1", "a0"]  # most recent first
    assert set(actions[0]) == {
        "action_id",
        "kind",
        "target",
        "because",
        "mode",
        "state",
        "created_at",
        "updated_at",
        "result",
    }
    assert actions[2]["because"] == ["j#0:gpu_hardware"]
    assert actions[2]["created_at"] == "2024-01-01T00:01:00Z"


def test_history_filters_and_text(db: Path) -> None:
    code, out, _ = invoke("history", "--db", str(db), "--state", "refused", "--format", "json")
    assert code == 0
    assert [a["state"] for a in json.loads(out)["actions"]] == ["refused"]
    code, out, _ = invoke("history", "--db", str(db), "--limit", "1", "--format", "json")
    assert [a["action_id"] for a in json.loads(out)["actions"]] == ["a2"]
    code, out, _ = invoke("history", "--db", str(db))
    assert code == 0 and "guard: cooldown" in out and "node-1" in out


def test_lemons_json(db: Path) -> None:
    code, out, _ = invoke("lemons", "--db", str(db), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["fdr"] == 0.05
    nodes = doc["nodes"]
    assert set(nodes[0]) == {
        "node",
        "failures",
        "exposure_hours",
        "expected",
        "p_value",
        "q_value",
        "flagged",
    }
    assert nodes[0]["node"] == "bad" and nodes[0]["flagged"]
    assert nodes[0]["expected"] == pytest.approx(1.0)
    assert [n["node"] for n in nodes if n["flagged"]] == ["bad"]
    code, out, _ = invoke("lemons", "--db", str(db))
    assert code == 0 and "1 lemon node(s) of 11 tested" in out and "bad: 6 failures" in out


def test_checkpoints_json(db: Path) -> None:
    code, out, _ = invoke(
        "checkpoints", "--db", str(db), "--save-cost-minutes", "6", "--format", "json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["save_cost_minutes"] == 6
    (bucket,) = doc["buckets"]
    assert bucket["bucket"] == "8-63" and bucket["failures"] == 16
    assert bucket["mttf_hours"] == pytest.approx(1100 / 16)
    assert bucket["young_hours"] == pytest.approx((2 * 0.1 * 1100 / 16) ** 0.5)
    assert bucket["current_interval_hours"] == pytest.approx(2.0)
    assert bucket["gpu_hours_saved"] > 0
    code, out, _ = invoke("checkpoints", "--db", str(db))
    assert code == 0 and "Daly" in out and "GPU-hours" in out


@pytest.mark.parametrize("command", ["history", "lemons", "checkpoints"])
def test_missing_db_is_one_line_exit_2(tmp_path: Path, command: str) -> None:
    code, _, err = invoke(command, "--db", str(tmp_path / "nope.duckdb"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fleetmedic: error: no database at")
    assert not (tmp_path / "nope.duckdb").exists()


def test_not_a_database_is_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    code, _, err = invoke("lemons", "--db", str(junk))
    assert code == 2 and err.startswith("fleetmedic: error:") and err.count("\n") == 1


def test_bad_format_is_exit_2(db: Path) -> None:
    code, _, err = invoke("lemons", "--db", str(db), "--format", "xml")
    assert code == 2 and "--format" in err
