"""Benchmark the healing controller behind the event pipeline, on one core (docs/bench-heal.md).

Not a test. Generates a seeded stream of heal events shaped like a large fleet's failures (mostly
user errors and platform notices that policies only propose in dry-run, some retries, requeues and
cordons in ``auto`` mode, ~10% resent duplicates, some late attempts, a few junk lines), then
replays it through :class:`fleetmedic.heal.pipeline.Pipeline` in a child process per variant, each
pinned to CPU 0 so every variant gets the same single core and its own peak RSS:

* ``sqlite`` — the control store as shipped: SQLite (WAL, synchronous=FULL), group commit per batch;
* ``sqlite-each`` — the reference: the same, but every audit write commits on its own;
* ``sqlite-normal`` — a diagnosis, not an option: ``synchronous=NORMAL`` (no fsync per commit, so
  not durable across a power cut), to show what the write-ahead fsyncs cost;
* ``duckdb`` / ``duckdb-each`` — the audit on DuckDB instead (an adapter in this file only), to show
  why the control store is SQLite.

Each runs paced (events offered at a fixed rate; latency is counted from each event's *scheduled*
arrival, so a stall cannot hide behind a slower producer) and/or flat out (offered as fast as the
pipeline takes them; latency there is mostly time in the full queue).

Usage::

    .venv/bin/python bench/bench_heal.py [--events 100000] [--rate 2000] [--nodes 4096]
        [--seed 7] [--reference-events 20000] [--duckdb-events 5000] [--repeat 3]
        [--dir /tmp/fleetmedic-bench-heal]
        [--runs sqlite:paced:full,sqlite:flat:full,sqlite-each:paced:ref,...]

The references replay the first ``--reference-events`` (SQLite) or ``--duckdb-events`` lines of
the same stream (at their speed the whole stream would take many minutes), each beside the shipped
variant on the same prefix. The full-stream runs repeat ``--repeat`` times, because tail latency on
a shared machine moves with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller
from fleetmedic.heal.events import Incoming, Malformed, parse_event, read_events, read_lines
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.pipeline import Pipeline
from fleetmedic.heal.policy import PolicySet, load_policies
from fleetmedic.heal.state import _MIGRATIONS, ControlStore, Switches
from fleetmedic.model.executor import RecordingExecutor
from fleetmedic.model.records import ActionRef, Diagnosis, Evidence, Job
from fleetmedic.model.taxonomy import category

DEFAULT_DIR = Path("/tmp/fleetmedic-bench-heal")
AUTO = ("requeue-off-faulty-node", "retry-transient-platform-fault", "cordon-repeat-hardware-node")
"""Default policies switched to ``auto`` for the benchmark (the rest stay dry-run)."""
MIX = (
    # (weight, categories): user errors dominate, as in published fleet studies
    (0.60, ("gpu_oom", "code_error", "dependency_error", "data_error", "host_oom", "timeout")),
    (0.04, ("device_assert", "native_crash", "numerical_divergence", "cancelled")),
    (0.13, ("image_pull", "scheduling", "shm_exhausted")),
    (0.07, ("preemption", "unknown")),
    (0.12, ("nccl_comm", "rendezvous", "storage_io", "node_pressure_eviction", "hang")),
    (0.04, ("gpu_hardware", "node_failure")),
)
RESEND = 0.10  # an event delivered again within the last ~2,000
NEXT_ATTEMPT = 0.25  # a failed job retried and failed again, some events later
LATE = 0.2  # of those next attempts, the share whose event arrives before the earlier one's
JUNK = 0.001
LEMONS = 64  # nodes that take half the hardware failures, so some nodes fail repeatedly
VARIANTS = {  # name: (audit backend, group commit, SQLite synchronous)
    "sqlite": ("sqlite", True, "FULL"),
    "sqlite-each": ("sqlite", False, "FULL"),
    "sqlite-normal": ("sqlite", True, "NORMAL"),
    "duckdb": ("duckdb", True, None),
    "duckdb-each": ("duckdb", False, None),
}
SIZES = ("full", "ref", "duck")
RUNS = (  # variant:mode:size, size full (--events), ref (--reference-events), duck (--duckdb-events)
    "sqlite:paced:full",
    "sqlite:flat:full",
    "sqlite:paced:ref",  # the shipped variant again on each reference's prefix, like for like
    "sqlite-each:paced:ref",
    "sqlite-normal:paced:ref",
    "sqlite:flat:ref",
    "sqlite-each:flat:ref",
    "sqlite-normal:flat:ref",
    "sqlite:flat:duck",
    "duckdb:flat:duck",  # paced would only show its queue growing: it cannot keep up
    "duckdb-each:flat:duck",
)


# the stream ----------------------------------------------------------------------------------
def _diagnosis(rng: random.Random, cat: str, job: str, attempt: int, node: str) -> Diagnosis:
    entry = category(cat)
    files = ("rank0.log", "rank3.log", "dmesg.txt", "events.json")
    evidence = tuple(
        Evidence(
            file=f"/logs/{job}/{attempt}/{rng.choice(files)}",
            line=rng.randint(1, 90_000),
            text=f"[E{rng.randint(0, 10**9):09d}] {cat} {entry.meaning[:120]} ({rng.random():.6f})",
        )
        for _ in range(rng.randint(1, 3))
    )
    return Diagnosis(
        input=f"/logs/{job}/{attempt}",
        category=cat,
        owner=entry.owner,
        confidence=round(rng.uniform(0.6, 0.99), 2),
        summary=f"{cat}: {entry.meaning}",
        evidence=evidence,
        action=ActionRef(kind=entry.action, advice=entry.advice),
        retryable=entry.retryable,
        signature=f"{cat}.sig{rng.randint(0, 9)}",
        details={"node": node, "files": str(len(evidence))},
        job_id=job,
        attempt=attempt,
    )


def _category(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for weight, cats in MIX:
        acc += weight
        if x < acc:
            return rng.choice(cats)
    return MIX[0][1][0]


def _line(rng: random.Random, n: int, job: str, attempt: int, cat: str, nodes: int) -> str:
    hardware = category(cat).owner == "hardware"
    pick = rng.randrange(LEMONS) if hardware and rng.random() < 0.5 else rng.randrange(nodes)
    node = f"node-{pick:04d}"
    body: dict[str, Any] = {
        "diagnosis": _diagnosis(rng, cat, job, attempt, node).model_dump(mode="json"),
        "job": Job(job_id=job, status="failed", attempts=attempt, num_gpus=8).model_dump(
            mode="json", exclude_none=True
        ),
        "node": node,
        "ts": f"2026-01-01T00:00:{n % 60:02d}Z",
    }
    if n % 2 == 0:  # half the sources give event ids; the rest are de-duplicated by content
        body["event_id"] = f"evt-{n}"
    return json.dumps(body, separators=(",", ":"))


def generate(path: Path, events: int, nodes: int, seed: int) -> dict[str, int]:
    """Write the stream; every draw comes from one seeded RNG, so it is the same every time."""
    rng = random.Random(seed)
    lines: list[str] = []
    later: dict[int, list[str]] = {}  # position -> next attempts due there
    counts = {"resent": 0, "late": 0, "next_attempt": 0, "junk": 0}
    n = 0
    while len(lines) < events:
        lines.extend(later.pop(len(lines), []))
        roll = rng.random()
        if roll < JUNK:
            lines.append(rng.choice(['{"diagnosis": {"category": ', "\x00\xff junk", "[]"]))
            counts["junk"] += 1
        elif roll < JUNK + RESEND and lines:
            lines.append(lines[max(0, len(lines) - rng.randint(1, 2000))])
            counts["resent"] += 1
        else:
            n += 1
            cat, job = _category(rng), f"job-{n:07d}"
            first = _line(rng, n, job, 1, cat, nodes)
            if rng.random() < NEXT_ATTEMPT:
                counts["next_attempt"] += 1
                again = _line(rng, n + 10**7, job, 2, _category(rng), nodes)
                if rng.random() < LATE:  # attempt 2's event overtakes attempt 1's
                    counts["late"] += 1
                    first, again = again, first
                later.setdefault(len(lines) + rng.randint(1, 500), []).append(again)
            lines.append(first)
    path.write_text("\n".join(lines[:events]) + "\n", "utf-8")
    return counts


# the audit on DuckDB (reference only) ----------------------------------------------------------
class DuckCon:
    """Just enough of ``sqlite3.Connection`` for :class:`AuditLog` and :class:`Switches`."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self.db = duckdb.connect(str(path))
        self.in_transaction = False
        for statement in _MIGRATIONS[0].split(";"):
            if statement.strip():
                self.db.execute(statement)

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        verb = sql.split(None, 1)[0].upper()
        if verb == "BEGIN":
            self.db.execute("BEGIN TRANSACTION")
            self.in_transaction = True
            return self
        if verb in ("COMMIT", "ROLLBACK"):
            self.db.execute(verb)
            self.in_transaction = False
            return self
        if verb == "PRAGMA":  # SQLite's durability knob; DuckDB always syncs its WAL on commit
            return self
        return self.db.execute(sql, list(params))


