"""Repeat tickets per cause in the priorities ranking: filed a day or more after the first one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import ibis

from fleetmedic.kpi.priorities import priorities_report
from fleetmedic.store import Store

T0 = datetime(2024, 1, 8)


def _store() -> Store:
    store = Store(":memory:")
    con = store.con
    for job, user in (("j1", "alice"), ("j2", "bob"), ("j3", "carol")):
        con.execute(
            'INSERT INTO jobs (job_id, "user", num_gpus, started_at, ended_at, status) '
            "VALUES (?, ?, 8, ?, ?, 'failed')",
            [job, user, T0, T0 + timedelta(hours=2)],
        )
    con.execute(
        "INSERT INTO diagnoses (job_id, attempt, category, owner, signature) VALUES "
        "('j1', 1, 'storage_io', 'platform', 'nfs.stale'), "
        "('j2', 1, 'storage_io', 'platform', 'nfs.stale'), "
        "('j3', 1, 'gpu_oom', 'user', 'cuda.oom')"
    )
    tickets = [
        ("t1", T0 + timedelta(hours=3), ["j1"], None),  # first ticket of storage_io/nfs.stale
        ("t2", T0 + timedelta(hours=5), ["j2"], None),  # same wave: not a repeat
        ("t3", T0 + timedelta(days=2), ["j1", "j2"], None),  # came back two days later: repeat
        ("t4", T0 + timedelta(hours=4), ["j3"], None),
        ("t5", T0 + timedelta(hours=1), None, "gpu_oom"),  # unlinked, same category
        ("t6", T0 + timedelta(days=3), None, "gpu_oom"),  # unlinked repeat of its category
    ]
    for ticket_id, created, jobs, category in tickets:
        con.execute(
            "INSERT INTO tickets (ticket_id, created_at, text, job_ids, category) "
            "VALUES (?, ?, 'help', ?, ?)",
            [ticket_id, created, json.dumps(jobs) if jobs else None, category],
        )
    return store


def test_repeat_tickets_count_those_filed_a_day_after_the_first_of_the_cause() -> None:
    with _store() as store:
        backend = ibis.duckdb.from_connection(store.con)
        report = priorities_report(backend, T0, T0 + timedelta(days=7))
    rows = {row.cause: row for row in report.rows}

    assert rows["storage_io/nfs.stale"].tickets == 3
    assert rows["storage_io/nfs.stale"].repeat_tickets == 1
    assert rows["gpu_oom/cuda.oom"].tickets == 3  # t4 linked + t5, t6 by category
    assert rows["gpu_oom/cuda.oom"].repeat_tickets == 1  # t6 (t4 is linked: its own first)
    assert report.to_dict()["rows"][0]["repeat_tickets"] is not None


def test_repeat_tickets_are_null_without_any_ticket() -> None:
    with Store(":memory:") as store:
        store.con.execute(
            'INSERT INTO jobs (job_id, "user", num_gpus, started_at, ended_at, status) '
            "VALUES ('j1', 'a', 1, ?, ?, 'failed')",
            [T0, T0 + timedelta(hours=1)],
        )
        report = priorities_report(ibis.duckdb.from_connection(store.con), T0, T0 + timedelta(7))
    assert report.rows[0].tickets is None and report.rows[0].repeat_tickets is None
