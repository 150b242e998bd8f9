"""``fleetmedic heal ...``: JSON shapes, text output, operator controls, exit 2 on bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import ControlStore, Switches
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
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["heal", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def control(tmp_path: Path) -> Path:
    """A control store with three actions: one done, one refused, one awaiting approval."""
    path = tmp_path / "heal.sqlite"
    with ControlStore(path) as store:
        audit = AuditLog(store)
        rows = [("done", "auto"), ("refused", "auto"), ("proposed", "approval")]
        for n, (state, mode) in enumerate(rows):
            ts = datetime(2024, 1, 1, 0, n + 1, tzinfo=UTC)
            action, _ = audit.propose(
                "cordon_and_drain", f"node-{n}", [f"j#{n}:gpu_hardware"], mode, ts
            )
            if state == "done":
                audit.transition(action.action_id, "executing", ts)
                audit.transition(action.action_id, "done", ts, "ok")
            elif state == "refused":
                audit.transition(action.action_id, "refused", ts, "guard: cooldown")
    return path


def test_history_json(control: Path) -> None:
    code, out, _ = invoke("history", "--control", str(control), "--format", "json")
    assert code == 0, out
    actions = json.loads(out)["actions"]
    assert [a["target"] for a in actions] == ["node-2", "node-1", "node-0"]  # newest first
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
    assert actions[2]["created_at"].startswith("2024-01-01T00:01:00")


def test_history_filters_and_text(control: Path) -> None:
    args = ("history", "--control", str(control))
    code, out, _ = invoke(*args, "--state", "refused", "--format", "json")
    assert code == 0
    assert [a["state"] for a in json.loads(out)["actions"]] == ["refused"]
    code, out, _ = invoke(*args, "--limit", "1", "--format", "json")
    assert [a["target"] for a in json.loads(out)["actions"]] == ["node-2"]
    code, out, _ = invoke(*args)
    assert code == 0 and "guard: cooldown" in out and "node-1" in out


def _waiting(control: Path) -> str:
    code, out, _ = invoke("status", "--control", str(control), "--format", "json")
    assert code == 0, out
    (action_id,) = json.loads(out)["awaiting_approval"]
    return str(action_id)


def test_approve_moves_the_row_for_the_controller(control: Path) -> None:
    action_id = _waiting(control)
    code, out, _ = invoke("approve", action_id, "--control", str(control))
    assert code == 0 and "approved cordon_and_drain on node-2" in out
    with ControlStore(control) as store:
        row = AuditLog(store).get(action_id)
    assert row is not None and row.state == "approved" and row.result
    assert row.result.startswith("approved by")
    code, _, err = invoke("approve", action_id, "--control", str(control))
    assert code == 2 and "only proposed approval-mode actions" in err and err.count("\n") == 1


def test_reject_is_final_and_keeps_the_reason(control: Path) -> None:
    action_id = _waiting(control)
    code, _, _ = invoke("reject", action_id, "--why", "node is fine", "--control", str(control))
    assert code == 0
    code, out, _ = invoke("history", "--control", str(control), "--state", "rejected")
    assert "node is fine" in out
    assert invoke("approve", action_id, "--control", str(control))[0] == 2


def test_approving_an_auto_or_unknown_action_is_refused(control: Path) -> None:
    code, out, _ = invoke("history", "--control", str(control), "--format", "json")
    done = next(a for a in json.loads(out)["actions"] if a["state"] == "done")
    assert invoke("approve", done["action_id"], "--control", str(control))[0] == 2
    code, _, err = invoke("approve", "nope", "--control", str(control))
    assert code == 2 and "no action nope" in err


def test_kill_switch_and_breaker_persist(tmp_path: Path) -> None:
    path = tmp_path / "new" / "heal.sqlite"
    code, _, _ = invoke("kill-switch", "on", "--reason", "bad rollout", "--control", str(path))
    assert code == 0 and path.is_file()  # engaging may create the file: stop before a start
    code, out, _ = invoke("status", "--control", str(path), "--format", "json")
    switch = json.loads(out)["switches"]["kill_switch"]
    assert switch["engaged"] and switch["reason"] == "bad rollout" and switch["changed_by"]
    with ControlStore(path) as store:
        assert Switches(store).engaged("kill_switch")
        Switches(store).set("breaker", True, datetime.now(UTC), "guard", "storm")
    assert invoke("kill-switch", "off", "--control", str(path))[0] == 0
    assert invoke("reset-breaker", "--control", str(path))[0] == 0
    code, out, _ = invoke("status", "--control", str(path))
    assert "kill_switch: off" in out and "breaker: off" in out


def test_control_errors_are_one_line(tmp_path: Path) -> None:
    code, _, err = invoke("history", "--control", str(tmp_path / "missing.sqlite"))
    assert code == 2 and err.startswith("fleetmedic: error: no control store at")
    assert invoke("kill-switch", "maybe", "--control", str(tmp_path / "x"))[0] == 2
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\x00garbage" * 100)
    code, _, err = invoke("status", "--control", str(junk))
    assert code == 2 and "cannot open control store" in err and err.count("\n") == 1


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


@pytest.mark.parametrize("command", ["lemons", "checkpoints"])
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
