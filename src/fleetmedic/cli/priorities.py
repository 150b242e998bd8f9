"""``fleetmedic priorities``: what to fix first, ranked by GPU-hours lost (docs/priorities.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.kpi.priorities import DEFAULT_DAYS, priorities_report
from fleetmedic.kpi.priorities_format import FORMATS, render
from fleetmedic.kpi.priorities_owners import load_owner_map
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import Store, default_db_path


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time (``2024-05-01``, ``2024-05-01T12:00Z``); bad ones exit 2."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not an ISO date or date-time: {value!r} (e.g. 2024-05-01)")


@contextmanager
def open_backend(db: Path) -> Iterator[Any]:
    """An Ibis backend over the store at ``db``, read-only so a running controller keeps writing."""
    if not db.is_file():
        fail(f"no database at {db} (create one with `fleetmedic import ... --db {db}`)")
    with Store(db, read_only=True) as store:
        yield ibis.duckdb.from_connection(store.con)


@app.command()
def priorities(
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read."),
    since: str | None = typer.Option(
        None,
        "--since",
        help=f"Start of the period (ISO, UTC). Default: {DEFAULT_DAYS} days before --until.",
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        help="End of the period, exclusive (ISO, UTC). Default: the day after the latest data.",
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Number of causes to show."),
    fmt: str = typer.Option("text", "--format", help="text, json, csv or markdown."),
    owners: Path | None = typer.Option(
        None, "--owners", help="YAML mapping of owners/categories to teams (default: packaged)."
    ),
) -> None:
    """Rank root causes by GPU-hours lost, with owner team, trend and the gain if fixed."""
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    try:
        owner_map = load_owner_map(owners)
        with open_backend(db) as backend:
            report = priorities_report(backend, start, end, limit, owners=owner_map)
    except FleetmedicError as exc:
        fail(str(exc))
    typer.echo(render(report, fmt), nl=False)
