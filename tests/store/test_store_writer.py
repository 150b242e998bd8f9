"""The one writer: upsert rules per table, all-or-nothing writes, the event content hash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetmedic.model.records import Attempt, Event, Job, Node
from fleetmedic.store import Store
from fleetmedic.store.read import read_imports, read_jobs, table_counts
from fleetmedic.store.writer import (
    ImportRecord,
    Staged,
    WriteCounts,
    Writer,
    event_id,
    event_id_sql,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store() as opened:
        yield opened


@pytest.fixture
def writer(store: Store) -> Writer:
    return Writer(store)


@pytest.mark.parametrize(
    ("ts", "reason", "message"),
    [
        (datetime(2024, 5, 1, 9, 0, 0), "OOMKilled", "container trainer exited"),
        (datetime(2024, 5, 1, 9, 0, 0, 123456), None, None),
        (datetime(2024, 5, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))), "X", "ünïcode ✓"),
    ],
)
def test_event_id_in_python_and_sql_agree(store, ts, reason, message):
    naive = ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
    sql = event_id_sql(
        ts=f"TIMESTAMP '{naive.isoformat(sep=' ')}'",
        source="'k8s'",
        kind="'k8s_event'",
        obj="'pod/a/b'",
        reason=f"'{reason}'" if reason is not None else "NULL",
        message=f"'{message}'" if message is not None else "NULL",
    )
    row = store.con.execute(f"SELECT {sql}").fetchone()
    assert row == (event_id(ts, "k8s", "k8s_event", "pod/a/b", reason, message),)


def test_write_records_round_trip(store, writer):
    job = Job(job_id="sim:1", status="failed", num_gpus=8, submitted_at=T0, started_at=T0)
    attempt = Attempt(job_id="sim:1", attempt=1, nodes=("n1", "n2", "n1"), exit_code=137)
    counts = writer.write_records(jobs=[job], attempts=[attempt], source="sim")
    assert counts == WriteCounts(jobs=1, attempts=1, attempt_nodes=2)
    (back,) = read_jobs(store, source="sim")
    assert back.started_at == T0 and back.status == "failed" and back.num_gpus == 8
    assert store.con.execute("SELECT nodes FROM attempts").fetchone() == ("n1,n2",)


def test_events_are_append_only_and_keyed_by_content(store, writer):
    event = Event(ts=T0, source="k8s", kind="k8s_event", object="pod/a/b", reason="Evicted")
    writer.write_records(events=[event, event])
    writer.write_records(events=[event])
    assert table_counts(store)["events"] == 1
    later = event.model_copy(update={"ts": T0 + timedelta(minutes=1)})
    writer.write_records(events=[later])
    assert table_counts(store)["events"] == 2


def test_nodes_merge_instead_of_erasing(store, writer):
    writer.write_records(
        nodes=[Node(node_id="gpu-1", gpu_model="H100", gpus=8, labels={"pool": "a"})]
    )
    store.con.execute(
        "CREATE TEMP TABLE partial AS SELECT 'gpu-1' AS node_id, "
        "TIMESTAMP '2024-05-01 09:00' AS first_seen, TIMESTAMP '2024-05-01 10:00' AS last_seen"
    )
    writer.write(Staged(nodes="partial"))
    store.con.execute(
        "CREATE OR REPLACE TEMP TABLE partial AS SELECT 'gpu-1' AS node_id, "
        "TIMESTAMP '2024-05-01 08:00' AS first_seen, TIMESTAMP '2024-05-01 09:30' AS last_seen"
    )
    writer.write(Staged(nodes="partial"))
    row = store.con.execute(
        "SELECT gpu_model, gpus, labels, first_seen, last_seen FROM nodes"
    ).fetchone()
    assert row is not None
    assert row[:2] == ("H100", 8) and json.loads(row[2]) == {"pool": "a"}
    assert row[3:] == (datetime(2024, 5, 1, 8, 0), datetime(2024, 5, 1, 10, 0))


def test_a_repeated_key_fails_the_whole_write(store, writer):
    store.con.execute(
        "CREATE TEMP TABLE j AS SELECT * FROM (VALUES ('a', 'failed'), ('a', 'succeeded')) "
        "v(job_id, status)"
    )
    store.con.execute("CREATE TEMP TABLE e AS SELECT 'x' AS node_id")
    with pytest.raises(ValueError, match="repeat a key"):
        writer.write(Staged(jobs="j", nodes="e"))
    assert table_counts(store) == {
        "jobs": 0,
        "attempts": 0,
        "attempt_nodes": 0,
        "nodes": 0,
        "events": 0,
    }


def test_a_status_outside_the_contract_is_refused(store, writer):
    store.con.execute("CREATE TEMP TABLE j AS SELECT 'a' AS job_id, 'completed' AS status")
    with pytest.raises(ValueError, match="status outside"):
        writer.write(Staged(jobs="j"))


def test_jobs_are_replaced_on_reimport(store, writer):
    writer.write_records(jobs=[Job(job_id="a", status="running", num_gpus=1)])
    writer.write_records(jobs=[Job(job_id="a", status="succeeded", num_gpus=1)])
    assert store.con.execute("SELECT status FROM jobs").fetchall() == [("succeeded",)]


def test_import_log_has_one_row_per_file(store, writer):
    record = ImportRecord("acme", "/data/trace_seren.csv", 10, 9, 1, T0, T0 + timedelta(seconds=2))
    writer.record_import(record)
    writer.record_import(record)
    (log,) = read_imports(store)
    assert (log.format, log.rows_read, log.rows_ok, log.rows_bad) == ("acme", 10, 9, 1)
    assert log.finished_at == datetime(2024, 5, 1, 9, 0, 2)
