"""AcmeTrace importer: schema, status and kind mapping, time base, fail_time events, bad rows."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import duckdb

from fleetmedic.sources.traces import import_traces
from fleetmedic.store import Store
from fleetmedic.store.read import table_counts


def _job(store: Store, job_id: str) -> dict[str, object]:
    cursor = store.con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id])
    names = [d[0] for d in cursor.description or ()]
    row = cursor.fetchone()
    assert row is not None, job_id
    return dict(zip(names, row, strict=True))


def test_seren_jobs_are_normalized(store, run):
    report = run("acme", "trace_seren.csv")
    (file,) = report.files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (8, 8, 0)
    job = _job(store, "acme-seren:5778432")
    assert job["status"] == "failed"
    assert job["cluster"] == "seren" and job["source"] == "acme"
    # 2023-03-01 00:18:54+08:00 is 2023-02-28 16:18:54 UTC, stored naive.
    assert job["started_at"] == datetime(2023, 2, 28, 16, 18, 54)
    assert job["num_gpus"] == 8 and job["num_nodes"] == 1
    statuses = dict(store.con.execute("SELECT job_id, status FROM jobs").fetchall())
    assert statuses["acme-seren:5778501"] == "cancelled"
    assert statuses["acme-seren:5778502"] == "failed"  # NODE_FAIL
    assert statuses["acme-seren:5778610"] == "timeout"
    kinds = dict(store.con.execute("SELECT job_id, kind FROM jobs").fetchall())
    assert kinds["acme-seren:5778501"] == "train"
    assert kinds["acme-seren:5778611"] == "finetune"
    assert kinds["acme-seren:5778610"] == "eval"
    assert kinds["acme-seren:5778700"] == "other"


def test_attempt_keeps_the_slurm_state_as_reason(store, run):
    run("acme", "trace_seren.csv")
    reasons = dict(store.con.execute("SELECT job_id, reason FROM attempts").fetchall())
    assert reasons["acme-seren:5778502"] == "NODE_FAIL"
    assert reasons["acme-seren:5778469"] is None
    # Cancelled before it started: a job with no attempt.
    assert "acme-seren:5778701" not in reasons
    assert _job(store, "acme-seren:5778701")["attempts"] == 0


def test_kalos_fail_time_becomes_events(store, run):
    report = run("acme", "trace_kalos.csv")
    assert report.files[0].written.events == 2
    events = store.con.execute(
        "SELECT ts, object, reason, severity FROM events ORDER BY ts"
    ).fetchall()
    assert events[0] == (
        datetime(2023, 5, 17, 11, 1, 16),
        "job/acme-kalos:dlctk696s0jbvitv",
        "FAILED",
        "error",
    )


def test_malformed_rows_are_counted_by_reason(store, run):
    (file,) = run("acme", "trace_malformed.csv").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (11, 2, 9)
    assert file.bad_reasons == {
        "bad gpu_num": 2,
        "unreadable line (wrong number of fields or bad encoding)": 2,
        "bad duration": 1,
        "bad submit_time": 1,
        "duplicate job_id (the last row is kept)": 1,
        "missing job_id": 1,
        "unknown state EXPLODED": 1,
    }
    # The duplicate keeps its last row; "CANCELLED by <uid>" is cancelled.
    assert _job(store, "acme-malformed:9000001")["num_gpus"] == 4
    assert _job(store, "acme-malformed:9000010")["status"] == "cancelled"


def test_reimport_is_idempotent(store, run):
    first = run("acme", "trace_seren.csv", "trace_kalos.csv")
    before = table_counts(store)
    jobs_before = store.con.execute("SELECT * FROM jobs ORDER BY job_id").fetchall()
    second = run("acme", "trace_seren.csv", "trace_kalos.csv")
    assert table_counts(store) == before
    assert store.con.execute("SELECT * FROM jobs ORDER BY job_id").fetchall() == jobs_before
    assert [f.written for f in first.files] == [f.written for f in second.files]
    assert store.con.execute("SELECT count(*) FROM imports").fetchone() == (2,)


def test_parquet_input_gives_the_same_jobs(tmp_path: Path, fixtures, run):
    parquet = tmp_path / "trace_seren.parquet"
    duckdb.execute(
        f"COPY (SELECT * FROM read_csv('{fixtures / 'trace_seren.csv'}', all_varchar = true)) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    with Store() as from_csv, Store() as from_parquet:
        import_traces(from_csv, "acme", [fixtures / "trace_seren.csv"])
        import_traces(from_parquet, "acme", [parquet])
        sql = "SELECT * EXCLUDE (gpu_util) FROM jobs ORDER BY job_id"
        assert from_csv.con.execute(sql).fetchall() == from_parquet.con.execute(sql).fetchall()


def test_cluster_option_overrides_the_file_name(store, run):
    run("acme", "trace_seren.csv", cluster="Seren-B")
    assert store.con.execute("SELECT DISTINCT cluster FROM jobs").fetchall() == [("seren-b",)]


def test_gzipped_csv_is_read(tmp_path: Path, fixtures, store):
    packed = tmp_path / "trace_seren.csv.gz"
    with gzip.open(packed, "wb") as handle:
        handle.write((fixtures / "trace_seren.csv").read_bytes())
    (file,) = import_traces(store, "acme", [packed]).files
    assert (file.rows_read, file.rows_bad) == (8, 0)
    assert store.con.execute("SELECT count(*) FROM jobs WHERE cluster = 'seren'").fetchone() == (8,)