class DuckControl:
    def __init__(self, path: Path) -> None:
        self.con = DuckCon(path)


# one variant, in a child process -------------------------------------------------------------
def bench_policies() -> PolicySet:
    """The packaged defaults with :data:`AUTO` switched to auto, under a guard loose enough that
    auto actions really run (the executor path is the expensive one), yet cordons still meet the
    fleet fractions and cooldowns."""
    base = load_policies()
    policies = tuple(
        p.model_copy(update={"mode": "auto"}) if p.name in AUTO else p for p in base.policies
    )
    guard = base.guard.model_copy(
        update={
            "default_rate_per_hour": 1e7,
            "rate_per_kind": {},
            "burst": 10_000,
            "storm_actions": 10**7,
        }
    )
    return base.model_copy(update={"policies": policies, "guard": guard})


def _clock() -> datetime:
    return datetime.now(UTC)


def _controller(backend: str, sync: str | None, path: Path, nodes: int) -> Controller:
    if backend == "duckdb":
        control = cast(ControlStore, DuckControl(path))
    else:
        control = ControlStore(path)
        control.con.execute(f"PRAGMA synchronous={sync}")
    fleet = Fleet({f"node-{i:04d}": f"pool-{i % 16}" for i in range(nodes)})
    policies = bench_policies()
    guard = Guard(policies.guard, fleet, _clock, Switches(control))
    return Controller(policies, guard, AuditLog(control), RecordingExecutor(), clock=_clock)


