"""Every format: importing the same files twice leaves the store exactly as after the first."""

from __future__ import annotations

import pytest

from fleetmedic.store.read import table_counts

CASES = [
    ("acme", ("trace_seren.csv", "trace_kalos.csv", "trace_malformed.csv"), None),
    ("helios", ("helios/Venus/cluster_log.csv",), None),
    ("philly", ("philly_cluster_job_log.json", "philly_bad.json"), None),
    ("alibaba-gpu-2023", ("openb_pod_list_default.csv", "openb_node_list_all_node.csv"), None),
    ("k8s", ("k8s_dump.json",), None),
    ("csv", ("sacct_jobs.psv",), "sacct_mapping.yaml"),
    ("csv", ("scheduler_jobs.jsonl",), "scheduler_mapping.yaml"),
]
TABLES = ("jobs", "attempts", "attempt_nodes", "nodes", "events", "imports")


def _snapshot(store) -> dict[str, list[tuple[object, ...]]]:
    skip = {"imports": "EXCLUDE (started_at, finished_at)"}
    return {
        t: store.con.execute(f"SELECT * {skip.get(t, '')} FROM {t} ORDER BY ALL").fetchall()
        for t in TABLES
    }


@pytest.mark.parametrize(("fmt", "names", "mapping"), CASES, ids=[c[0] for c in CASES])
def test_import_twice_changes_nothing(store, run, fmt, names, mapping):
    first = run(fmt, *names, mapping=mapping)
    counts, snapshot = table_counts(store), _snapshot(store)
    assert counts["jobs"] or counts["nodes"]
    second = run(fmt, *names, mapping=mapping)
    assert table_counts(store) == counts
    assert _snapshot(store) == snapshot
    assert [f.as_dict() | {"seconds": 0} for f in first.files] == [
        f.as_dict() | {"seconds": 0} for f in second.files
    ]
