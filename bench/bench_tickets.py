"""Ticket triage speed against a big history, next to a naive Python-scan reference.

Usage:
    python bench/bench_tickets.py [--jobs 1000000] [--tickets 100000] [--queries 200]
                                  [--naive-queries 10] [--dir /tmp/bench-tickets]

Builds (deterministically) a store of ``--jobs`` jobs in DuckDB SQL: users, attempts, nodes, pod
events and a diagnosis for every failed job (15%), then writes ``--tickets`` past tickets as a JSON
lines export (ids named in the text, pods, typos, pasted errors, no id at all) and times, in one run:

- bulk import: ``fleetmedic ticket import FILE --format jsonl`` (the CLI, a fresh process), and the
  reference: the same rows inserted one by one (``executemany``) on a sample, extrapolated;
- triage latency p50/p95/p99 of ``--queries`` new tickets, in one warm process (what a server or
  the eval loop sees), plus one cold ``fleetmedic ticket triage`` process;
- the reference triage: every past ticket and job id loaded into Python per ticket, Jaccard
  similarity over token sets and ``difflib`` for typo'd ids, on ``--naive-queries`` tickets.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetmedic.store import Store
from fleetmedic.tickets.extract import extract
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.text import tokenize
from fleetmedic.tickets.triage import Settings, triage

T0 = datetime(2024, 1, 1)
DAYS = 180
CATEGORIES = [
    ("code_error", "user", "python.exception", "KeyError: 'labels' in train.py"),
    ("gpu_oom", "user", "cuda.out_of_memory", "CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("storage_io", "platform", "python.os_errno_storage", "OSError: [Errno 116] Stale file handle"),
    ("nccl_comm", "platform", "nccl.watchdog_timeout", "Watchdog caught collective timeout"),
    ("gpu_hardware", "hardware", "kernel.xid", "NVRM: Xid 79, GPU has fallen off the bus"),
    ("host_oom", "user", "k8s.oomkilled", "OOMKilled exit code 137"),
    ("data_error", "user", "python.file_not_found", "FileNotFoundError: /data/shard-0042"),
    ("image_pull", "platform", "k8s.image_not_found", "ImagePullBackOff manifest unknown"),
]

_JOBS_SQL = """
CREATE TABLE jobs_gen AS
SELECT i, 'job-' || lpad(CAST(i AS VARCHAR), 7, '0') AS job_id,
       'u' || lpad(CAST(hash(i) % 2000 AS VARCHAR), 4, '0') AS "user",
       TIMESTAMP '2024-01-01' + to_seconds(CAST(i AS BIGINT) * {span} // {n}) AS submitted_at,
       1 + hash(i * 7) % 8 AS gpus,
       CASE WHEN hash(i * 13) % 100 < 15 THEN 'failed'
            WHEN hash(i * 13) % 100 < 18 THEN 'cancelled' ELSE 'succeeded' END AS status,
       CAST(hash(i * 17) % {categories} AS INTEGER) AS cat,
       'gpu-' || lpad(CAST(hash(i * 19) % 2000 AS VARCHAR), 4, '0') AS node
FROM range({n}) t(i);
INSERT INTO jobs (job_id, "user", team, num_gpus, submitted_at, started_at, ended_at, status)
SELECT job_id, "user", 'team-' || substr("user", 2, 2), gpus, submitted_at, submitted_at,
       submitted_at + to_seconds(600 + hash(i * 23) % 36000), status FROM jobs_gen;
INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status)
SELECT job_id, 1, node, submitted_at, submitted_at + to_seconds(600 + hash(i * 23) % 36000),
       status FROM jobs_gen;
INSERT INTO attempt_nodes SELECT job_id, 1, node FROM jobs_gen;
INSERT INTO events (event_id, ts, source, kind, object, reason, message, raw)
SELECT 'e' || i, submitted_at, 'k8s', 'k8s_event',
       'pod/ns' || (i % 50) || '/train-' || i || '-worker-0', 'Scheduled', 'assigned',
       json_object('job_id', job_id, 'attempt', 1) FROM jobs_gen;