async def paced(
    path: Path, rate: float, limit: int, clock: dict[str, float]
) -> AsyncIterator[Incoming | Malformed]:
    """Lines offered at ``rate`` per second; each event is parsed once it is due and stamped with
    its scheduled time, so parsing and any stall of the loop count in its latency."""
    start = clock["start"] = time.perf_counter() + 0.05
    with path.open("rb") as stream:
        async for number, raw in read_lines(stream):
            if number > limit:
                return
            due = start + (number - 1) / rate
            wait = due - time.perf_counter()
            if wait > 0.001:
                await asyncio.sleep(wait)
            if raw is None or not raw.strip():
                continue
            item = parse_event(raw, number, path.name)
            yield replace(item, arrived=due) if isinstance(item, Incoming) else item


async def flat(
    path: Path, limit: int, clock: dict[str, float]
) -> AsyncIterator[Incoming | Malformed]:
    clock["start"] = time.perf_counter()
    with path.open("rb") as stream:
        async for item in read_events(stream, path.name):
            if item.line > limit:
                return
            yield item


def child(args: argparse.Namespace) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    backend, group_commit, sync = VARIANTS[args.variant]
    store = args.dir / f"{args.variant}-{args.mode}.{backend}"
    for old in args.dir.glob(f"{store.name}*"):
        old.unlink()
    controller = _controller(backend, sync, store, args.nodes)
    pipeline = Pipeline(controller, group_commit=group_commit, keep_latencies=True)
    clock: dict[str, float] = {}
    if args.mode == "paced":
        source = paced(args.stream, args.rate, args.events, clock)
    else:
        source = flat(args.stream, args.events, clock)
    load = os.getloadavg()[0]
    cpu = time.process_time()
    summary = asyncio.run(pipeline.run(source))
    cpu = time.process_time() - cpu
    lines = summary.received + summary.malformed
    seconds = time.perf_counter() - clock["start"]  # first arrival to the last decision
    lat = sorted(pipeline.latencies)
    durable = sorted(pipeline.commit_latencies)
    con = controller.audit.con
    rows = con.execute("SELECT count(*) FROM actions").fetchone()[0]
    return {
        "variant": args.variant,
        "mode": args.mode,
        "events": args.events,
        "lines": lines,
        "handled": summary.handled,
        "duplicates": summary.duplicates,
        "malformed": summary.malformed,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events_per_s": lines / seconds,
        "p50_ms": _pct(lat, 50),
        "p95_ms": _pct(lat, 95),
        "p99_ms": _pct(lat, 99),
        "max_ms": lat[-1] * 1000,
        "p99_commit_ms": _pct(durable, 99),
        "batches": pipeline.batches,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "audit_rows": rows,
        "actions": summary.actions,
        "executor_calls": len(cast(RecordingExecutor, controller.executor).calls),
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def _pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return float("nan")
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1] * 1000


