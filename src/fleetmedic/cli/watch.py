"""``fleetmedic watch``: watch a cluster, diagnose what fails, heal through the guarded controller
(dry-run by default), notify; optionally receive Alertmanager's webhook (docs/live.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.heal import _CONTROL, EXECUTORS, _control, _warn_line
from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.policy import PolicySet, load_policies
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.model.executor import Executor, RecordingExecutor

if TYPE_CHECKING:
    from fleetmedic.heal.events import Incoming
    from fleetmedic.heal.notify import WebhookNotifier
    from fleetmedic.sources.kube_watch import KubeSession
    from fleetmedic.workflows.watch import WatchConfig, WatchLoop

FORMATS = ("text", "json")


def _session(kubeconfig: Path | None, context: str | None, namespace: str | None) -> KubeSession:
    from fleetmedic.sources.kube_watch import KubeSession

    if kubeconfig is not None and not kubeconfig.is_file():
        fail(f"no kubeconfig at {kubeconfig}")
    try:
        return KubeSession.from_kubeconfig(kubeconfig, context=context, namespace=namespace)
    except Exception as exc:  # lightkube's config errors have no common base: report any
        fail(f"cannot use kubeconfig {kubeconfig or '(default)'}: {type(exc).__name__}: {exc}")


def _executor(kind: str, kubeconfig: Path | None, context: str | None) -> Executor:
    if kind == "dry-run":
        return RecordingExecutor()
    from fleetmedic.heal.kubernetes import KubernetesExecutor

    try:
        return KubernetesExecutor.from_kubeconfig(kubeconfig, context=context, job_kind="auto")
    except Exception as exc:  # as above
        fail(f"cannot use kubeconfig {kubeconfig or '(default)'}: {type(exc).__name__}: {exc}")


def _check_urls(urls: list[str]) -> None:
    for url in urls:
        if not url.startswith(("http://", "https://")):
            fail(f"notification URL must start with http:// or https://, got {url!r}")


def _notifier(webhooks: list[str], slack: list[str]) -> WebhookNotifier | None:
    if not webhooks and not slack:
        return None
    from fleetmedic.heal.notify import Destination, WebhookNotifier

    targets = [Destination(u) for u in webhooks] + [Destination(u, "slack") for u in slack]
    return WebhookNotifier(targets, warn=_warn_line)


def _controller(
    store: ControlStore, policies: PolicySet, actor: Executor, notifier: WebhookNotifier | None
) -> Controller:
    """As ``heal run``'s, with the notifier for ``notify`` and ``suggest_fix`` actions; the
    guard's fleet is set once the nodes are listed."""

    def clock() -> datetime:
        return datetime.now(UTC)

    guard = Guard(policies.guard, Fleet({}), clock, Switches(store))
    return Controller(policies, guard, AuditLog(store), actor, clock=clock, notifier=notifier)


def _kinds(text: str) -> list[str]:
    from fleetmedic.sources.kube_watch import KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        fail(f"--kinds takes a comma-separated subset of {', '.join(KINDS)}, got {text!r}")
    return kinds


def _printer(fmt: str) -> Any:
    from fleetmedic.workflows.watch import envelope

    def show(item: Incoming) -> None:
        if fmt == "json":
            sys.stdout.write(json.dumps(envelope(item)) + "\n")
        else:
            d = item.event.diagnosis
            when = item.ts.strftime("%H:%M:%S") if item.ts else ""
            what = d.input
            sys.stdout.write(
                f"{when} {what} {d.category} ({d.owner}, {d.confidence:.2f}) {d.summary}\n"
            )
        sys.stdout.flush()

    return show


