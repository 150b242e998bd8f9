"""Kubernetes dump importer: pods, jobs, events and nodes from `kubectl get -o json`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces import ImportOptions, import_traces
from fleetmedic.store.read import table_counts


def _by_id(store, sql: str) -> dict[str, tuple[object, ...]]:
    return {row[0]: row[1:] for row in store.con.execute(sql).fetchall()}


def test_dump_counts_and_idempotency(store, run):
    (file,) = run("k8s", "k8s_dump.json").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (21, 21, 0)
    before = table_counts(store)
    assert before == {"jobs": 9, "attempts": 9, "attempt_nodes": 8, "nodes": 2, "events": 10}
    run("k8s", "k8s_dump.json")
    assert table_counts(store) == before


def test_job_statuses(store, run):
    run("k8s", "k8s_dump.json")
    status = {k: v[0] for k, v in _by_id(store, "SELECT job_id, status FROM jobs").items()}
    assert status == {
        "k8s:ml-research/job/train-llama": "failed",
        "k8s:ml-research/job/eval-run": "succeeded",
        "k8s:ml-research/job/sweep-lr": "timeout",
        "k8s:ml-prod/job/pretrain-7b": "running",
        "k8s:ml-research/pod/notebook-alice-0": "running",
        "k8s:ml-data/pod/data-prep-6d9f7c-zx8qv": "failed",
        "k8s:ml-research/pod/batch-infer-3": "preempted",
        "k8s:ml-research/pod/big-train-0": "pending",
        "k8s:ml-research/pod/finetune-typo-0": "pending",
    }
    llama = _by_id(
        store, "SELECT job_id, attempts, num_gpus, queue, exit_code, ended_at, project FROM jobs"
    )["k8s:ml-research/job/train-llama"]
    assert llama == (2, 8.0, "research", 137, datetime(2024, 5, 1, 9, 41, 3), "ml-research")


def test_pod_attempts_keep_the_telling_reason(store, run):
    run("k8s", "k8s_dump.json")
    attempts = store.con.execute(
        "SELECT job_id, attempt, status, reason, exit_code, nodes FROM attempts"
    ).fetchall()
    by_key = {(a[0], a[1]): a[2:] for a in attempts}
    assert by_key[("k8s:ml-research/job/train-llama", 1)] == (
        "failed",
        "OOMKilled",
        137,
        "gpu-node-a1",
    )
    assert by_key[("k8s:ml-research/job/train-llama", 2)][:2] == ("failed", "OOMKilled")
    assert by_key[("k8s:ml-data/pod/data-prep-6d9f7c-zx8qv", 1)][:2] == ("failed", "Evicted")
    assert by_key[("k8s:ml-research/pod/batch-infer-3", 1)][:2] == (
        "preempted",
        "PreemptionByScheduler",
    )
    assert by_key[("k8s:ml-research/pod/finetune-typo-0", 1)][:2] == (
        "pending",
        "ImagePullBackOff",
    )
    assert by_key[("k8s:ml-prod/job/pretrain-7b", 1)][:2] == ("failed", "NodeLost")
    assert by_key[("k8s:ml-research/pod/notebook-alice-0", 1)][:2] == ("running", "OOMKilled")
    assert by_key[("k8s:ml-research/job/eval-run", 1)][:3] == ("succeeded", None, 0)


def test_events_from_the_dump_and_from_terminations(store, run):
    run("k8s", "k8s_dump.json")
    events = store.con.execute(
        "SELECT kind, object, reason, severity, raw FROM events ORDER BY ts, object"
    ).fetchall()
    reasons = {(e[0], e[1], e[2]) for e in events}
    assert ("k8s_event", "pod/ml-research/big-train-0", "FailedScheduling") in reasons
    assert ("k8s_event", "job/ml-research/train-llama", "BackoffLimitExceeded") in reasons
    assert ("k8s_event", "node/gpu-node-b2", "NodeNotReady") in reasons
    assert ("k8s_event", "pod/ml-data/data-prep-6d9f7c-zx8qv", "Evicted") in reasons
    oom = [e for e in events if e[0] == "container_terminated" and e[2] == "OOMKilled"]
    assert [e[1] for e in oom] == [
        "pod/ml-research/train-llama-x7k2p",
        "pod/ml-research/train-llama-q9m4t",
    ]
    assert json.loads(oom[1][4]) == {
        "job_id": "k8s:ml-research/job/train-llama",
        "attempt": 2,
        "container": "trainer",
        "exitCode": 137,
        "init": False,
    }
    severities = {e[2]: e[3] for e in events if e[0] == "k8s_event"}
    assert severities["FailedScheduling"] == "warning" and severities["Started"] == "info"


def test_nodes(store, run):
    run("k8s", "k8s_dump.json")
    nodes = _by_id(
        store, "SELECT node_id, gpu_model, gpus, pool, cordoned, conditions, last_seen FROM nodes"
    )
    a1 = nodes["gpu-node-a1"]
    assert a1[:4] == ("NVIDIA-A100-SXM4-80GB", 8, "a100-pool", False)
    b2 = nodes["gpu-node-b2"]
    assert b2[3] is True
    assert json.loads(b2[4])["Ready"] == "Unknown"
    assert b2[5] == datetime(2024, 5, 1, 10, 34, 10)


def test_cluster_option_prefixes_job_ids(store, run):
    run("k8s", "k8s_dump.json", cluster="prod-east")
    ids = [r[0] for r in store.con.execute("SELECT job_id FROM jobs").fetchall()]
    assert all(i.startswith("k8s-prod-east:") for i in ids)
    assert store.con.execute("SELECT DISTINCT cluster FROM jobs").fetchall() == [("prod-east",)]


def _write_list(path: Path, items: list[object]) -> Path:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def test_other_kinds_and_broken_items_are_counted(tmp_path, store):
    path = _write_list(
        tmp_path / "dump.json",
        [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "a"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "a"}},
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "a"},
                "status": {"phase": "Exploded"},
            },
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "e", "namespace": "a"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "a"},
                "reason": "X",
            },
            "not an object",
        ],
    )
    (file,) = import_traces(store, "k8s", [path]).files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (5, 0, 5)
    assert file.bad_reasons == {
        "not imported: kind Service": 1,
        "missing metadata.name": 1,
        "unknown pod phase Exploded": 1,
        "event without a time": 1,
        "not a JSON object": 1,
    }


def test_a_single_object_is_accepted(tmp_path, store):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "solo", "namespace": "x", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "status": {"phase": "Succeeded"},
    }
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(pod))
    import_traces(store, "k8s", [path], options=ImportOptions())
    assert store.con.execute("SELECT job_id, status FROM jobs").fetchall() == [
        ("k8s:x/pod/solo", "succeeded")
    ]


def test_not_a_list_is_refused(tmp_path, store):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(InputError, match="missing key items"):
        import_traces(store, "k8s", [path])
