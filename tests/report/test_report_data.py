"""The report's aggregates, computed by hand from the conftest store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fleetmedic.report import gather
from fleetmedic.report.charts import build_charts
from fleetmedic.report.data import ReportData
from fleetmedic.store import Store

if TYPE_CHECKING:
    from conftest import Hostile


@pytest.fixture(scope="module")
def data(report_db: Path) -> ReportData:
    with Store(report_db, read_only=True) as store:
        return gather(store, now=datetime(2030, 1, 1))


def test_weekly_gpu_hours_by_outcome_are_aggregated_per_week(data: ReportData) -> None:
    weekly = data.weekly

    assert weekly.weeks == ("2024-01-01", "2024-01-08")
    assert weekly.hours_by_status == {
        "succeeded": (80.0, 0.0),
        "failed": (20.0, 6.0),
        "timeout": (0.0, 2.0),
    }
    assert weekly.goodput == (pytest.approx(0.8), 0.0)


def test_default_period_keeps_the_last_failure(data: ReportData) -> None:
    assert data.window.until == datetime(2024, 1, 11)
    assert [row.category for row in data.priorities.rows][-1] == "timeout"
    assert data.headline.jobs == 4 and data.headline.failures == 3


def test_worst_nodes_rank_by_lost_gpu_hours(data: ReportData, hostile: Hostile) -> None:
    assert [(n.node_id, n.failures, n.gpu_hours_lost) for n in data.worst_nodes] == [
        ("gpu-1", 1, 20.0),
        (hostile.node, 1, 6.0),
    ]
    assert data.worst_nodes[0].pool == "pool-a"


def test_size_rows_carry_queue_wait_and_mttf(data: ReportData) -> None:
    sizes = {row.bucket: row for row in data.sizes}

    assert set(sizes) == {"1", "2-8"}
    assert sizes["1"].wait_p50 == 0.0 and sizes["1"].mttf_hours == 2.0
    assert sizes["2-8"].interruptions == 2


def test_charts_are_built_from_aggregates_only(data: ReportData) -> None:
    charts = {chart.name: chart.figure for chart in build_charts(data)}

    outcome = charts["gpu_hours_by_outcome"]
    assert [trace.name for trace in outcome.data] == ["succeeded", "failed", "timeout"]
    assert all(len(trace.x) == 2 for trace in outcome.data)
    pareto = charts["pareto_causes"]
    assert list(pareto.data[1].y)[-1] == pytest.approx(100.0)
