"""A small store for the report tests, with hostile text wherever users can put text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetmedic.store import Store

EVIL_JOB = "<script>alert('job')</script>"
EVIL_CATEGORY = "<script>alert('category')</script>"
EVIL_SIGNATURE = "\"'><img src=x onerror=alert('sig')>"
EVIL_NODE = "<b onmouseover=alert('node')>gpu-9</b>"
PAYLOADS = (EVIL_JOB, EVIL_CATEGORY, EVIL_SIGNATURE, EVIL_NODE, "<img src=x", "<b onmouseover")


@dataclass(frozen=True)
class Hostile:
    """The hostile strings the store holds, for tests to look for in what the report writes."""

    category: str = EVIL_CATEGORY
    node: str = EVIL_NODE
    payloads: tuple[str, ...] = PAYLOADS


@pytest.fixture(scope="session")
def hostile() -> Hostile:
    return Hostile()


# Two ISO weeks (Mondays 2024-01-01 and 2024-01-08). GPU-hours: week 1 succeeded 8 x 10 and
# failed 4 x 5; week 2 failed 2 x 3 (the hostile job) and timeout 1 x 2.
JOBS = [
    ("ok", "alice", 8, "2024-01-02 00:00", "2024-01-02 01:00", "2024-01-02 11:00", "succeeded"),
    ("oom", "bob", 4, "2024-01-03 00:00", "2024-01-03 00:30", "2024-01-03 05:30", "failed"),
    (EVIL_JOB, EVIL_JOB, 2, "2024-01-09 00:00", "2024-01-09 02:00", "2024-01-09 05:00", "failed"),
    ("late", "carol", 1, "2024-01-10 00:00", "2024-01-10 00:00", "2024-01-10 02:00", "timeout"),
]


@pytest.fixture(scope="session")
def report_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "fleet.duckdb"
    with Store(path) as store:
        con = store.con
        con.executemany(
            "INSERT INTO nodes (node_id, pool, gpus) VALUES (?, ?, 8)",
            [("gpu-1", "pool-a"), (EVIL_NODE, "pool-b")],
        )
        con.executemany(
            'INSERT INTO jobs (job_id, "user", num_gpus, submitted_at, started_at, ended_at,'
            " status) VALUES (?, ?, ?, ?, ?, ?, ?)",
            JOBS,
        )
        con.executemany(
            "INSERT INTO attempt_nodes (job_id, attempt, node_id) VALUES (?, 1, ?)",
            [("oom", "gpu-1"), (EVIL_JOB, EVIL_NODE)],
        )
        con.executemany(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, signature, node_id)"
            " VALUES (?, 1, ?, 'user', ?, NULL)",
            [("oom", "gpu_oom", "cuda_oom"), (EVIL_JOB, EVIL_CATEGORY, EVIL_SIGNATURE)],
        )
        con.execute(
            "INSERT INTO tickets (ticket_id, created_at, text, job_ids, category)"
            " VALUES ('t1', '2024-01-09 06:00', ?, json_array(?), ?)",
            [EVIL_JOB, EVIL_JOB, EVIL_CATEGORY],
        )
    return path
