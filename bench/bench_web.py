"""Benchmark ``fleetmedic serve`` on a 1M-job store: API latency cold and warm, under load.

Not a test. Reuses (or generates) the 1M-job store of bench/bench_kpi.py, starts the server in a
child process on 127.0.0.1, and drives it with an asyncio httpx client at a fixed concurrency:

1. **cold**: the first ``GET /api/v1/overview`` of a fresh server (warm-up off), which runs the
   KPI suite for the period and the previous one; then the first request of the other KPI pages;
2. **warm**: N requests per endpoint at concurrency C against the cached answers and the
   bounded store queries (job list and detail, node map, actions, metrics);
3. **reference, same run**: the same overview on a server with the cache off (every request
   recomputes), and the ``fleetmedic kpi --format json`` command on the same store.

Only loopback is contacted; every loop is bounded in count and time.

Usage::

    .venv/bin/python bench/bench_web.py [--db /tmp/fleetmedic-bench.duckdb] [--requests 2000]
        [--concurrency 16] [--store-requests 400] [--reference-requests 4]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
TOKEN = "bench-viewer-token-0123456789"
TOKENS = f"bench:admin:{TOKEN}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = 600.0


def _bench_kpi() -> Any:
    spec = importlib.util.spec_from_file_location("bench_kpi", HERE / "bench_kpi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_store(db: Path, jobs: int) -> None:
    """Generate the store as bench_kpi.py does, or bring an older one to the current schema."""
    from fleetmedic.store import SCHEMA_VERSION, Store

    if not db.exists():
        made = _bench_kpi().generate(db, jobs, 5, 20_000_000)
        print(f"generated {made['counts']} in {made['seconds']:.1f} s -> {db}")
        return
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        version = con.execute("SELECT max(version) FROM schema_version").fetchone()
    if version is None or version[0] != SCHEMA_VERSION:
        Store(db).close()  # migrates in place


def make_control(path: Path, actions: int = 2000) -> None:
    """A control store with an audit trail to page through (a third waiting for approval)."""
    from fleetmedic.heal.audit import AuditLog
    from fleetmedic.heal.state import ControlStore

    path.unlink(missing_ok=True)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    with ControlStore(path) as control:
        audit = AuditLog(control)
        with audit.batch():
            for n in range(actions):
                mode = "approval" if n % 3 == 0 else "auto"
                audit.propose(
                    "notify", f"j{n}", [f"j{n}#1:gpu_oom"], mode, start + timedelta(minutes=n)
                )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(db: Path, control: Path, ttl: float) -> Iterator[str]:
    """The app in a child process (one uvicorn worker), cache TTL ``ttl``, warm-up off."""
    port = free_port()
    code = (
        "import sys, uvicorn; from fleetmedic.web import create_app; "
        f"app = create_app({str(db)!r}, {str(control)!r}, {TOKENS!r}, warm=False, "
        f"cache_ttl={ttl}); uvicorn.run(app, host='127.0.0.1', port={port}, "
        "log_level='warning')"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        yield base
    finally:
        child.terminate()
        child.wait(timeout=30)


def timed_get(base: str, path: str) -> float:
    started = time.perf_counter()
    response = httpx.get(base + path, headers=AUTH, timeout=TIMEOUT)
    response.raise_for_status()
    return time.perf_counter() - started


async def load(base: str, path: str, requests: int, concurrency: int) -> dict[str, float]:
    """``requests`` GETs of ``path`` by ``concurrency`` workers; latency percentiles in ms."""
    latencies: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=base, headers=AUTH, limits=limits, timeout=TIMEOUT
    ) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "requests": len(ordered),
        "rps": len(ordered) / wall,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": 1000 * ordered[-1],
    }


def row(name: str, stats: dict[str, float]) -> str:
    return (
        f"{name:<44} {stats['requests']:>6.0f} {stats['rps']:>8.1f} {stats['p50']:>8.1f} "
        f"{stats['p95']:>8.1f} {stats['p99']:>8.1f} {stats['max']:>9.1f}"
    )


HEADER = (
    f"{'endpoint':<44} {'reqs':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
    f"{'max ms':>9}"
)

# Answers served from the cache, then bounded queries that go to the store on every request.
CACHED_PATHS = (
    "/api/v1/overview?period=30d",
    "/api/v1/overview?period=all",
    "/api/v1/failures?period=30d",
    "/api/v1/kpi",
)
STORE_PATHS = (
    "/api/v1/jobs?limit=50",
    "/api/v1/jobs?limit=50&offset=500000&status=failed",
    "/api/v1/jobs/j123456",
    "/api/v1/nodes/map",
    "/api/v1/actions?limit=50&offset=1000",
    "/metrics",
)
COLD_PATHS = (
    "/api/v1/overview?period=30d",
    "/api/v1/overview?period=all",
    "/api/v1/failures?period=30d",
    "/api/v1/kpi",
    "/api/v1/nodes/map",
)


def cli_kpi_seconds(db: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("fleetmedic")),
            "kpi",
            "--db",
            str(db),
            "--format",
            "json",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/fleetmedic-bench.duckdb"))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store-requests", type=int, default=400)
    parser.add_argument("--reference-requests", type=int, default=4)
    args = parser.parse_args()

    ensure_store(args.db, args.jobs)
    control = Path(tempfile.mkdtemp(prefix="fm-bench-web-")) / "heal.sqlite"
    make_control(control)
    print(
        f"store {args.db} ({args.db.stat().st_size / 1e9:.2f} GB), cpus {os.cpu_count()}, "
        f"concurrency {args.concurrency}"
    )

    with server(args.db, control, ttl=300) as base:
        print("\ncold (first request of a fresh server, nothing cached):")
        for path in COLD_PATHS:
            print(f"  {path:<42} {timed_get(base, path):>8.2f} s")
        print(f"\nwarm, cached answers ({args.requests} requests each):\n{HEADER}")
        for concurrency in (1, 4, args.concurrency):
            path = CACHED_PATHS[0]
            stats = asyncio.run(load(base, path, args.requests, concurrency))
            print(row(f"{path} c={concurrency}", stats))
        for path in CACHED_PATHS[1:]:
            stats = asyncio.run(load(base, path, args.requests, args.concurrency))
            print(row(f"{path} c={args.concurrency}", stats))
        n = args.store_requests
        print(f"\nbounded store queries ({n} requests each, c={args.concurrency}):\n{HEADER}")
        for path in STORE_PATHS:
            print(row(path, asyncio.run(load(base, path, n, args.concurrency))))

    n = args.reference_requests
    print(f"\nreference, same store: cache off ({n} requests, concurrency 2)")
    with server(args.db, control, ttl=0) as base:
        print(HEADER)
        print(
            row(
                "/api/v1/overview?period=30d (no cache)",
                asyncio.run(load(base, "/api/v1/overview?period=30d", n, 2)),
            )
        )
    print(
        f"\n`fleetmedic kpi --format json` (whole store, one run): {cli_kpi_seconds(args.db):.2f} s"
    )


if __name__ == "__main__":
    main()
