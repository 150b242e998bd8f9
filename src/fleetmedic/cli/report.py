"""``fleetmedic report``: one self-contained HTML page for a reliability review (docs/report.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.priorities import open_backend, parse_when
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.report import write_report
from fleetmedic.report.png import ImageError
from fleetmedic.store import default_db_path


@app.command()
def report(
    out: Path = typer.Option(
        ..., "--out", help="HTML file to write (one file, no network needed)."
    ),
    png: Path | None = typer.Option(
        None, "--png", help="Also write each chart as a PNG into this folder (needs Chromium)."
    ),
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read."),
    since: str | None = typer.Option(
        None, "--since", help="Start (ISO, UTC). Default: first data."
    ),
    until: str | None = typer.Option(
        None, "--until", help="End, exclusive (ISO, UTC). Default: the latest data."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Causes in the priorities table."),
) -> None:
    """Write the HTML report: outcomes, Pareto of causes, goodput/ETTR, waits, MTTF, worst nodes."""
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    try:
        with open_backend(db) as backend:
            written = write_report(backend, out, png_dir=png, since=start, until=end, limit=limit)
    except ImageError as exc:  # the browser ran but failed: not the user's input
        fail(str(exc), code=1)
    except FleetmedicError as exc:
        fail(str(exc))
    typer.echo(str(written.html))
    for image in written.images:
        typer.echo(str(image))
