"""A small fleet written into a real store with plain SQL, for the ticket tests.

The scenario (times from T0, all UTC):

* alice's ``train-llama-0042`` ran out of GPU memory (1 h); her ``train-llama-0043`` succeeded.
* bob's ``ft-bert-0007`` raised a KeyError in his code.
* a storage outage: ``etl-001`` .. ``etl-006`` of four users failed with ``storage_io`` within
  50 minutes around T0+10h.
* node ``gpu-b-13`` went bad: three jobs failed there with ``gpu_hardware`` over two days, and the
  healer cordoned it; ``pretrain-big`` was restarted from a checkpoint after the last one.
* carol's ``sweep-0003`` is pending.
* the Kubernetes import keyed ``kube:ml/job/resnet-ddp``; its pods are ``resnet-ddp-worker-N``.
* a simulator job ``sim-abc12345-000096`` whose pod ``research-eval-96-worker-0`` only events name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from fleetmedic.store import Store

T0 = datetime(2024, 6, 3, 0, 0)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def aware(hours: float) -> datetime:
    return at(hours).replace(tzinfo=UTC)


class TicketFleet:
    def __init__(self, store: Store) -> None:
        self.con = store.con

    def job(
        self,
        job_id: str,
        user: str,
        start: float,
        end: float | None,
        *,
        status: str = "failed",
        gpus: float = 8,
        nodes: Sequence[str] = ("gpu-a-01",),
        attempts: int = 1,
        checkpoint: float | None = None,
    ) -> None:
        self.con.execute(
            'INSERT INTO jobs (job_id, "user", num_gpus, submitted_at, started_at, ended_at, '
            "status, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                job_id,
                user,
                gpus,
                at(start),
                at(start),
                at(end) if end is not None else None,
                status,
                attempts,
            ],
        )
        for attempt in range(1, attempts + 1):
            self.con.execute(
                "INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status, "
                "last_checkpoint_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    job_id,
                    attempt,
                    ",".join(nodes),
                    at(start),
                    at(end) if end is not None else None,
                    status,
                    at(checkpoint) if checkpoint is not None else None,
                ],
            )
            for node in nodes:
                self.con.execute(
                    "INSERT INTO attempt_nodes VALUES (?, ?, ?)", [job_id, attempt, node]
                )

    def diagnose(
        self,
        job_id: str,
        category: str,
        signature: str,
        summary: str,
        *,
        owner: str,
        end: float,
        evidence: str = "",
        node: str | None = None,
        confidence: float = 0.9,
    ) -> None:
        self.con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, confidence, signature, "
            "summary, evidence, node_id, diagnosed_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                job_id,
                category,
                owner,
                confidence,
                signature,
                summary,
                json.dumps([{"file": "rank0.log", "line": 7, "text": evidence}])
                if evidence
                else "[]",
                node,
                at(end) + timedelta(minutes=1),
            ],
        )

    def pod_event(self, job_id: str, namespace: str, pod: str, hours: float) -> None:
        self.con.execute(
            "INSERT INTO events (event_id, ts, source, kind, object, reason, message, raw) "
            "VALUES (?, ?, 'k8s', 'k8s_event', ?, 'Scheduled', 'assigned', ?)",
            [
                f"{job_id}-{pod}",
                at(hours),
                f"pod/{namespace}/{pod}",
                json.dumps({"job_id": job_id, "attempt": 1}),
            ],
        )


def build(store: Store) -> None:
    """Write the scenario of the module docstring."""
    fleet = TicketFleet(store)
    fleet.job("train-llama-0042", "alice", 0, 1)
    fleet.diagnose(
        "train-llama-0042",
        "gpu_oom",
        "cuda.out_of_memory",
        "CUDA out of memory (tried to allocate 3.82 GiB, 2.11 GiB free)",
        owner="user",
        end=1,
        evidence="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.82 GiB",
    )
    fleet.job("train-llama-0043", "alice", 2, 5, status="succeeded")
    fleet.job("ft-bert-0007", "bob", 3, 3.5, gpus=1, nodes=("gpu-a-02",))
    fleet.diagnose(
        "ft-bert-0007",
        "code_error",
        "python.exception",
        "KeyError raised in the job's code: 'labels'",
        owner="user",
        end=3.5,
        evidence="KeyError: 'labels'",
    )
    users = ["dave", "erin", "frank", "grace", "dave", "erin"]
    for n, user in enumerate(users, start=1):
        end = 10 + n * 0.15
        fleet.job(f"etl-{n:03d}", user, 9, end, gpus=4, nodes=(f"gpu-c-0{n}",))
        fleet.diagnose(
            f"etl-{n:03d}",
            "storage_io",
            "storage.stale_handle",
            "stale file handle on /mnt/shared",
            owner="platform",
            end=end,
            evidence="OSError: [Errno 116] Stale file handle: '/mnt/shared/ckpt'",
        )
    for n, (start, end) in enumerate([(20, 22), (40, 41), (60, 61.5)], start=1):
        job = f"pretrain-big-r{n}" if n < 3 else "pretrain-big"
        fleet.job(
            job,
            f"heidi{n}" if n < 3 else "heidi",
            start,
            end,
            gpus=64,
            nodes=("gpu-b-13", "gpu-b-14"),
            attempts=2 if n == 3 else 1,
            checkpoint=end - 0.5,
        )
        fleet.diagnose(
            job,
            "gpu_hardware",
            "kernel.xid_79",
            "GPU has fallen off the bus (Xid 79)",
            owner="hardware",
            end=end,
            node="gpu-b-13",
            evidence="NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus",
        )
    store.con.execute(
        "INSERT INTO nodes (node_id, pool, gpus, cordoned, cordon_reason) VALUES "
        "('gpu-b-13', 'h100', 8, TRUE, 'Xid 79 three times'), ('gpu-a-01', 'h100', 8, FALSE, NULL)"
    )
    store.con.execute(
        "INSERT INTO actions VALUES ('a1', 'restart_from_checkpoint', 'pretrain-big', '[]', "
        "'auto', 'done', ?, ?, 'attempt 2 from step 12000')",
        [at(61.6), at(61.7)],
    )
    fleet.job("sweep-0003", "carol", 70, None, status="pending", nodes=())
    fleet.job("kube:ml/job/resnet-ddp", "ivan", 30, 31, gpus=16, nodes=("gpu-a-05",))
    fleet.diagnose(
        "kube:ml/job/resnet-ddp",
        "nccl_comm",
        "nccl.watchdog_timeout",
        "an NCCL collective (ALLREDUCE) timed out",
        owner="platform",
        end=31,
    )
    for rank in range(2):
        fleet.pod_event("kube:ml/job/resnet-ddp", "ml", f"resnet-ddp-worker-{rank}", 30)
    fleet.job("sim-abc12345-000096", "judy", 12, 13, gpus=1, nodes=("gpu-a-03",))
    fleet.diagnose(
        "sim-abc12345-000096",
        "data_error",
        "python.file_not_found",
        "input data or a checkpoint is missing",
        owner="user",
        end=13,
    )
    fleet.pod_event("sim-abc12345-000096", "research", "research-eval-96-worker-0", 12)
    for n in range(90, 100):
        if n != 96:
            fleet.job(f"sim-abc12345-0000{n}", "judy", 1, 2, status="succeeded", gpus=1)
