"""``fleetmedic metrics``: serve the KPIs and the controller's state to Prometheus (docs/run-on-cluster.md)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.heal.state import default_control_path
from fleetmedic.store import default_db_path


@app.command()
def metrics(
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read KPIs from."),
    control: Path = typer.Option(
        default_control_path(),
        "--control",
        envvar="FLEETMEDIC_CONTROL",
        help="The healing controller's control store (SQLite).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(9108, "--port", min=1, max=65535, help="Port to listen on."),
    kpi_ttl: float = typer.Option(
        60.0, "--kpi-ttl", min=0.0, help="Seconds before a changed store is read again."
    ),
    once: bool = typer.Option(False, "--once", help="Print the metrics once and exit."),
) -> None:
    """Serve Prometheus metrics (/metrics): goodput, ETTR, jobs, GPU-hours lost, actions, switches."""
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    from fleetmedic.kpi.metrics_out import FleetCollector

    collector = FleetCollector(db, control, kpi_ttl=kpi_ttl)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if once:
        sys.stdout.write(generate_latest(registry).decode("utf-8"))
        for which, line in sorted(collector.last_error.items()):
            sys.stderr.write(f"fleetmedic: warning: {which}: {line}\n")
        return
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port}: {exc.strerror}")
    typer.echo(f"fleetmedic: metrics on http://{host}:{port}/metrics (Ctrl-C stops)", err=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
