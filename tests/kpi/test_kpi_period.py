"""Period semantics: boundary clipping, open jobs, clock skew, missing ends, duplicates."""

from __future__ import annotations

import duckdb
import ibis
import pytest
from kpi_fleet import QUIET, T0, Fleet, at

from fleetmedic.kpi import compute_kpis
from fleetmedic.model.errors import InputError

pytestmark = QUIET


def test_jobs_spanning_the_boundary_count_only_overlapping_gpu_hours(fleet: Fleet) -> None:
    # Period [10, 20). a: 4 GPUs over [5, 15) -> 5 h inside = 20 GPU-h.
    # b: 2 GPUs over [18, 30) -> 2 h inside = 4 GPU-h. c: ends at 9, outside. d: starts at 20.
    fleet.job("a", gpus=4, sub=5, start=5, end=15)
    fleet.job("b", gpus=2, sub=18, start=18, end=30)
    fleet.job("c", gpus=8, sub=0, start=0, end=9)
    fleet.job("d", gpus=8, sub=20, start=20, end=25)
    k = fleet.kpis(since=10, until=20)
    assert k["jobs"]["total"] == 2
    assert k["gpu_hours"]["total"] == pytest.approx(24.0)
    assert k["period"] == {
        "since": "2024-01-01T10:00:00",
        "until": "2024-01-01T20:00:00",
        "hours": 10.0,
    }


def test_running_job_is_clipped_at_until_or_now(fleet: Fleet) -> None:
    # A running job of 2 GPUs started at 10, no end. Until 14 -> 4 h = 8 GPU-h.
    # No until, now = 16 -> the period ends at now: 6 h = 12 GPU-h.
    fleet.job("r", status="running", gpus=2, sub=9, start=10, end=None)
    assert fleet.kpis(until=14)["gpu_hours"]["total"] == pytest.approx(8.0)
    k = fleet.kpis(now=16)
    assert k["gpu_hours"]["total"] == pytest.approx(12.0)
    assert k["period"]["until"] == "2024-01-01T16:00:00"
    assert k["jobs"]["by_status"]["running"] == 1.0
    assert k["gpu_hours"]["by_status"]["running"] == 1.0


def test_running_attempt_is_clipped_too(fleet: Fleet) -> None:
    # Attempt 1 failed [0, 2), attempt 2 running since 3; until 5 -> 1 GPU x (2 + 2) h.
    fleet.job("r", status="running", gpus=1, start=0, end=None, attempts=2)
    fleet.attempt("r", 1, 0, 2, "failed")
    fleet.attempt("r", 2, 3, None, "running")
    k = fleet.kpis(until=5)
    assert k["gpu_hours"]["total"] == pytest.approx(4.0)
    assert k["data_quality"]["missing_end_attempts"] == 0


def test_zero_gpu_job_counts_as_a_job_with_no_gpu_hours(fleet: Fleet) -> None:
    fleet.job("cpu", gpus=0, start=0, end=10)
    fleet.job("gpu", gpus=1, start=0, end=10)
    k = fleet.kpis()
    assert k["jobs"]["total"] == 2
    assert k["jobs"]["zero_gpu"] == 1
    assert k["data_quality"]["zero_gpu_jobs"] == 1
    assert k["gpu_hours"]["total"] == pytest.approx(10.0)


def test_clock_skew_gives_zero_duration_and_is_counted(fleet: Fleet) -> None:
    # ended before it started: 0 GPU-h, counted; started before submission: wait 0, counted.
    fleet.job("skew", gpus=8, sub=0, start=5, end=3)
    fleet.job("early", gpus=1, sub=4, start=2, end=6)
    fleet.job("ok", gpus=1, sub=0, start=0, end=1)
    fleet.job("a", status="failed", gpus=1, start=0, end=4, attempts=2)
    fleet.attempt("a", 1, 2, 1, "failed")  # skewed attempt
    fleet.attempt("a", 2, 3, 4, "failed")
    k = fleet.kpis()
    # GPU-h: skew 0 + early 4 + ok 1 + a (0 + 1) = 6
    assert k["gpu_hours"]["total"] == pytest.approx(6.0)
    dq = k["data_quality"]
    assert (dq["clock_skew_jobs"], dq["clock_skew_attempts"], dq["negative_queue_wait_jobs"]) == (
        1,
        1,
        1,
    )
    # waits: early 0 (clamped), ok 0, a 0, skew 5 -> p50 of [0, 0, 0, 5] = 0
    assert k["queue_wait_hours"]["p50"] == 0.0


def test_finished_job_without_end_time_counts_zero_and_is_reported(fleet: Fleet) -> None:
    fleet.job("lost", status="failed", gpus=4, start=1, end=None)
    fleet.job("ok", gpus=1, start=0, end=2)
    k = fleet.kpis()
    assert k["gpu_hours"]["total"] == pytest.approx(2.0)
    assert k["data_quality"]["missing_end_jobs"] == 1
    assert k["jobs"]["total"] == 2


