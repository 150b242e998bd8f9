"""``fleetmedic simulate``: run the fleet simulator, diagnose every failure, score it (docs/simulator.md)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json, progress_bars, stdout
from fleetmedic.heal.policy import load_policies
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.sim.config import SimConfig, describe_error
from fleetmedic.store import default_db_path
from fleetmedic.workflows.simulate import run_simulation

DEFAULT_DB = default_db_path().with_name("simulation.duckdb")


class Format(StrEnum):
    text = "text"
    json = "json"


def _config(path: Path | None, flags: dict[str, Any]) -> SimConfig:
    """YAML config (if any) overlaid with the flags that were given; bad input exits 2."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            fail(f"--config {path}: cannot read it: {exc}")
        if not isinstance(loaded, dict):
            fail(f"--config {path}: expected a mapping of SimConfig fields")
        values.update(loaded)
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return SimConfig(**values)
    except ValidationError as exc:
        fail(describe_error(exc))


@app.command()
def simulate(
    gpus: int | None = typer.Option(
        None, "--gpus", help="Fleet size in GPUs, whole 8-GPU nodes, 128 to 12000 (default 4096)."
    ),
    days: float | None = typer.Option(None, "--days", help="Simulated days (default 30)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Random seed (default 0); same seed, same run."
    ),
    heal: str | None = typer.Option(None, "--heal", help="off | dry-run | auto (default off)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB store to write the run into."),
    fmt: Format = typer.Option(Format.text, "--format", help="text for people, json for tools."),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="Workload profile fitted to a trace: kalos (default), seren, philly, helios.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="YAML file of scenario fields (docs/simulator.md); flags override it.",
    ),
    replay: Path | None = typer.Option(
        None,
        "--replay",
        help="Replay the jobs table of this store instead of generating a workload.",
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write the run to --db."),
    policies: Path | None = typer.Option(
        None,
        "--policies",
        help="Healing policy file (docs/healing.md); default: the packaged policies. "
        "--heal sets every policy's mode.",
    ),
) -> None:
    """Simulate a GPU fleet on Kubernetes: failures at published rates, diagnosis, healing."""
    chosen = _config(
        config, {"gpus": gpus, "days": days, "seed": seed, "heal": heal, "profile": profile}
    )
    if replay is not None and not replay.is_file():
        fail(f"--replay: no database at {replay}")
    try:
        rules = None if policies is None else load_policies(policies)
        with progress_bars(sys.stderr.isatty()) as progress:
            result, _ = run_simulation(
                chosen, None if no_store else db, replay=replay, progress=progress, policies=rules
            )
    except FleetmedicError as exc:
        fail(str(exc))
    if fmt is Format.json:
        print_json(result)
    else:
        _print_text(result, None if no_store else db)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _print_text(r: dict[str, Any], db: Path | None) -> None:
    c = r["config"]
    stdout.print(
        f"[bold]Simulated[/bold] {c['gpus']:,} GPUs for {c['days']:g} days, seed "
        f"{c['seed']}, heal {c['heal']}, workload {c['profile']}"
    )
    head = Table("figure", "value", title="Headline", title_justify="left")
    rows = [
        ("jobs", f"{r['jobs']['total']:,}"),
        ("GPU utilization", _pct(r["utilization"])),
        ("goodput", _pct(r["goodput"])),
        ("GPU-hours lost", f"{r['gpu_hours_lost']:,.0f}"),
        ("failures", f"{r['failures']:,}"),
        ("preemptions", f"{r['preemptions']:,}"),
        ("diagnosis accuracy", _pct(r["diagnosis_accuracy"])),
        ("ETTR, jobs of 256+ GPUs", _pct(r["ettr_large_jobs"])),
        ("cordons (false)", f"{r['cordons']} ({r['false_cordons']})"),
        (
            "lemon precision / recall",
            f"{_pct(r['lemon']['precision'])} / {_pct(r['lemon']['recall'])}",
        ),
        ("actions", ", ".join(f"{k} {v}" for k, v in r["actions"].items()) or "—"),
    ]
    for name, value in rows:
        head.add_row(name, value)
    stdout.print(head)
    cal = r["calibration"]
    table = Table(
        "calibration",
        "simulated",
        "published",
        title="Against published figures",
        title_justify="left",
    )
    hw = cal["hardware_failures_per_1000_node_days"]
    table.add_row("hardware failures / 1000 node-days", f"{hw['simulated']}", f"{hw['published']}")
    for key, row in cal["job_mttf"].items():
        sim = row["simulated_hours"]
        table.add_row(
            f"job MTTF, {key.removeprefix('gpus_')} GPUs (h)",
            "—" if sim is None else f"{sim}",
            f"{row['published_hours']:.1f}",
        )
    for key, row in cal["job_status_share"].items():
        table.add_row(f"jobs {key}", _pct(row["simulated"]), _pct(row["published"]))
    for key, row in cal["gpu_time_share"].items():
        table.add_row(f"GPU time {key}", _pct(row["simulated"]), _pct(row["published"]))
    infra = cal["infra_share_of_failed_gpu_time"]
    table.add_row(
        "infrastructure share of failed GPU time",
        _pct(infra["simulated"]),
        _pct(infra["published_acme"]),
    )
    stdout.print(table)
    if db is not None:
        stdout.print(
            f"Stored in {db} (try: fleetmedic kpi --db {db} --until {r['period']['until']})"
        )
