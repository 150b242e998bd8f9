"""Bundles are diagnosable: the unchanged engine names most injected categories from them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from fleetmedic.sim.emit import FailureContext, bundle, cluster_events, templates
from fleetmedic.sim.workload import JobSpec
from fleetmedic.workflows.simulate import DiagnoseObserver, documents

XIDS = ("79", "74", "48", "94", "95", "63", "119")
SIZES = (1, 4, 8, 64, 1024)
STARTUP = {"image_pull", "scheduling", "rendezvous", "dependency_error"}


def context(category: str, seed: int) -> FailureContext:
    gpus = SIZES[seed % len(SIZES)]
    nodes = max(1, gpus // 8)
    job = JobSpec(
        idx=seed,
        job_id=f"job-{seed}",
        name=f"vision-train-{seed}",
        user="u",
        team="vision",
        kind="train",
        gpus=gpus,
        pool="gpu-h100",
        priority=50,
        submit=0.0,
        work=1e6,
        fate="failed",
        fate_category=None,
        fate_at=0.0,
        interval=1800.0,
        save=60.0,
        restart=600.0,
        gpu_util=0.9,
    )
    start = 1000.0
    stop = start if category in STARTUP else start + 3 * 3600
    end = stop + {"hang": 1800.0, "node_failure": 600.0}.get(category, 30.0)
    names = () if category == "scheduling" else tuple(f"gpu-h100-{i:04d}" for i in range(nodes))
    return FailureContext(
        job=job,
        attempt=1 + seed % 3,
        nodes=names,
        start=start,
        stop=stop,
        end=end,
        category=category,
        culprit=seed % nodes,
        xid=XIDS[seed % len(XIDS)] if category == "gpu_hardware" else None,
        user_side=seed % 2 == 0,
        resumed_step=1000 * (seed % 3),
        origin=datetime(2024, 6, 3, tzinfo=UTC),
        seed=17,
        restart=600.0 if seed % 3 else 0.0,
    )


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Counter[str]]:
    observer = DiagnoseObserver()
    out: dict[str, Counter[str]] = {}
    for category in templates()["categories"]:
        out[category] = Counter(
            observer(context(category, seed), []).category for seed in range(10)
        )
    return out


def test_most_injected_categories_are_diagnosed(verdicts: dict[str, Counter[str]]) -> None:
    total = sum(sum(c.values()) for c in verdicts.values())
    right = sum(c[category] for category, c in verdicts.items())
    assert right / total >= 0.9
    for category, counts in verdicts.items():
        assert counts[category] / sum(counts.values()) >= 0.7, (category, counts)


def test_a_bundle_is_what_the_cluster_shows_not_the_answer() -> None:
    ctx = context("gpu_oom", 3)
    collected = bundle(ctx)
    names = list(collected.logs) + list(collected.objects)
    assert any(n.endswith(".log") for n in names) and any(n.endswith(".json") for n in names)
    text = b"".join(collected.logs.values()).decode()
    assert "gpu_oom" not in text and "category" not in text
    docs = documents(collected)
    assert {d.kind for d in docs} == {"log", "k8s"}


def test_same_context_same_bundle_and_events() -> None:
    ctx = context("nccl_comm", 8)
    assert bundle(ctx).logs == bundle(ctx).logs
    assert cluster_events(ctx) == cluster_events(ctx)


def test_cascades_put_the_cause_on_one_rank_and_symptoms_on_the_others() -> None:
    ctx = context("gpu_oom", 3)  # 64 GPUs, 8 pods: culprit + two peers collected
    logs = {k: v.decode() for k, v in bundle(ctx).logs.items()}
    culprit = logs.get(f"{ctx.job.name}-worker-{ctx.culprit}.log", "")
    peers = [t for k, t in logs.items() if k != f"{ctx.job.name}-worker-{ctx.culprit}.log"]
    assert "out of memory" in culprit.lower()
    assert peers and all("Watchdog caught collective operation timeout" in t for t in peers)
    assert "ChildFailedError" in culprit
