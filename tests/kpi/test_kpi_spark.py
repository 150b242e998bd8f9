"""The same KPIs, the same numbers, on DuckDB and on Spark (local mode) from one small dataset.

This is what "written once as Ibis expressions" buys: the suite runs unchanged on a distributed
engine. The dataset exercises every path of the formulas: restarts with and without checkpoints,
hangs, undiagnosed failures, running and pending jobs, clock skew, zero-GPU jobs, utilization,
nodes with lifetimes, several teams and weeks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import ibis
import pytest
from kpi_fleet import QUIET, Fleet, at
from kpi_spark import SKIP_ENV, spark_problem

from fleetmedic.kpi import compute_kpis
from fleetmedic.store import Store

TABLES = ("jobs", "attempts", "nodes", "diagnoses")

# Each scenario is a fleet pass plus a grouped pass; together they cover the default period
# (running jobs clipped at now), an explicit one, and grouping by a column and by week.
SCENARIOS: list[dict[str, Any]] = [
    {"by": "team"},
    {"since": at(30), "until": at(200), "by": "week"},
]

pytestmark = QUIET


def _dataset(fleet: Fleet) -> None:
    fleet.node("n1", 8, pool="a", first=0)
    fleet.node("n2", 8, pool="b", gpu_model="H100", last=150)
    fleet.job("ok", gpus=8, sub=0, start=1, end=30, gpu_util=0.9)
    fleet.job(
        "restart",
        status="succeeded",
        gpus=16,
        sub=2,
        start=3,
        end=60,
        attempts=3,
        team="speech",
        pool="b",
        gpu_model="H100",
    )
    fleet.attempt("restart", 1, 3, 20, "failed", ckpt=15)
    fleet.attempt("restart", 2, 22, 30, "preempted")
    fleet.attempt("restart", 3, 31, 60, "succeeded")
    fleet.diagnosis("restart", 1, "gpu_hardware", diagnosed=20.5, node="n2")
    fleet.job("hang", status="failed", gpus=4, sub=10, start=12, end=40, user="bob")
    fleet.attempt("hang", 1, 12, 40, "failed", ckpt=13)
    fleet.diagnosis("hang", 1, "hang", diagnosed=41)
    fleet.job("oom", status="failed", gpus=2, sub=40, start=41, end=42, user="bob", team="nlp")
    fleet.diagnosis("oom", 1, "gpu_oom")
    fleet.job("mystery", status="NODE_FAIL", gpus=1, sub=50, start=51, end=55, user="carol")
    fleet.job("run", status="running", gpus=32, sub=100, start=110, end=None, gpu_util=0.4)
    fleet.job("wait", status="pending", gpus=1024, sub=150, start=None, end=None)
    fleet.job("skew", status="cancelled", gpus=1, sub=60, start=70, end=65, project="p2")
    fleet.job("cpu", status="succeeded", gpus=0, sub=5, start=6, end=200, user="dave")
    fleet.job("late", status="timeout", gpus=2, sub=180, start=181, end=250, project=None)


@pytest.fixture(scope="module")
def duck() -> Iterator[Store]:
    with Store(":memory:") as store:
        _dataset(Fleet(store))
        yield store


def _to_spark(store: Store, spark: Any) -> Any:
    """Copy the store's tables into Spark temp views (via Arrow, JSON columns as text).

    The views live in a session of their own (same SparkContext), so other tests that register
    tables with the same names in the shared session cannot see or replace them.
    """
    session = spark.newSession()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    for table in TABLES:
        columns = store.con.execute(f"DESCRIBE {table}").fetchall()
        select = ", ".join(
            f'CAST("{name}" AS VARCHAR) AS "{name}"' if kind == "JSON" else f'"{name}"'
            for name, kind, *_ in columns
        )
        arrow = store.con.execute(f"SELECT {select} FROM {table}").to_arrow_table()
        session.createDataFrame(arrow).createOrReplaceTempView(table)
    return ibis.pyspark.connect(session)


def _assert_same(duck: Any, spark: Any, path: str = "") -> None:
    if isinstance(duck, dict):
        assert isinstance(spark, dict) and set(duck) == set(spark), path
        for key in duck:
            _assert_same(duck[key], spark[key], f"{path}.{key}")
    elif isinstance(duck, float) and isinstance(spark, float):
        assert math.isclose(duck, spark, rel_tol=1e-9, abs_tol=1e-9), (path, duck, spark)
    else:
        assert duck == spark, (path, duck, spark)


@pytest.mark.spark
def test_duckdb_and_spark_compute_the_same_kpis(duck: Store, spark: Any) -> None:
    backend = _to_spark(duck, spark)
    for scenario in SCENARIOS:
        expected = compute_kpis(duck, now=at(300), **scenario)
        got = compute_kpis(backend, now=at(300), **scenario)
        _assert_same(expected, got, f"{scenario}")
    # the dataset does reach the interesting paths
    assert expected["failures"]["count"] >= 4 and expected["badput"]["hang"] > 0


def test_spark_problem_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    problem = spark_problem()
    assert problem is not None and "Java" in problem
    assert SKIP_ENV == "FLEETMEDIC_SKIP_SPARK"
