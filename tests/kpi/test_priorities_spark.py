"""The ranking's Ibis expressions give the same answer on Spark as on DuckDB.

Uses the KPI tests' shared Spark session (``spark`` fixture in conftest.py): it fails with what
to install when PySpark or Java is missing, and skips only with ``FLEETMEDIC_SKIP_SPARK=1``.
Slow (many small Spark jobs): deselect with ``-m "not spark"`` in quick runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from fleetmedic.kpi.priorities import priorities_report
from fleetmedic.store import Store

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SINCE, UNTIL = datetime(2024, 5, 6), datetime(2024, 5, 13)
TABLES = ("jobs", "attempts", "attempt_nodes", "nodes", "diagnoses", "tickets")

ROWS_SQL = """
INSERT INTO nodes (node_id, pool) VALUES ('gpu-17', 'a100'), ('gpu-18', 'a100');
INSERT INTO jobs (job_id, "user", num_gpus, started_at, ended_at, status, attempts) VALUES
  ('pretrain', 'alice', 64, '2024-05-06 00:00', '2024-05-07 12:00', 'failed', 2),
  ('sft', 'bob', 8, '2024-05-08 00:00', '2024-05-08 06:00', 'failed', 1),
  ('old', 'erin', 16, '2024-04-29 00:00', '2024-04-29 05:00', 'failed', 1),
  ('eval', 'dan', 1, '2024-05-09 00:00', '2024-05-09 02:00', 'failed', 1),
  ('ok', 'frank', 32, '2024-05-06 00:00', '2024-05-08 00:00', 'succeeded', 1);
INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status, last_checkpoint_at)
VALUES
  ('pretrain', 1, 'gpu-17, gpu-18', '2024-05-06 00:00', '2024-05-06 20:00', 'failed',
   '2024-05-06 18:00'),
  ('pretrain', 2, 'gpu-17,gpu-18', '2024-05-06 20:30', '2024-05-07 12:00', 'failed', NULL);
INSERT INTO diagnoses (job_id, attempt, category, owner, signature, node_id) VALUES
  ('pretrain', 1, 'gpu_hardware', 'hardware', 'xid_79', 'gpu-17'),
  ('sft', 1, 'gpu_oom', 'user', 'cuda_oom', NULL),
  ('old', 1, 'gpu_oom', 'user', 'cuda_oom', NULL);
INSERT INTO tickets (ticket_id, created_at, text, job_ids, category) VALUES
  ('T-1', '2024-05-07 13:00', 'dies', '["pretrain", "sft"]', NULL),
  ('T-2', '2024-05-08 07:00', 'oom?', NULL, 'gpu_oom');
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store(tmp_path_factory.mktemp("spark") / "fleet.duckdb") as opened:
        opened.con.execute(ROWS_SQL)
        yield opened


@pytest.fixture(scope="module")
def spark_backend(store: Store, spark: Any) -> Iterator[Any]:
    """The store's tables copied into the KPI tests' shared Spark session, as a lake would hold
    them (JSON columns become plain strings there)."""
    import ibis

    for name in TABLES:
        arrow = store.con.execute(f"SELECT * FROM {name}").to_arrow_table()
        spark.createDataFrame(arrow).createOrReplaceTempView(name)
    yield ibis.pyspark.connect(spark)
    for name in TABLES:  # the session is shared: leave no view behind for other tests
        spark.catalog.dropTempView(name)


def test_spark_ranks_exactly_like_duckdb(store: Store, spark_backend: Any) -> None:
    on_duckdb = priorities_report(store, SINCE, UNTIL).to_dict()
    on_spark = priorities_report(spark_backend, SINCE, UNTIL).to_dict()

    assert on_spark == on_duckdb
    rows = on_duckdb["rows"]
    assert [(r["category"], r["gpu_hours_lost"], r["tickets"]) for r in rows] == [
        ("unknown", 64 * 15.5 + 1 * 2, 1),  # pretrain's undiagnosed attempt 2, and eval
        ("gpu_hardware", 64 * 2 + 64 * 0.5, 1),  # since checkpoint + restart on the same nodes
        ("gpu_oom", 48.0, 2),  # the linked ticket and the unlinked gpu_oom one
    ]
    assert rows[1]["node"] == {"name": "gpu-17", "share": 1.0}
    assert rows[2]["trend"]["direction"] == "down"  # 80 GPU-hours the week before
