"""``fleetmedic heal ...``: the healing audit trail, lemon nodes and checkpoint advice (docs/healing.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json
from fleetmedic.heal.checkpoints import DEFAULT_SAVE_COST_MINUTES, advise
from fleetmedic.heal.lemons import DEFAULT_FDR, find_lemons
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import Store, default_db_path

heal = typer.Typer(
    help="Healing: the audit trail of actions, lemon nodes, checkpoint advice.",
    no_args_is_help=True,
)
app.add_typer(heal, name="heal")

FORMATS = ("text", "json")
_DB = typer.Option(default_db_path(), "--db", help="DuckDB store to read.")
_FORMAT = typer.Option("text", "--format", help="text or json.")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


@contextmanager
def _open(db: Path) -> Iterator[Store]:
    """The store at ``db``, read-only so a running controller keeps writing; bad paths exit 2."""
    if not db.is_file():
        fail(f"no database at {db}")
    try:
        store = Store(db, read_only=True)
    except FleetmedicError as exc:
        fail(str(exc))
    with store:
        yield store


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@heal.command("history")
def history(
    db: Path = _DB,
    state: str | None = typer.Option(None, "--state", help="Only actions in this state."),
    limit: int = typer.Option(50, "--limit", min=1, help="Most recent N actions."),
    fmt: str = _FORMAT,
) -> None:
    """The audit trail: actions from the ``actions`` table, most recent first."""
    _check_format(fmt)
    sql = (
        "SELECT action_id, kind, target, because, mode, state, created_at, updated_at, result "
        "FROM actions"
    )
    params: list[Any] = []
    if state is not None:
        sql += " WHERE state = ?"
        params.append(state)
    sql += f" ORDER BY created_at DESC, action_id LIMIT {int(limit)}"
    with _open(db) as store:
        rows = store.con.execute(sql, params).fetchall()
    actions = [
        {
            "action_id": r[0],
            "kind": r[1],
            "target": r[2],
            "because": json.loads(r[3]) if r[3] else [],
            "mode": r[4],
            "state": r[5],
            "created_at": r[6].isoformat() + "Z",
            "updated_at": r[7].isoformat() + "Z",
            "result": r[8],
        }
        for r in rows
    ]
    if fmt == "json":
        print_json({"actions": actions})
        return
    if not actions:
        typer.echo("no actions")
        return
    for a in actions:
        line = f"{a['created_at']}  {a['state']:<11} {a['mode']:<8} {a['kind']:<10} {a['target']}"
        if a["result"]:
            line += f"  ({a['result']})"
        typer.echo(line)


@heal.command("lemons")
def lemons(
    db: Path = _DB,
    fdr: float = typer.Option(DEFAULT_FDR, "--fdr", min=0.0, max=1.0, help="False discovery rate."),
    fmt: str = _FORMAT,
) -> None:
    """Nodes failing significantly more than the rest of the fleet (Poisson test, BH-corrected)."""
    _check_format(fmt)
    with _open(db) as store:
        rows = find_lemons(store, fdr=fdr)
    if fmt == "json":
        print_json({"fdr": fdr, "nodes": [r.to_dict() for r in rows]})
        return
    flagged = [r for r in rows if r.flagged]
    typer.echo(f"{len(flagged)} lemon node(s) of {len(rows)} tested (FDR {fdr:.0%})")
    for r in rows:
        if not r.flagged:
            continue
        typer.echo(
            f"  {r.node}: {r.failures} failures in {r.exposure_hours:.1f} node-hours, "
            f"expected {r.expected:.2f}, p={r.p_value:.2g}, q={r.q_value:.2g}"
        )


@heal.command("checkpoints")
def checkpoints(
    db: Path = _DB,
    save_cost_minutes: float = typer.Option(
        DEFAULT_SAVE_COST_MINUTES,
        "--save-cost-minutes",
        min=0.001,
        help="Time to save one checkpoint.",
    ),
    fmt: str = _FORMAT,
) -> None:
    """Young/Daly checkpoint intervals per job size, from the measured MTTF."""
    _check_format(fmt)
    with _open(db) as store:
        advice = advise(store, save_cost_minutes=save_cost_minutes)
    if fmt == "json":
        print_json(
            {"save_cost_minutes": save_cost_minutes, "buckets": [a.to_dict() for a in advice]}
        )
        return
    if not advice:
        typer.echo("no attempts in the store")
        return
    typer.echo(f"checkpoint save cost {save_cost_minutes:g} min")
    for a in advice:
        if a.mttf_hours is None:
            typer.echo(
                f"  {a.bucket:>9} GPUs: no platform/hardware failures in {a.attempt_hours:.1f} h"
            )
            continue
        line = (
            f"  {a.bucket:>9} GPUs: MTTF {_fmt(a.mttf_hours)} h, checkpoint every "
            f"{_fmt(a.daly_hours)} h (Daly; Young {_fmt(a.young_hours)} h)"
        )
        if a.gpu_hours_saved is not None:
            line += (
                f"; now ~{_fmt(a.current_interval_hours)} h, "
                f"would save ~{_fmt(a.gpu_hours_saved, 1)} GPU-hours"
            )
        typer.echo(line)
