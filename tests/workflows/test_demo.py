"""The demo is the product end to end: simulate, store, diagnose, measure, rank, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.kpi import compute_kpis
from fleetmedic.sim.config import SimConfig
from fleetmedic.store import Store
from fleetmedic.workflows.demo import run_demo


def test_demo_on_a_small_fleet(tmp_path: Path) -> None:
    config = SimConfig(gpus=256, days=4, seed=3, heal="auto")
    result = run_demo(tmp_path, config=config)
    page = result.report.read_text("utf-8")
    assert result.report == tmp_path / "report.html"
    assert "<script" in page
    assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=[\"']https?:", page)
    assert result.simulation["failures"] > 0
    assert 0.0 < result.simulation["diagnosis_accuracy"] <= 1.0
    with Store(result.db, read_only=True) as store:
        jobs, diagnosed = store.con.execute(
            "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM diagnoses)"
        ).fetchone() or (0, 0)
        kpis = compute_kpis(store)
    assert jobs == kpis["jobs"]["total"] > 0
    assert diagnosed > 0
    assert result.data.headline.jobs == jobs
    assert result.data.priorities.rows, "a month with failures has causes to rank"


def test_demo_twice_replaces_the_store(tmp_path: Path) -> None:
    config = SimConfig(gpus=128, days=1, seed=5, heal="off")
    first = run_demo(tmp_path, config=config)
    second = run_demo(tmp_path, config=config)
    assert first.simulation == second.simulation


def test_demo_keeps_the_controller_audit_trail(tmp_path: Path) -> None:
    config = SimConfig(gpus=128, days=2, seed=5, heal="auto")
    result = run_demo(tmp_path, config=config)
    assert result.control == tmp_path / "heal.sqlite"
    history = CliRunner().invoke(
        app, ["heal", "history", "--control", str(result.control), "--format", "json"]
    )
    assert history.exit_code == 0, history.output
    kinds = {a["kind"] for a in json.loads(history.stdout)["actions"]}
    assert kinds and kinds <= set(result.simulation["actions"])
