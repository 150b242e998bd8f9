"""``fleetmedic kpi``: fleet KPIs over a period, optionally per group (docs/kpis.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json, stdout
from fleetmedic.kpi import STATUSES, compute_kpis
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import Store, default_db_path


class Format(StrEnum):
    text = "text"
    json = "json"


class By(StrEnum):
    team = "team"
    user = "user"
    size = "size"
    gpu_model = "gpu_model"
    pool = "pool"
    week = "week"
    cluster = "cluster"


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time, taken as UTC when it has no offset; bad input exits 2."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: not an ISO date or date-time: {value!r} (e.g. 2024-05-01)")


@app.command()
def kpi(
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read."),
    since: str | None = typer.Option(
        None, "--since", help="Start of the period (ISO date/time, UTC). Default: first job."
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        help="End of the period, exclusive (ISO, UTC). Default: last timestamp, or now while "
        "jobs run.",
    ),
    by: By | None = typer.Option(None, "--by", help="Also report the KPIs per group."),
    fmt: Format = typer.Option(Format.text, "--format", help="text for people, json for tools."),
) -> None:
    """Fleet KPIs: outcomes, goodput and badput, ETTR, MTTR/MTTF, capacity, developer velocity."""
    start, end = _when(since, "--since"), _when(until, "--until")
    if not db.is_file():
        fail(f"no database at {db} (create one with `fleetmedic import ... --db {db}`)")
    try:
        with Store(db, read_only=True) as store:
            result = compute_kpis(store, start, end, by.value if by else None)
    except FleetmedicError as exc:
        fail(str(exc))
    if fmt is Format.json:
        print_json(result)
    else:
        _print_text(result)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.2f}{unit}"


def _print_text(result: dict[str, Any]) -> None:
    period = result["period"]
    stdout.print(f"[bold]Fleet KPIs[/bold] {period['since']} → {period['until']}")
    stdout.print(_headline(result))
    stdout.print(_outcomes(result))
    if result["failures"]["by_category"]:
        stdout.print(_failures(result["failures"]["by_category"]))
    if result.get("groups"):
        stdout.print(_groups(result["by"], result["groups"]))
    quality = result["data_quality"]
    repairs = {k: v for k, v in quality.items() if v and k != "duplicate_rows"}
    repairs |= {f"duplicate {k}": v for k, v in quality["duplicate_rows"].items() if v}
    if repairs:
        stdout.print("Data quality: " + ", ".join(f"{k}={v}" for k, v in repairs.items()))


def _headline(r: dict[str, Any]) -> Table:
    table = Table("KPI", "value", title="Headline", title_justify="left")
    wait = r["queue_wait_hours"]
    rows = [
        ("jobs", f"{r['jobs']['total']:,}"),
        ("GPU-hours", _num(r["gpu_hours"]["total"])),
        ("goodput", _pct(r["goodput"])),
        ("badput GPU-hours (lost work)", _num(r["badput"]["gpu_hours"])),
        ("re-queue GPU-hours", _num(r["badput"]["requeue_gpu_hours"])),
        ("ETTR", _pct(r["ettr"])),
        ("MTTR", _num(r["mttr_hours"], " h")),
        ("MTTD", _num(r["mttd_hours"], " h")),
        (
            "queue wait p50 / p90 / p99",
            " / ".join(_num(wait[k], " h") for k in ("p50", "p90", "p99")),
        ),
        ("GPU allocation rate", _pct(r["capacity"]["allocation_rate"])),
        ("GPU utilization (allocated)", _pct(r["capacity"]["utilization"])),
        ("attempts per success", _num(r["velocity"]["attempts_per_success"])),
        (
            "users blocked by platform failures",
            f"{r['velocity']['users']['blocked_by_platform']} of {r['velocity']['users']['active']}",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _outcomes(r: dict[str, Any]) -> Table:
    table = Table(
        "status",
        "jobs",
        "share of jobs",
        "share of GPU-hours",
        title="Outcomes",
        title_justify="left",
    )
    for status in STATUSES:
        table.add_row(
            status,
            f"{r['jobs']['count_by_status'][status]:,}",
            _pct(r["jobs"]["by_status"][status]),
            _pct(r["gpu_hours"]["by_status"][status]),
        )
    return table


def _failures(by_category: dict[str, dict[str, Any]]) -> Table:
    table = Table(
        "category",
        "failures",
        "GPU-hours lost",
        title="Failures by root cause",
        title_justify="left",
    )
    for category, row in by_category.items():
        table.add_row(category, f"{row['count']:,}", _num(row["gpu_hours_lost"]))
    return table


def _groups(by: str, groups: dict[str, dict[str, Any]]) -> Table:
    table = Table(
        by,
        "jobs",
        "GPU-hours",
        "succeeded",
        "failed",
        "goodput",
        "ETTR",
        "MTTR",
        "wait p50",
        title=f"By {by}",
        title_justify="left",
    )
    for key, g in groups.items():
        table.add_row(
            key,
            f"{g['jobs']['total']:,}",
            _num(g["gpu_hours"]["total"]),
            _pct(g["jobs"]["by_status"]["succeeded"]),
            _pct(g["jobs"]["by_status"]["failed"]),
            _pct(g["goodput"]),
            _pct(g["ettr"]),
            _num(g["mttr_hours"], " h"),
            _num(g["queue_wait_hours"]["p50"], " h"),
        )
    return table