"""


def build_store(path: Path, jobs: int) -> float:
    started = time.perf_counter()
    with Store(path) as store:
        con = store.con
        con.execute(_JOBS_SQL.format(n=jobs, span=DAYS * 86400, categories=len(CATEGORIES)))
        con.execute(
            "CREATE TEMP TABLE cats AS SELECT * FROM (VALUES "
            + ", ".join(
                f"({i}, '{c}', '{o}', '{s}', '{e.replace(chr(39), '')}')"
                for i, (c, o, s, e) in enumerate(CATEGORIES)
            )
            + ") v(cat, category, owner, sig, ev)"
        )
        con.execute(
            "INSERT INTO diagnoses (job_id, attempt, category, owner, confidence, signature, "
            "summary, evidence, node_id, diagnosed_at) "
            "SELECT j.job_id, 1, c.category, c.owner, 0.9, c.sig, c.ev, "
            "json_array(json_object('file', 'rank0.log', 'line', 1, 'text', c.ev)), "
            "CASE WHEN c.category = 'gpu_hardware' THEN j.node END, j.submitted_at "
            "FROM jobs_gen j JOIN cats c USING (cat) WHERE j.status = 'failed'"
        )
        con.execute("DROP TABLE jobs_gen")
    return time.perf_counter() - started


def _failed_sample(path: Path, n: int, seed: int) -> list[tuple[str, str, str, datetime]]:
    with Store(path, read_only=True) as store:
        rows = store.con.execute(
            'SELECT j.job_id, j."user", d.category, j.ended_at FROM jobs j '
            f"JOIN diagnoses d USING (job_id) USING SAMPLE reservoir({int(n)} ROWS) "
            f"REPEATABLE ({int(seed)})"
        ).fetchall()
    return [(str(a), str(b), str(c), d) for a, b, c, d in rows]


def ticket_text(rng: random.Random, job: str, category: str) -> str:
    """One ticket as users write them: an id, a pod, a typo, or only words and a pasted error."""
    evidence = next(e for c, _, _, e in CATEGORIES if c == category)
    number = int(job.split("-")[1])
    kind = rng.random()
    if kind < 0.6:
        head = f"Hi, my job {job} failed overnight, can you check?"
    elif kind < 0.7:
        head = f"kubectl logs train-{number}-worker-0 shows it died"
    elif kind < 0.8:
        head = f"job id: {job[:-2] + job[-1]} crashed again (sorry if the id is off)"
    else:
        head = "my training run died this morning, no idea why"
    tail = rng.choice(["", f"\nlast lines:\n{evidence}", f" The error: {evidence}."])
    return head + tail


def write_export(path: Path, sample: list[tuple[str, str, str, datetime]], seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for n, (job, user, category, ended) in enumerate(sample):
            created = ended + timedelta(hours=rng.uniform(0.2, 12))
            row = {
                "id": f"OPS-{n}",
                "title": rng.choice(["job failed", "help!", f"{category} issue", "question"]),
                "text": ticket_text(rng, job, category),
                "user": user,
                "created_at": created.isoformat() + "Z",
                "first_answer_at": (created + timedelta(hours=rng.expovariate(0.5))).isoformat()
                + "Z",
            }
            out.write(json.dumps(row) + "\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _queries(path: Path, n: int, seed: int) -> list[TicketIn]:
    rng = random.Random(seed)
    out = []
    for job, user, category, ended in _failed_sample(path, n, seed):
        created = (ended + timedelta(hours=1)).replace(tzinfo=UTC)
        text = ticket_text(rng, job, category)
        out.append(TicketIn(ticket_id=f"Q-{job}", text=text, user=user, created_at=created))
    return out


def time_triage(path: Path, queries: list[TicketIn]) -> list[float]:
    settings = Settings()
    with Store(path, read_only=True) as store:
        triage(store.con, queries[0], settings)  # warm: compile the signature catalog once
        times = []
        for ticket in queries:
            started = time.perf_counter()
            triage(store.con, ticket, settings)
            times.append(time.perf_counter() - started)
    return times


def naive_triage(path: Path, queries: list[TicketIn]) -> list[float]:
    """The reference: load everything into Python per ticket and scan it."""
    times = []
    with Store(path, read_only=True) as store:
        for ticket in queries:
            started = time.perf_counter()
            past = store.con.execute("SELECT ticket_id, text FROM tickets").fetchall()
            ids = {row[0] for row in store.con.execute("SELECT job_id FROM jobs").fetchall()}
            query = set(tokenize(ticket.text))
            scored = sorted(
                (
                    (len(query & set(tokenize(text))) / (len(query | set(tokenize(text))) or 1), t)
                    for t, text in past
                ),
                reverse=True,
            )[:5]
            found = extract(ticket.text, ticket.created_at)
            for candidate in found.job_ids:
                if candidate not in ids:
                    difflib.get_close_matches(candidate, ids, n=1, cutoff=0.9)
            times.append(time.perf_counter() - started)
            del scored
    return times


def naive_import_rate(path: Path, export: Path, rows: int) -> float:
    """Tickets per second when each ticket and each of its terms is one INSERT."""
    lines = export.read_text(encoding="utf-8").splitlines()[:rows]
    with Store(path) as store:
        con = store.con
        started = time.perf_counter()
        for line in lines:
            obj = json.loads(line)
            con.execute(
                'INSERT INTO tickets (ticket_id, created_at, text, "user") VALUES (?, ?, ?, ?)',
                ["N-" + obj["id"], obj["created_at"].rstrip("Z"), obj["text"], obj["user"]],
            )
            terms: dict[str, int] = {}
            for token in tokenize(obj["text"]):
                terms[token] = terms.get(token, 0) + 1
            con.executemany(
                "INSERT INTO ticket_terms VALUES (?, ?, ?)",
                [["N-" + obj["id"], t, n] for t, n in terms.items()],
            )
        elapsed = time.perf_counter() - started
        con.execute("DELETE FROM tickets WHERE starts_with(ticket_id, 'N-')")
        con.execute("DELETE FROM ticket_terms WHERE starts_with(ticket_id, 'N-')")
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--naive-queries", type=int, default=10)
    parser.add_argument("--naive-import-rows", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-tickets"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    db, export = args.dir / "fleet.duckdb", args.dir / "tickets.jsonl"
    db.unlink(missing_ok=True)
    fleetmedic = str(Path(sys.executable).with_name("fleetmedic"))
    results: dict[str, object] = {"jobs": args.jobs, "tickets": args.tickets}
    results["build_store_s"] = round(build_store(db, args.jobs), 1)
    write_export(export, _failed_sample(db, args.tickets, args.seed), args.seed)

    started = time.perf_counter()
    subprocess.run(
        [fleetmedic, "ticket", "import", str(export), "--format", "jsonl", "--db", str(db)],
        check=True,
    )
    results["import_s"] = round(time.perf_counter() - started, 1)
    results["import_per_s"] = round(args.tickets / (time.perf_counter() - started))
    results["naive_import_per_s"] = round(naive_import_rate(db, export, args.naive_import_rows))

    queries = _queries(db, args.queries, args.seed + 1)
    times = time_triage(db, queries)
    results["triage_ms"] = {
        q: round(percentile(times, p) * 1000, 1)
        for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    } | {"mean": round(statistics.mean(times) * 1000, 1)}
    started = time.perf_counter()
    subprocess.run(
        [
            fleetmedic,
            "ticket",
            "triage",
            queries[0].text,
            "--db",
            str(db),
            "--format",
            "json",
            "--user",
            queries[0].user or "",
            "--at",
            queries[0].created_at.isoformat(),
        ],
        check=True,
        capture_output=True,
    )
    results["triage_cold_cli_s"] = round(time.perf_counter() - started, 2)
    naive = naive_triage(db, queries[: args.naive_queries])
    results["naive_triage_ms"] = {
        "p50": round(percentile(naive, 0.5) * 1000, 1),
        "max": round(max(naive) * 1000, 1),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
