"""The Grafana dashboard: valid JSON of a current schema, and every metric it asks for exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleetmedic.kpi.metrics_out import METRIC_NAMES, FleetCollector

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "fleetmedic.json"
PANEL_TYPES = {"row", "stat", "timeseries", "bargauge", "piechart", "table", "gauge", "text"}
METRIC = re.compile(r"\b(fleetmedic_[a-z0-9_]+)\b")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return data


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_a_current_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 38
    assert dashboard["uid"] == "fleetmedic" and dashboard["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"].strip("${}") in variables
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))


def test_it_has_the_panels_operators_asked_for(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for wanted in (
        "goodput",
        "ettr",
        "jobs by status",
        "gpu-hours lost by cause",
        "actions by state",
        "kill switch",
    ):
        assert wanted in titles, wanted


def test_every_metric_in_the_promql_is_served(
    dashboard: dict[str, Any], fleet_db: Path, control_db: Path
) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet_db, control_db))
    served = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    used = {name for expr in _exprs(dashboard) for name in METRIC.findall(expr)}
    assert used, "no fleetmedic metric in the dashboard"
    assert used <= served, f"not served: {sorted(used - served)}"
    declared = set(METRIC_NAMES) | {f"{n}_total" for n in METRIC_NAMES}
    assert used <= declared
