"""Alibaba gpu-v2023 importer: fixture checks, and the real pod list checked independently."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from fleetmedic.sources.traces import import_traces
from fleetmedic.sources.traces.alibaba import EPOCH
from fleetmedic.store import Store

REAL = Path("/work/shared/data/alibaba-clusterdata/gpu-v2023")


def test_pod_list_fixture(store, run):
    (file,) = run("alibaba-gpu-2023", "openb_pod_list_default.csv").files
    assert (file.rows_read, file.rows_bad) == (6, 0)
    jobs = {
        r[0]: r[1:]
        for r in store.con.execute(
            "SELECT job_id, status, num_gpus, queue, submitted_at, started_at, ended_at, attempts "
            "FROM jobs"
        ).fetchall()
    }
    shared = jobs["alibaba-openb:openb-pod-0001"]
    assert shared[:3] == ("running", 0.46, "LS")  # 460/1000 of one GPU
    assert shared[3] == datetime(2023, 1, 5, 22, 37, 41)  # EPOCH + 427,061 s
    assert jobs["alibaba-openb:openb-pod-0002"][:2] == ("failed", 8.0)
    pending = jobs["alibaba-openb:openb-pod-0004"]
    assert pending[0] == "pending" and pending[4] is None and pending[6] == 0
    assert jobs["alibaba-openb:openb-pod-0003"][0] == "succeeded"
    assert store.con.execute("SELECT count(*) FROM attempts").fetchone() == (5,)


def test_node_list_fixture(store, run):
    (file,) = run("alibaba-gpu-2023", "openb_node_list_all_node.csv").files
    assert file.written.nodes == 3
    nodes = store.con.execute("SELECT node_id, gpu_model, gpus FROM nodes ORDER BY 1").fetchall()
    assert nodes == [
        ("alibaba-openb:openb-node-0000", None, 0),
        ("alibaba-openb:openb-node-0227", "V100M32", 8),
        ("alibaba-openb:openb-node-1001", "T4", 2),
    ]


def _expected_from_csv(path: Path) -> tuple[Counter[str], dict[str, float], int]:
    """Phase counts and GPU-hours by phase, computed with nothing but the csv module."""
    phases: Counter[str] = Counter()
    gpu_hours: dict[str, float] = {}
    rows = 0
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows += 1
            phases[row["pod_phase"]] += 1
            if not row["scheduled_time"]:
                continue
            gpus = int(row["num_gpu"]) * int(row["gpu_milli"]) / 1000
            hours = (int(row["deletion_time"]) - float(row["scheduled_time"])) / 3600
            gpu_hours[row["pod_phase"]] = gpu_hours.get(row["pod_phase"], 0.0) + gpus * hours
    return phases, gpu_hours, rows


@pytest.mark.skipif(not REAL.is_dir(), reason="shared Alibaba gpu-v2023 data not present")
def test_real_alibaba_pod_list_end_to_end(tmp_path):
    pods = REAL / "openb_pod_list_default.csv"
    phases, gpu_hours, total = _expected_from_csv(pods)
    with Store(tmp_path / "real.duckdb") as store:
        report = import_traces(
            store, "alibaba-gpu-2023", [pods, REAL / "openb_node_list_all_node.csv"]
        )
        assert report.files[0].rows_read == total == 8152
        assert report.files[0].rows_bad == 0
        got = dict(
            store.con.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        )
        hours = dict(
            store.con.execute(
                "SELECT status, sum(num_gpus * epoch(ended_at - started_at) / 3600) FROM jobs "
                "WHERE started_at IS NOT NULL GROUP BY status"
            ).fetchall()
        )
        nodes = store.con.execute("SELECT count(*), sum(gpus) FROM nodes").fetchone()
    expected = {phase.lower(): n for phase, n in phases.items()}
    assert got == expected
    assert got["failed"] / total == pytest.approx(0.229, abs=0.0005)  # README: 22.9 %
    assert sum(hours.values()) == pytest.approx(sum(gpu_hours.values()), rel=1e-9)
    for phase, value in gpu_hours.items():
        assert hours[phase.lower()] == pytest.approx(value, rel=1e-9)
    assert hours["failed"] / sum(hours.values()) == pytest.approx(0.018, abs=0.0005)
    assert nodes == (1523, 6212)


def test_epoch_is_documented():
    assert EPOCH.isoformat() == "2023-01-01T00:00:00+00:00"