def test_duplicate_rows_do_not_double_count() -> None:
    # A lake copy of the tables without primary keys, where a re-import repeated every row and
    # one job also appears in an older version (still running, no end).
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE jobs (job_id VARCHAR, num_gpus DOUBLE, submitted_at TIMESTAMP,"
        ' started_at TIMESTAMP, ended_at TIMESTAMP, status VARCHAR, "user" VARCHAR)'
    )
    rows = [
        ("a", 2, at(0), at(0), at(5), "succeeded", "u"),
        ("b", 1, at(0), at(1), at(3), "failed", "u"),
    ]
    for _ in range(2):
        con.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("INSERT INTO jobs VALUES ('a', 2, ?, ?, NULL, 'running', 'u')", [at(0), at(0)])
    con.execute(
        "CREATE TABLE attempts (job_id VARCHAR, attempt BIGINT, started_at TIMESTAMP,"
        " ended_at TIMESTAMP, status VARCHAR)"
    )
    for _ in range(3):
        con.execute("INSERT INTO attempts VALUES ('b', 1, ?, ?, 'failed')", [at(1), at(3)])
    k = compute_kpis(ibis.duckdb.from_connection(con), now=at(10))
    # a: 2 GPUs x 5 h (the finished version wins) + b: 1 x 2 h = 12
    assert k["jobs"]["total"] == 2
    assert k["jobs"]["count_by_status"]["succeeded"] == 1
    assert k["gpu_hours"]["total"] == pytest.approx(12.0)
    assert k["failures"]["count"] == 1
    assert k["data_quality"]["duplicate_rows"] == {
        "jobs": 3,
        "attempts": 2,
        "nodes": 0,
        "diagnoses": 0,
    }


def test_weekly_groups_partition_the_period(fleet: Fleet) -> None:
    # T0 is a Monday. A job of 1 GPU from day 6 to day 8 crosses the week boundary (day 7):
    # 24 GPU-h in week 1 and 24 in week 2; a second job in week 2 adds 10.
    fleet.job("x", gpus=1, sub=6 * 24, start=6 * 24, end=8 * 24)
    fleet.job("y", gpus=1, sub=9 * 24, start=9 * 24, end=9 * 24 + 10)
    k = fleet.kpis(since=0, until=14 * 24, by="week", now=20 * 24)
    groups = k["groups"]
    assert list(groups) == ["2024-01-01", "2024-01-08"]
    assert groups["2024-01-01"]["gpu_hours"]["total"] == pytest.approx(24.0)
    assert groups["2024-01-08"]["gpu_hours"]["total"] == pytest.approx(34.0)
    assert groups["2024-01-01"]["jobs"]["total"] == 1
    assert groups["2024-01-08"]["jobs"]["total"] == 2  # x is alive in both weeks
    assert sum(g["gpu_hours"]["total"] for g in groups.values()) == pytest.approx(
        k["gpu_hours"]["total"]
    )


def test_bad_period_and_grouping_are_input_errors(fleet: Fleet) -> None:
    fleet.job("a")
    with pytest.raises(InputError, match="before"):
        fleet.kpis(since=10, until=5)
    with pytest.raises(InputError, match="cannot group by"):
        fleet.kpis(by="planet")


def test_aware_datetimes_are_converted_to_utc(fleet: Fleet) -> None:
    from datetime import timedelta, timezone

    fleet.job("a", gpus=1, start=0, end=10)
    plus2 = timezone(timedelta(hours=2))
    since = (T0 + timedelta(hours=7)).replace(tzinfo=plus2)  # 05:00 UTC
    k = compute_kpis(fleet.store, since, None, now=at(10))
    assert k["period"]["since"] == "2024-01-01T05:00:00"
    assert k["gpu_hours"]["total"] == pytest.approx(5.0)


def test_a_snapshot_with_running_jobs_is_not_stretched_to_today() -> None:
    """A simulation or trace that ended with a job still running: the period ends with the data."""
    from datetime import datetime

    from fleetmedic.store import Store

    with Store() as store:
        store.con.execute(
            "INSERT INTO jobs (job_id, num_gpus, submitted_at, started_at, ended_at, status) VALUES "
            "('done', 8, '2024-01-01 00:00:00', '2024-01-01 00:00:00', '2024-01-01 10:00:00', 'succeeded'), "
            "('open', 8, '2024-01-01 00:00:00', '2024-01-01 00:00:00', NULL, 'running')"
        )
        snapshot = compute_kpis(store, now=datetime(2026, 1, 1))
        live = compute_kpis(store, now=datetime(2024, 1, 1, 20))
    # Snapshot: both jobs measured over the 10 h (+1 s) of data: about 160 GPU-hours.
    assert abs(snapshot["gpu_hours"]["total"] - 160.0) < 0.1
    # Live (now is 10 h after the last timestamp): the running job runs on to now, 20 h in all.
    assert abs(live["gpu_hours"]["total"] - (80.0 + 160.0)) < 0.1
