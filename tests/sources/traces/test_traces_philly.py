"""Philly importer: attempts with nodes and GPUs, running jobs, Pacific time, bad records."""

from __future__ import annotations

from datetime import datetime

from fleetmedic.store.read import table_counts


def test_philly_jobs_attempts_and_nodes(store, run):
    (file,) = run("philly", "philly_cluster_job_log.json").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (4, 4, 0)
    jobs = {
        r[0]: r[1:]
        for r in store.con.execute(
            "SELECT job_id, status, num_gpus, num_nodes, attempts, queue, submitted_at, "
            "started_at, ended_at FROM jobs"
        ).fetchall()
    }
    passed = jobs["philly:application_1506638472019_14199"]
    # 2017-10-07 01:11:39 PDT (UTC-7) is 08:11:39 UTC.
    assert passed == (
        "succeeded",
        8.0,
        1,
        2,
        "ee9e8c",
        datetime(2017, 10, 7, 8, 11, 39),
        datetime(2017, 10, 7, 8, 12, 9),
        datetime(2017, 10, 9, 13, 53, 12),
    )
    assert jobs["philly:application_1506638472019_15001"][:4] == ("failed", 4.0, 2, 1)
    assert jobs["philly:application_1506638472019_15002"][:4] == ("cancelled", 0.0, None, 0)
    running = jobs["philly:application_1506638472019_15003"]
    assert running[0] == "running" and running[-1] is None
    # December is PST (UTC-8).
    assert running[-2] == datetime(2017, 12, 20, 16, 0, 0)


def test_philly_attempt_nodes(store, run):
    run("philly", "philly_cluster_job_log.json")
    attempts = store.con.execute(
        "SELECT attempt, status, nodes FROM attempts "
        "WHERE job_id = 'philly:application_1506638472019_14199' ORDER BY attempt"
    ).fetchall()
    assert attempts == [(1, None, "philly:m47"), (2, "succeeded", "philly:m412")]
    links = store.con.execute(
        "SELECT node_id FROM attempt_nodes WHERE job_id = 'philly:application_1506638472019_15001'"
        " ORDER BY node_id"
    ).fetchall()
    assert links == [("philly:m21",), ("philly:m22",)]
    nodes = store.con.execute("SELECT node_id, first_seen FROM nodes ORDER BY 1").fetchall()
    assert [n for n, _ in nodes] == ["philly:m21", "philly:m22", "philly:m412", "philly:m47"]
    assert dict(nodes)["philly:m47"] == datetime(2017, 10, 7, 8, 12, 9)


def test_philly_bad_records_are_counted(run):
    (file,) = run("philly", "philly_bad.json").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (7, 1, 6)
    assert file.bad_reasons == {
        "unknown status Exploded": 1,
        "attempts is not a list of attempts": 1,
        "bad attempt time": 1,
        "missing jobid": 1,
        "missing or bad submitted_time": 1,
        "not a JSON object": 1,
    }


def test_philly_reimport_is_idempotent(store, run):
    run("philly", "philly_cluster_job_log.json")
    before = table_counts(store)
    run("philly", "philly_cluster_job_log.json")
    assert (
        table_counts(store)
        == before
        == {
            "jobs": 4,
            "attempts": 4,
            "attempt_nodes": 5,
            "nodes": 4,
            "events": 0,
        }
    )