# the parent ----------------------------------------------------------------------------------
def _run_child(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """Run this file in a fresh process: its peak RSS is its own, not the parent's."""
    cmd = [sys.executable, __file__, "--rate", str(args.rate), "--nodes", str(args.nodes)]
    cmd += ["--seed", str(args.seed), "--dir", str(args.dir), "--stream", str(args.stream)]
    out = subprocess.run([*cmd, *extra], check=True, capture_output=True, text=True)
    return cast(dict[str, Any], json.loads(out.stdout.strip().splitlines()[-1]))


def _table(results: list[dict[str, Any]], rate: float) -> str:
    head = (
        "| variant | mode | events | events/s | p50 ms | p95 ms | p99 ms | max ms | "
        "p99 to commit ms | batches | audit rows | peak RSS MB | CPU s | load |"
    )
    lines = [head, "| " + " | ".join(["---"] * 2 + ["---:"] * 12) + " |"]
    for r in results:
        mode = f"paced {rate:g}/s" if r["mode"] == "paced" else "flat out"
        lines.append(
            f"| {r['variant']} | {mode} | {r['events']:,} | {r['events_per_s']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | "
            f"{r['p99_commit_ms']:.1f} | {r['batches']:,} | {r['audit_rows']:,} | "
            f"{r['rss_mb']:.0f} | {r['cpu_seconds']:.1f} | "
            f"{r['load_before']:.1f}–{r['load_after']:.1f} |"
        )
    return "\n".join(lines)


def _run_spec(run: str) -> tuple[str, str, str]:
    """``variant[:mode[:size]]``, mode ``flat`` and size ``full`` when left out."""
    parts = run.split(":")
    mode = parts[1] if len(parts) > 1 else "flat"
    size = parts[2] if len(parts) > 2 else "full"
    if parts[0] not in VARIANTS or mode not in ("paced", "flat") or size not in SIZES:
        raise SystemExit(f"bad --runs entry {run!r}")
    return parts[0], mode, size


def parent(args: argparse.Namespace) -> None:
    args.dir.mkdir(parents=True, exist_ok=True)
    args.stream = args.dir / f"stream-{args.events}-{args.nodes}-{args.seed}.jsonl"
    started = time.perf_counter()
    counts = _run_child(args, "--generate", "--events", str(args.events))
    print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)
    size = args.stream.stat().st_size
    print(
        f"stream: {args.events:,} lines, {size / 1e6:.0f} MB, {args.nodes:,} nodes, seed "
        f"{args.seed}; {counts}",
        flush=True,
    )
    results = []
    sizes = {"full": args.events, "ref": args.reference_events, "duck": args.duckdb_events}
    for run in args.runs.split(","):
        variant, mode, size = _run_spec(run)
        events = sizes[size]
        for _ in range(args.repeat if size == "full" else 1):
            result = _run_child(
                args,
                *("--child", "--variant", variant, "--mode", mode or "flat"),
                *("--events", str(min(events, args.events))),
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    print()
    print(_table(results, args.rate))
    print(f"\ntarget: sustain {args.rate:g} events/s with p99 < 100 ms on one core")
    full = args.events
    for r in (
        r for r in results if (r["variant"], r["mode"], r["events"]) == ("sqlite", "paced", full)
    ):
        met = r["events_per_s"] >= 0.98 * args.rate and r["p99_ms"] < 100
        print(
            f"  {'MET' if met else 'NOT MET'}: {r['events_per_s']:,.0f} events/s, "
            f"p99 {r['p99_ms']:.1f} ms (load average {r['load_before']:.1f})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reference-events", type=int, default=20_000)
    parser.add_argument("--duckdb-events", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--nodes", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help=f"variant:mode:size triples; variants {', '.join(VARIANTS)}; modes paced, flat; "
        "sizes full, ref, duck",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the sqlite variant")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        print(json.dumps(generate(args.stream, args.events, args.nodes, args.seed)))
    elif args.child:
        print(json.dumps(child(args)))
    else:
        parent(args)


if __name__ == "__main__":
    main()
