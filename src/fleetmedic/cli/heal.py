"""``fleetmedic heal ...``: audit trail, operator controls, lemon nodes, checkpoint advice (docs/healing.md)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import typer
from pydantic import ValidationError

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json
from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.checkpoints import DEFAULT_SAVE_COST_MINUTES, advise
from fleetmedic.heal.controller import Controller
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.lemons import DEFAULT_FDR, find_lemons
from fleetmedic.heal.policy import PolicySet, load_policies
from fleetmedic.heal.state import ControlStore, Switches, default_control_path
from fleetmedic.model.errors import FleetmedicError, InputError
from fleetmedic.model.executor import Executor, RecordingExecutor
from fleetmedic.model.records import Node
from fleetmedic.store import Store, default_db_path

if TYPE_CHECKING:  # imported when ``heal run`` runs: Prometheus costs other commands ~60 ms
    from fleetmedic.heal.events import Incoming, Malformed
    from fleetmedic.heal.pipeline import Summary

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


# ``heal run``: the controller behind the event pipeline (docs/heal-pipeline.md) -----------------
EXECUTORS = ("dry-run", "kubernetes")
POOL_LABELS = ("fleetmedic.io/pool", "node.kubernetes.io/instance-type")


def _node_record(item: object) -> Node:
    if not isinstance(item, dict):
        raise InputError("an item is not a Node object")
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise InputError("a Node has no metadata.name")
    labels = meta.get("labels") or {}
    pool = next((labels[k] for k in POOL_LABELS if labels.get(k)), "default")
    cordoned = bool(spec.get("unschedulable")) if isinstance(spec, dict) else False
    return Node(node_id=name, pool=str(pool), cordoned=cordoned)


def _fleet(path: Path | None) -> Fleet:
    """The guard's fleet from ``kubectl get nodes -o json``; none given: every cordon is refused."""
    if path is None:
        return Fleet({})
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        fail(f"cannot read node list {path}: {exc.strerror}")
    except ValueError as exc:
        fail(f"node list {path} is not JSON: {exc}")
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        fail(f"node list {path}: expected `kubectl get nodes -o json` output (a NodeList)")
    try:
        return Fleet.from_nodes(_node_record(item) for item in items)
    except (InputError, ValidationError, AttributeError) as exc:
        fail(f"node list {path}: {exc}")


def _executor(kind: str, kubeconfig: Path | None) -> Executor:
    if kind == "dry-run":
        return RecordingExecutor()
    try:
        from fleetmedic.heal.kubernetes import KubernetesExecutor
    except ImportError as exc:
        fail(f"the kubernetes executor is not available: {exc}")
    try:
        return KubernetesExecutor.from_kubeconfig(kubeconfig)
    except Exception as exc:  # lightkube's config errors have no common base: report any
        where = kubeconfig or "(default)"
        fail(f"cannot use kubeconfig {where}: {type(exc).__name__}: {exc}")


@contextmanager
def _events_stream(events: str) -> Iterator[BinaryIO]:
    if events == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = Path(events).open("rb")  # noqa: SIM115  (closed below)
    except OSError as exc:
        fail(f"cannot read events {events}: {exc.strerror}")
    with stream:
        yield stream


def _run_summary(summary: Summary, executor: Executor, fmt: str) -> None:
    calls = executor.counts() if isinstance(executor, RecordingExecutor) else {}
    if fmt == "json":
        print_json({**summary.to_dict(), "dry_run_executor_calls": calls})
        return
    typer.echo(
        f"events: {summary.received + summary.malformed} read, {summary.duplicates} duplicate, "
        f"{summary.malformed} malformed, {summary.handled} handled"
        + (f", {summary.unprocessed} left unprocessed" if summary.unprocessed else "")
        + (" (stopped before the end of the input)" if summary.stopped else "")
    )
    actions = ", ".join(f"{state} {n}" for state, n in summary.actions.items())
    typer.echo(f"actions: {actions or 'none'}")
    if isinstance(executor, RecordingExecutor):
        done = ", ".join(f"{m} {n}" for m, n in sorted(calls.items())) or "none"
        typer.echo(f"dry-run executor (nothing changed): {done}")
    typer.echo(f"time: {summary.seconds:.1f} s")


