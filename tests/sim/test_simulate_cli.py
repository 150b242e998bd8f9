"""``fleetmedic simulate``: the DESIGN.md JSON contract, the store it fills, and exit 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetmedic.store import Store

ENV = {**os.environ, "COLUMNS": "100", "LC_ALL": "C.UTF-8"}
CONTRACT = {
    "goodput",
    "gpu_hours_lost",
    "failures",
    "diagnosis_accuracy",
    "actions",
    "cordons",
    "false_cordons",
    "lemon",
    "ettr_large_jobs",
}


def fleetmedic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetmedic", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "-8"], "--gpus: must be positive"),
        (["--gpus", "100"], "--gpus: must be a multiple of 8"),
        (["--gpus", "64"], "--gpus: must be between 128 and 12000"),
        (["--heal", "sometimes"], "--heal:"),
        (["--days", "0"], "--days:"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = fleetmedic("simulate", *args, "--no-store")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetmedic: error: " + message), proc.stderr


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "scenario.yaml"
    config.write_text("gpus: 256\ncheckpoint:\n  interval_mins: 30\n")
    proc = fleetmedic("simulate", "--config", str(config), "--no-store")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "interval_mins" in proc.stderr


def test_json_summary_has_the_contract_and_fills_the_store(tmp_path: Path) -> None:
    db = tmp_path / "sim.duckdb"
    proc = fleetmedic(
        "simulate",
        "--gpus",
        "128",
        "--days",
        "1",
        "--seed",
        "2",
        "--heal",
        "auto",
        "--db",
        str(db),
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary) >= CONTRACT
    assert 0 < summary["goodput"] <= 1
    assert summary["diagnosis_accuracy"] >= 0.8
    assert set(summary["lemon"]) >= {"precision", "recall"}
    with Store(db, read_only=True) as store:
        counts = {
            t: store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("jobs", "attempts", "attempt_nodes", "nodes", "events", "diagnoses")
        }
    assert all(counts.values()), counts
    assert counts["jobs"] == summary["jobs"]["total"]
    assert counts["diagnoses"] == summary["diagnosis"]["total"]


def test_a_policy_file_drives_the_controller(tmp_path: Path) -> None:
    only_notify = tmp_path / "policies.yaml"
    only_notify.write_text(
        "version: 1\npolicies:\n  - name: page\n    match: {owners: [platform]}\n"
        "    action: notify\n"
    )
    args = ["--gpus", "128", "--days", "2", "--seed", "3", "--heal", "auto", "--no-store"]
    proc = fleetmedic("simulate", *args, "--policies", str(only_notify), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    actions = json.loads(proc.stdout)["actions"]
    assert set(actions) == {"notify"} and actions["notify"] > 0, actions
    broken = tmp_path / "broken.yaml"
    broken.write_text("policies:\n  - name: x\n    match: {categories: [nope]}\n    action: notify\n")
    proc = fleetmedic("simulate", *args, "--policies", str(broken))
    assert proc.returncode == 2 and "unknown categories" in proc.stderr
    assert proc.stderr.count("\n") == 1