@app.command("watch")
def watch(
    kubeconfig: Path | None = typer.Option(
        None,
        "--kubeconfig",
        help="Default: in-cluster service account, $KUBECONFIG, ~/.kube/config.",
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context."),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Watch one namespace (nodes are always cluster-wide)."
    ),
    policies: Path | None = typer.Option(
        None, "--policies", help="Policy file; the packaged defaults (all dry-run) if omitted."
    ),
    control: Path = _CONTROL,
    executor: str = typer.Option("dry-run", "--executor", help="dry-run or kubernetes."),
    alertmanager_port: int = typer.Option(
        0, "--alertmanager-port", min=0, max=65535, help="Receive Alertmanager's webhook (0: off)."
    ),
    alertmanager_host: str = typer.Option("127.0.0.1", "--alertmanager-host"),
    notify_webhook: list[str] = typer.Option(
        [], "--notify-webhook", help="POST generic JSON notifications here (repeatable)."
    ),
    notify_slack: list[str] = typer.Option(
        [], "--notify-slack", help="POST Slack-compatible notifications here (repeatable)."
    ),
    kinds: str = typer.Option(
        "Node,Pod,Event,Job,PyTorchJob,MPIJob,Workload,VolcanoJob,RayJob",
        "--kinds",
        help="Kinds to watch.",
    ),
    settle: float = typer.Option(
        5.0, "--settle", min=0.0, help="Seconds a failure waits for its other ranks."
    ),
    since_minutes: float = typer.Option(
        15.0, "--since-minutes", min=0.0, help="At start, diagnose failures this recent."
    ),
    log_bytes: int = typer.Option(1 << 20, "--log-bytes", min=1, help="Most bytes per log."),
    log_lines: int = typer.Option(5000, "--log-lines", min=1, help="Last lines per log."),
    duration: float = typer.Option(0.0, "--duration", min=0.0, help="Stop after N s (0: never)."),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, max=65535),
    fmt: str = typer.Option("text", "--format", help="text, or json (one envelope a line)."),
) -> None:
    """Watch a cluster, diagnose failed and stuck jobs, heal them (dry-run by default)."""
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if executor not in EXECUTORS:
        fail(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    chosen = _kinds(kinds)
    _check_urls([*notify_webhook, *notify_slack])
    try:
        policy_set = load_policies(policies)
    except FleetmedicError as exc:
        fail(str(exc))
    from fleetmedic.sources.kube_logs import LogLimits
    from fleetmedic.workflows.watch import WatchConfig

    config = WatchConfig(
        kinds=chosen,
        settle=settle,
        since=timedelta(minutes=since_minutes),
        logs=LogLimits(tail_lines=log_lines, bytes_per_log=log_bytes),
    )
    session = _session(kubeconfig, context, namespace)
    actor = _executor(executor, kubeconfig, context)
    notifier = _notifier(notify_webhook, notify_slack)
    with _control(control, create=True) as store:
        controller = _controller(store, policy_set, actor, notifier)
        report = asyncio.run(
            _run(
                session,
                controller,
                config,
                notifier,
                alerts=(alertmanager_host, alertmanager_port),
                duration=duration,
                metrics_port=metrics_port,
                fmt=fmt,
            )
        )
    report["dry_run_executor_calls"] = (
        actor.counts() if isinstance(actor, RecordingExecutor) else {}
    )
    _summary(report, fmt)


async def _run(
    session: KubeSession,
    controller: Controller,
    config: WatchConfig,
    notifier: WebhookNotifier | None,
    *,
    alerts: tuple[str, int],
    duration: float,
    metrics_port: int,
    fmt: str,
) -> dict[str, Any]:
    from fleetmedic.heal.pipeline import Pipeline
    from fleetmedic.workflows.watch import WatchLoop

    loop = WatchLoop(session, config, notifier=notifier, on_event=_printer(fmt), warn=_warn_line)
    pipeline = Pipeline(controller, warn=_warn_line)
    servers: list[Any] = []
    try:
        await loop.start()
        if not await loop.synced():
            _warn_line("not every kind could be listed within 60 s; watching anyway")
        controller.guard.fleet = loop.fleet_now()
        servers = _servers(loop, pipeline, alerts, metrics_port)
        if duration:
            asyncio.get_running_loop().call_later(duration, loop.stop)
        summary = await pipeline.run(loop.events(), signals=True)
    finally:
        await loop.close()
        await session.aclose()
        for server in servers:
            server.stop() if hasattr(server, "stop") else server.shutdown()
        if notifier is not None:
            notifier.close()
    report: dict[str, Any] = {**summary.to_dict(), "watch": loop.report()}
    receiver = next((s for s in servers if hasattr(s, "receiver")), None)
    if receiver is not None:
        report["alerts"] = dict(receiver.receiver.stats)
    if notifier is not None:
        report["notifications"] = dict(notifier.stats)
    return report


def _servers(
    loop: WatchLoop, pipeline: Any, alerts: tuple[str, int], metrics_port: int
) -> list[Any]:
    servers: list[Any] = []
    host, port = alerts
    if port:
        from fleetmedic.sources.alertmanager import AlertReceiver, ReceiverServer

        try:
            receiver = ReceiverServer(AlertReceiver(loop.deliver_from_thread()), host, port).start()
        except OSError as exc:
            fail(f"cannot receive alerts on {host}:{port}: {exc.strerror or exc}")
        sys.stderr.write(f"fleetmedic: receiving Alertmanager webhooks at {receiver.url}\n")
        servers.append(receiver)
    if metrics_port:
        from prometheus_client import start_http_server

        try:
            server, _ = start_http_server(metrics_port, registry=pipeline.metrics.registry)
        except OSError as exc:
            fail(f"cannot serve metrics on port {metrics_port}: {exc.strerror}")
        servers.append(server)
    return servers


def _summary(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps({"summary": report}) + "\n")
        return
    watch_report = report["watch"]
    cached = watch_report["cached"]
    loop = watch_report["loop"]
    typer.echo(
        f"watched: {cached['pods']} pods, {cached['nodes']} nodes, {cached['jobs']} jobs cached; "
        f"{loop.get('diagnosed', 0)} diagnosed, {loop.get('resolved', 0)} resolved"
    )
    for kind, counts in watch_report["kinds"].items():
        said = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
        typer.echo(f"  {kind}: {said}")
    actions = ", ".join(f"{state} {n}" for state, n in report["actions"].items())
    typer.echo(f"heal: {report['handled']} events handled; actions: {actions or 'none'}")
    if "alerts" in report:
        typer.echo("alerts: " + ", ".join(f"{k} {v}" for k, v in sorted(report["alerts"].items())))
    typer.echo(f"time: {report['seconds']:.1f} s")
