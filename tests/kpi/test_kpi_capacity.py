"""Capacity: allocation rate, idle GPU-hours, utilization of allocated GPUs (by hand)."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

pytestmark = QUIET


def test_allocation_idle_and_utilization(fleet: Fleet) -> None:
    # 2 nodes x 8 GPUs over [0, 10): 160 GPU-h of capacity.
    # a: 8 GPUs x 10 h at 50% util = 80 GPU-h; b: 4 GPUs x 5 h, util unknown = 20 GPU-h.
    fleet.node("n1", 8)
    fleet.node("n2", 8)
    fleet.job("a", gpus=8, start=0, end=10, gpu_util=0.5)
    fleet.job("b", gpus=4, start=0, end=5)
    c = fleet.kpis(since=0, until=10)["capacity"]
    assert (c["nodes"], c["gpus"], c["gpu_hours"]) == (2, 16.0, 160.0)
    assert c["allocated_gpu_hours"] == pytest.approx(100.0)
    assert c["allocation_rate"] == pytest.approx(0.625)
    assert c["idle_gpu_hours"] == pytest.approx(60.0)
    assert c["utilization"] == pytest.approx(0.5)  # measured on a only
    assert c["utilization_coverage"] == pytest.approx(0.8)  # 80 of 100 GPU-h measured
    assert c["allocated_idle_gpu_hours"] == pytest.approx(40.0)
    assert c["effective_utilization"] == pytest.approx(0.3125)
    assert c["fragmentation"] is None


def test_without_nodes_capacity_is_unknown(fleet: Fleet) -> None:
    fleet.job("a", gpus=8, start=0, end=10)
    c = fleet.kpis()["capacity"]
    assert c["gpu_hours"] is None and c["allocation_rate"] is None
    assert c["idle_gpu_hours"] is None and c["utilization"] is None
    assert c["allocated_gpu_hours"] == pytest.approx(80.0)
    assert fleet.kpis()["reliability"]["mttf_node_hours"] is None


def test_capacity_per_pool(fleet: Fleet) -> None:
    # pool a: one 8-GPU node, a job of 4 GPUs x 10 h -> 40 / 80 = 50%.
    # pool b: one 4-GPU node, idle -> 0 / 40.
    fleet.node("n1", 8, pool="a")
    fleet.node("n2", 4, pool="b")
    fleet.job("j", gpus=4, start=0, end=10, pool="a")
    groups = fleet.kpis(since=0, until=10, by="pool")["groups"]
    assert groups["a"]["capacity"]["allocation_rate"] == pytest.approx(0.5)
    assert "b" not in groups  # no job ran there, so no group row
    assert "capacity" in groups["a"]


def test_capacity_is_fleet_wide_only_when_grouping_by_team(fleet: Fleet) -> None:
    fleet.node("n1", 8)
    fleet.job("j", gpus=4, start=0, end=10)
    k = fleet.kpis(since=0, until=10, by="team")
    assert "capacity" not in k["groups"]["vision"]
    assert k["capacity"]["allocation_rate"] == pytest.approx(0.5)
