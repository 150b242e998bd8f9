"""The web tests' stores: a small simulated fleet with hostile text planted, and a control store
with approval-mode actions waiting for a person."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import ControlStore
from fleetmedic.sim.config import SimConfig
from fleetmedic.store import Store
from fleetmedic.workflows.simulate import run_simulation

VIEWER = "viewer-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
TOKENS = f"vera:viewer:{VIEWER},otto:operator:{OPERATOR},ada:admin:{ADMIN}"

EVIL_JOB = "<script>alert('job')</script>"
EVIL_SUMMARY = "<script>alert('diagnosis')</script> CUDA out of memory"
EVIL_EVIDENCE = "<img src=x onerror=alert('evidence')> CUDA out of memory"
EVIL_RESULT = "<script>alert('result')</script>"
EVIL_TICKET = "<b onmouseover=alert('ticket')>help</b>"
PAYLOADS = (EVIL_JOB, EVIL_SUMMARY, EVIL_EVIDENCE, EVIL_RESULT, EVIL_TICKET)


def build_store(db: Path) -> Path:
    """A 128-GPU fleet simulated for 3 days (a few seconds), plus one hostile job."""
    run_simulation(SimConfig(gpus=128, days=3, seed=5, heal="auto"), db)
    evidence = json.dumps([{"file": "rank0.log", "line": 7, "text": EVIL_EVIDENCE}])
    with Store(db) as store:
        con = store.con
        con.execute(
            'INSERT INTO jobs (job_id, source, "user", team, num_gpus, submitted_at, started_at, '
            "ended_at, status, attempts) VALUES (?, 'test', ?, 'evil', 8, "
            "'2024-06-05 10:00', '2024-06-05 10:05', '2024-06-05 12:00', 'failed', 1)",
            [EVIL_JOB, EVIL_JOB],
        )
        con.execute(
            "INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status, reason) "
            "VALUES (?, 1, 'gpu-h100-0001', '2024-06-05 10:05', '2024-06-05 12:00', 'failed', ?)",
            [EVIL_JOB, EVIL_JOB],
        )
        con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, confidence, signature, "
            "summary, evidence, action_kind, retryable, secondary, diagnosed_at) VALUES "
            "(?, 1, 'gpu_oom', 'user', 0.9, 'cuda.out_of_memory', ?, ?, 'reduce_memory', FALSE, "
            "'[]', '2024-06-05 12:01')",
            [EVIL_JOB, EVIL_SUMMARY, evidence],
        )
        con.execute(
            'INSERT INTO tickets (ticket_id, "user", created_at, text, job_ids, status, title) '
            "VALUES ('T-1', 'mallory', '2024-06-05 13:00', 'my job died', json_array(?), "
            "'open', ?)",
            [EVIL_JOB, EVIL_TICKET],
        )
    return db


def build_control(path: Path) -> dict[str, str]:
    """Three approval-mode actions waiting, one with a hostile note, and one done auto action."""
    now = datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
    ids: dict[str, str] = {}
    with ControlStore(path) as control:
        audit = AuditLog(control)
        for n, (kind, target) in enumerate(
            (
                ("cordon_and_drain", "gpu-h100-0009"),
                ("retry_from_checkpoint", EVIL_JOB),
                ("requeue_excluding_node", "sim-a9673277-001082"),
            )
        ):
            cause = f"{target}#1:gpu_hardware"
            note = EVIL_RESULT if target == EVIL_JOB else None
            action, _ = audit.propose(
                kind, target, [cause], "approval", now + timedelta(minutes=n), note
            )
            ids[kind] = action.action_id
        done, _ = audit.propose("notify", EVIL_JOB, [f"{EVIL_JOB}#1:gpu_oom"], "auto", now)
        audit.transition(done.action_id, "executing", now)
        audit.transition(done.action_id, "done", now, EVIL_RESULT)
        ids["notify"] = done.action_id
    return ids
