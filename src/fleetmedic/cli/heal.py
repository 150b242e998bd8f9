"""``fleetmedic heal ...``: audit trail, operator controls, lemon nodes, checkpoint advice (docs/healing.md)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json
from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.checkpoints import DEFAULT_SAVE_COST_MINUTES, advise
from fleetmedic.heal.lemons import DEFAULT_FDR, find_lemons
from fleetmedic.heal.state import ControlStore, Switches, default_control_path
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import Store, default_db_path

heal = typer.Typer(
    help="Healing: audit trail, approvals, kill switch, lemon nodes, checkpoint advice.",
    no_args_is_help=True,
)
app.add_typer(heal, name="heal")

FORMATS = ("text", "json")
_DB = typer.Option(default_db_path(), "--db", help="DuckDB store to read.")
_FORMAT = typer.Option("text", "--format", help="text or json.")
_CONTROL = typer.Option(
    default_control_path(),
    "--control",
    envvar="FLEETMEDIC_CONTROL",
    help="The controller's state file (actions, switches); SQLite.",
)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


@contextmanager
def _open(db: Path) -> Iterator[Store]:
    """The store at ``db``, read-only; bad paths exit 2."""
    if not db.is_file():
        fail(f"no database at {db}")
    try:
        store = Store(db, read_only=True)
    except FleetmedicError as exc:
        fail(str(exc))
    with store:
        yield store


@contextmanager
def _control(path: Path, *, create: bool = False) -> Iterator[ControlStore]:
    """The controller's state file; only the kill switch may create it (to stop before a start)."""
    if not create and not path.is_file():
        fail(f"no control store at {path}")
    try:
        control = ControlStore(path)
    except FleetmedicError as exc:
        fail(str(exc))
    with control:
        yield control


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _operator() -> str:
    return os.environ.get("USER") or getpass.getuser()


@heal.command("history")
def history(
    control: Path = _CONTROL,
    state: str | None = typer.Option(None, "--state", help="Only actions in this state."),
    limit: int = typer.Option(50, "--limit", min=1, help="Most recent N actions."),
    fmt: str = _FORMAT,
) -> None:
    """The audit trail: every action and why, most recent first."""
    _check_format(fmt)
    with _control(control) as store:
        rows = AuditLog(store).recent(limit, state)
    actions = [a.model_dump(mode="json") for a in rows]
    if fmt == "json":
        print_json({"actions": actions})
        return
    if not actions:
        typer.echo("no actions")
        return
    for a in rows:
        when = a.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{when}  {a.state:<9} {a.mode:<8} {a.kind:<26} {a.target}  [{a.action_id[:12]}]"
        if a.result:
            line += f"  ({a.result})"
        typer.echo(line)


@heal.command("status")
def status(control: Path = _CONTROL, fmt: str = _FORMAT) -> None:
    """The guard's switches and how many actions are in each state (what waits for a person)."""
    _check_format(fmt)
    with _control(control) as store:
        switches = Switches(store).describe()
        counts = AuditLog(store).counts()
        waiting = [
            a.action_id
            for a in AuditLog(store).pending()
            if a.mode == "approval" and a.state == "proposed"
        ]
    if fmt == "json":
        print_json({"switches": switches, "actions": counts, "awaiting_approval": waiting})
        return
    for name, info in switches.items():
        said = "ENGAGED" if info["engaged"] else "off"
        who = f" (by {info['changed_by']} at {info['changed_at']})" if info["changed_at"] else ""
        typer.echo(f"{name}: {said}{who}")
    typer.echo("actions: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    typer.echo(f"awaiting approval: {len(waiting)}")
    for action_id in waiting:
        typer.echo(f"  {action_id}")


def _answer(control: Path, action_id: str, approve: bool, why: str = "") -> None:
    """Record a person's answer to an approval-mode action; the controller acts on it."""
    with _control(control) as store:
        audit, now, who = AuditLog(store), datetime.now(UTC), _operator()
        try:
            if approve:
                action = audit.approve(action_id, now, who)
            else:
                action = audit.reject(action_id, now, who, why)
        except FleetmedicError as exc:
            fail(str(exc))
    typer.echo(f"{action.state} {action.kind} on {action.target} [{action.action_id}]")


@heal.command("approve")
def approve(
    action_id: str = typer.Argument(..., help="The action's id (see heal history / status)."),
    control: Path = _CONTROL,
) -> None:
    """Approve an approval-mode action; the running controller executes it, through the guard."""
    _answer(control, action_id, approve=True)


@heal.command("reject")
def reject(
    action_id: str = typer.Argument(..., help="The action's id."),
    why: str = typer.Option("", "--why", help="Reason, kept in the audit trail."),
    control: Path = _CONTROL,
) -> None:
    """Reject an approval-mode action: it is final and never runs."""
    _answer(control, action_id, approve=False, why=why)


@heal.command("kill-switch")
def kill_switch(
    setting: str = typer.Argument(..., help="on (stop every action) or off."),
    reason: str = typer.Option("", "--reason", help="Why, kept with the switch."),
    control: Path = _CONTROL,
) -> None:
    """Stop (on) or allow (off) every action of every controller sharing this control store."""
    if setting not in ("on", "off"):
        fail(f"kill-switch takes on or off, got {setting!r}")
    with _control(control, create=setting == "on") as store:
        Switches(store).set("kill_switch", setting == "on", datetime.now(UTC), _operator(), reason)
    typer.echo(f"kill switch {setting}")


@heal.command("reset-breaker")
def reset_breaker(control: Path = _CONTROL) -> None:
    """Close the circuit breaker after looking at the action storm that tripped it."""
    with _control(control) as store:
        Switches(store).set("breaker", False, datetime.now(UTC), _operator(), "reset")
    typer.echo("circuit breaker reset")


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