@heal.command("run")
def run(
    events: str = typer.Argument(
        ..., metavar="EVENTS|-", help="JSON lines of events or diagnoses; '-' reads stdin."
    ),
    policies: Path | None = typer.Option(
        None, "--policies", help="Policy file; the packaged defaults (all dry-run) if omitted."
    ),
    control: Path = _CONTROL,
    nodes: Path | None = typer.Option(
        None,
        "--nodes",
        help="`kubectl get nodes -o json` output: the fleet the guard checks cordons against. "
        "Without it every cordon is refused (unknown node).",
    ),
    executor: str = typer.Option("dry-run", "--executor", help="dry-run or kubernetes."),
    kubeconfig: Path | None = typer.Option(
        None, "--kubeconfig", help="For --executor kubernetes; default $KUBECONFIG or in-cluster."
    ),
    batch: int = typer.Option(256, "--batch", min=1, help="Most events decided per commit."),
    queue: int = typer.Option(1024, "--queue", min=1, help="Events buffered before readers wait."),
    approvals_every: float = typer.Option(
        2.0, "--approvals-every", min=0.05, help="Seconds between checks for approved actions."
    ),
    metrics_port: int = typer.Option(
        0, "--metrics-port", min=0, max=65535, help="Serve Prometheus metrics here (0: off)."
    ),
    fmt: str = _FORMAT,
    nats_url: str | None = typer.Option(
        None,
        "--nats",
        envvar="FLEETMEDIC_NATS_URL",
        help="Run as one of several replicas over NATS JetStream: EVENTS are published to the "
        "stream, and this replica acts on the targets it leases until SIGTERM (docs/run-on-cluster.md).",
    ),
    replica_id: str | None = typer.Option(
        None, "--replica-id", envvar="FLEETMEDIC_REPLICA_ID", help="With --nats; default: hostname."
    ),
    lease_seconds: float = typer.Option(
        15.0,
        "--lease-seconds",
        min=1.0,
        help="With --nats: a dead replica's targets move after this.",
    ),
) -> None:
    """Run the healing controller on a stream of events until it ends, SIGTERM or Ctrl-C."""
    _check_format(fmt)
    if executor not in EXECUTORS:
        fail(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if events != "-" and not Path(events).is_file():
        fail(f"no events file at {events}")
    try:
        policy_set = load_policies(policies)
    except FleetmedicError as exc:
        fail(str(exc))
    fleet = _fleet(nodes)
    actor = _executor(executor, kubeconfig)
    from fleetmedic.heal.events import read_events

    with _control(control, create=True) as store, _events_stream(events) as stream:
        if executor == "dry-run" and any(p.mode != "dry-run" for p in policy_set.policies):
            _warn_line(
                f"--executor dry-run: auto and approved actions will be recorded done in "
                f"{control} although nothing ran; use a scratch --control to try a policy file"
            )
        if nats_url:
            _run_replicated(
                store,
                policy_set,
                fleet,
                actor,
                stream,
                events,
                fmt,
                nats_url,
                replica_id,
                lease_seconds,
            )
            return
        summary = _run_pipeline(
            _controller(store, policy_set, fleet, actor),
            read_events(stream, "<stdin>" if events == "-" else events),
            batch=batch,
            queue=queue,
            approvals_every=approvals_every,
            metrics_port=metrics_port,
        )
    _run_summary(summary, actor, fmt)


def _warn_line(message: str) -> None:
    sys.stderr.write(f"fleetmedic: warning: {message}\n")


def _controller(
    store: ControlStore, policy_set: PolicySet, fleet: Fleet, actor: Executor
) -> Controller:
    def clock() -> datetime:
        return datetime.now(UTC)

    guard = Guard(policy_set.guard, fleet, clock, Switches(store))
    return Controller(policy_set, guard, AuditLog(store), actor, clock=clock)


def _run_pipeline(
    controller: Controller,
    source: AsyncIterator[Incoming | Malformed],
    *,
    batch: int,
    queue: int,
    approvals_every: float,
    metrics_port: int,
) -> Summary:
    from prometheus_client import start_http_server

    from fleetmedic.heal.pipeline import Pipeline

    pipeline = Pipeline(
        controller,
        queue_size=queue,
        batch_size=batch,
        approvals_every=approvals_every,
        warn=_warn_line,
    )
    server = None
    if metrics_port:
        try:
            server, _ = start_http_server(metrics_port, registry=pipeline.metrics.registry)
        except OSError as exc:
            fail(f"cannot serve metrics on port {metrics_port}: {exc.strerror}")
    try:
        return asyncio.run(pipeline.run(source, signals=True))
    finally:
        if server is not None:
            server.shutdown()


def _run_replicated(
    store: ControlStore,
    policy_set: PolicySet,
    fleet: Fleet,
    actor: Executor,
    stream: BinaryIO,
    events: str,
    fmt: str,
    url: str,
    replica_id: str | None,
    lease_seconds: float,
) -> None:
    """``heal run --nats``: publish EVENTS, act as one replica until SIGTERM (heal/replicas.py)."""
    from fleetmedic.heal.events import read_lines
    from fleetmedic.heal.replicas import (
        NatsSettings,
        ReplicaUnavailable,
        default_replica_id,
        replica_controller,
        run_replica,
    )

    settings = NatsSettings(url, replica_id or default_replica_id(), lease_seconds=lease_seconds)
    controller = replica_controller(store, policy_set, fleet, actor, lambda: datetime.now(UTC))
    name = "<stdin>" if events == "-" else events
    try:
        summary = asyncio.run(
            run_replica(
                controller,
                settings,
                lines=read_lines(stream),
                source=name,
                warn=_warn_line,
                signals=True,
            )
        )
    except ReplicaUnavailable as exc:
        fail(str(exc))
    if fmt == "json":
        print_json(summary.to_dict())
        return
    typer.echo(
        f"replica {summary.replica}: {summary.published} published, {summary.received} received, "
        f"{summary.deferred} deferred to other replicas, {summary.handled} handled, "
        f"{summary.done_elsewhere} done by another replica, {summary.outages} NATS error(s)"
    )
    actions = ", ".join(f"{state} {n}" for state, n in summary.actions.items())
    typer.echo(f"actions: {actions or 'none'}")
