"""``by``: every dimension splits the fleet into groups whose additive KPIs sum to the fleet's."""

from __future__ import annotations

import pytest
from kpi_fleet import QUIET, Fleet

from fleetmedic.kpi import GROUP_BY, SIZE_BUCKETS

pytestmark = QUIET


def _mixed(fleet: Fleet) -> None:
    # a: vision/alice, 1 GPU x 4 h, A100 in pool main, cluster c1 -> 4 GPU-h, succeeded
    # b: vision/bob, 16 GPUs x 2 h, H100 in pool big, cluster c2 -> 32 GPU-h, failed (nccl)
    # c: speech/alice, 2048 GPUs x 1 h, no model/pool/cluster -> 2048 GPU-h, succeeded
    fleet.job("a", team="vision", user="alice", gpus=1, start=0, end=4)
    fleet.job("b", team="vision", user="bob", gpus=16, start=0, end=2, status="failed",
              gpu_model="H100", pool="big", cluster="c2")
    fleet.diagnosis("b", 1, "nccl_comm")
    fleet.job("c", team="speech", user="alice", gpus=2048, start=1, end=2, gpu_model=None,
              pool=None, cluster=None)


EXPECTED = {
    "team": {"speech": 2048.0, "vision": 36.0},
    "user": {"alice": 2052.0, "bob": 32.0},
    "size": {"1": 4.0, "9-64": 32.0, ">1024": 2048.0},
    "gpu_model": {"A100": 4.0, "H100": 32.0, "unknown": 2048.0},
    "pool": {"big": 32.0, "main": 4.0, "unknown": 2048.0},
    "cluster": {"c1": 4.0, "c2": 32.0, "unknown": 2048.0},
}


@pytest.mark.parametrize("by", sorted(EXPECTED))
def test_groups_split_gpu_hours(fleet: Fleet, by: str) -> None:
    _mixed(fleet)
    k = fleet.kpis(by=by)
    assert k["by"] == by
    hours = {key: g["gpu_hours"]["total"] for key, g in k["groups"].items()}
    assert hours == pytest.approx(EXPECTED[by])
    assert sum(g["jobs"]["total"] for g in k["groups"].values()) == k["jobs"]["total"] == 3
    failed = {key for key, g in k["groups"].items() if g["failures"]["count"]}
    assert len(failed) == 1
    group = k["groups"][failed.pop()]
    assert group["failures"]["by_owner"]["platform"]["gpu_hours_lost"] == pytest.approx(32.0)
    assert group["users"]["blocked_by_platform"] == 1


def test_group_dimensions_are_the_documented_ones() -> None:
    assert set(GROUP_BY) == {*EXPECTED, "week"}
    assert SIZE_BUCKETS == ("0", "1", "2-8", "9-64", "65-256", "257-1024", ">1024")


def test_size_buckets_edges(fleet: Fleet) -> None:
    # edges belong to the lower bucket; a fractional GPU is size 1
    for gpus in [0, 0.5, 1, 2, 8, 9, 64, 65, 256, 257, 1024, 1025]:
        fleet.job(f"g{gpus}", gpus=gpus)
    by_size = fleet.kpis()["reliability"]["by_size"]
    assert {b: v["jobs"] for b, v in by_size.items()} == {
        "0": 1, "1": 2, "2-8": 2, "9-64": 2, "65-256": 2, "257-1024": 2, ">1024": 1,
    }
