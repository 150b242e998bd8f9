"""``fleetmedic demo``: simulate a month of a GPU platform and show what fleetmedic makes of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fleetmedic.cli.app import app
from fleetmedic.cli.output import progress_bars, stdout
from fleetmedic.workflows.demo import DemoResult, run_demo


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the store and the report (replaced if present).")
    ] = Path("fleetmedic-demo"),
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Then serve the web dashboard on the result (Ctrl-C stops)."),
    ] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port for --serve.")] = 8080,
) -> None:
    """Simulate a month of a 2,048-GPU platform, diagnose every failure, measure, rank, report.

    No cluster: everything runs here and lands in OUT (fleetmedic.duckdb, heal.sqlite and
    report.html). Without --serve the last line printed is the report's path; with it, the
    dashboard then serves the result on 127.0.0.1 (log in with the printed one-off admin token,
    or with FLEETMEDIC_TOKENS when set).
    """
    with progress_bars(sys.stderr.isatty()) as progress:
        result = run_demo(out, progress=progress)
    _summary(result)
    stdout.print(str(result.report))
    if serve:
        _serve(result, port)


def _serve(result: DemoResult, port: int) -> None:
    """Serve the demo on loopback; without FLEETMEDIC_TOKENS, under a fresh one-off admin token."""
    from fleetmedic.cli.serve import LOOPBACK, run_server
    from fleetmedic.web.auth import generate_token

    tokens = os.environ.get("FLEETMEDIC_TOKENS") or None
    banner = ""
    if tokens is None:
        token = generate_token()
        tokens = f"demo:admin:{token}"
        banner = f"\nfleetmedic: log in at http://{LOOPBACK}:{port}/login with this token: {token}"
    control = result.control or result.db.with_name("heal.sqlite")
    run_server(
        result.db,
        control,
        host=LOOPBACK,
        port=port,
        insecure_local=False,
        tokens=tokens,
        banner=banner,
    )


def _summary(result: DemoResult) -> None:
    sim, head = result.simulation, result.data.headline
    stdout.print(Text("fleetmedic demo: one simulated month of a 2,048-GPU platform", style="bold"))
    stdout.print(
        f"jobs {head.jobs:,}   failures {head.failures:,}   GPU-hours {head.gpu_hours:,.0f}   "
        f"lost {head.gpu_hours_lost:,.0f}   goodput {_pct(head.goodput)}   ETTR {_pct(head.ettr)}"
    )
    stdout.print(
        f"diagnosis accuracy against the injected causes: {_pct(sim.get('diagnosis_accuracy'))}   "
        f"lemon nodes found: precision {_pct(sim['lemon']['precision'])}, "
        f"recall {_pct(sim['lemon']['recall'])}"
    )
    causes = Table(title="Top causes by GPU-hours lost", title_justify="left")
    for column in ("cause", "owner", "GPU-h lost", "jobs", "where"):
        causes.add_column(column, justify="right" if column in ("GPU-h lost", "jobs") else "left")
    for row in result.data.priorities.rows[:5]:
        causes.add_row(
            row.cause, row.team, f"{row.gpu_hours_lost:,.0f}", str(row.jobs_affected), row.where
        )
    stdout.print(causes)
    nodes = Table(title="Worst nodes", title_justify="left")
    for column in ("node", "pool", "failures", "GPU-h lost"):
        nodes.add_column(
            column, justify="right" if column in ("failures", "GPU-h lost") else "left"
        )
    for node in result.data.worst_nodes[:5]:
        nodes.add_row(
            node.node_id, node.pool or "", str(node.failures), f"{node.gpu_hours_lost:,.0f}"
        )
    stdout.print(nodes)
    stdout.print(
        f"Next: open {result.report} in a browser; explore with "
        f"`fleetmedic kpi --db {result.db}` and `fleetmedic priorities --db {result.db}`."
    )
