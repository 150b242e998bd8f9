"""``fleetmedic prometheus poll``: DCGM and node-exporter signals into the store (docs/run-on-cluster.md)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.sources.prometheus import PollResult, PrometheusSource, save
from fleetmedic.sources.prometheus_api import Auth, PrometheusAPI
from fleetmedic.sources.prometheus_catalog import load_catalog
from fleetmedic.store import Store, default_db_path

prometheus = typer.Typer(
    help="Read GPU and node signals from Prometheus, Thanos, Mimir or VictoriaMetrics.",
    no_args_is_help=True,
)
app.add_typer(prometheus, name="prometheus")

TOKEN_ENV = "FLEETMEDIC_PROMETHEUS_TOKEN"
PASSWORD_ENV = "FLEETMEDIC_PROMETHEUS_PASSWORD"
_PENDING_LIMIT = 50


def _secret(path: Path | None, env: str) -> str | None:
    """A secret from a file (a mounted Secret) or the environment; never from the command line,
    where ``ps`` would show it."""
    if path is not None:
        try:
            return path.read_text("utf-8").strip()
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}")
    return os.environ.get(env) or None


def _duration(text: str | None, option: str) -> timedelta | None:
    """``90s``, ``15m``, ``6h``, ``2d``: Prometheus's duration units, the ones people type."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        fail(f"{option}: expected a duration like 90s, 15m, 6h or 2d, got {text!r}")
    if seconds <= 0:
        fail(f"{option}: must be positive, got {text!r}")
    return timedelta(seconds=seconds)


class _Saver:
    """Writes each poll to the store, keeping what could not be written for the next try.

    The store is opened per write and closed at once: DuckDB lets one process write a file and
    nobody read it meanwhile, so holding it open would lock out ``fleetmedic metrics`` and
    ``serve``. A locked or broken store is one error line; the rows wait (bounded) and go next time.
    """

    def __init__(self, db: Path | None) -> None:
        self.db = db
        self.pending: list[PollResult] = []

    def __call__(self, result: PollResult) -> str | None:
        if self.db is None:
            return None
        self.pending = [*self.pending[-(_PENDING_LIMIT - 1) :], result]
        merged = PollResult()
        for item in self.pending:
            merged.extend(item)
        try:
            with Store(self.db) as store:
                save(store, merged)
        except FleetmedicError as exc:
            return f"store: {exc} (kept {len(self.pending)} poll(s) for the next try)"
        except Exception as exc:  # duckdb raises its own tree (IOException on a lock): say so
            return f"store: {type(exc).__name__}: {exc} (kept for the next try)"
        self.pending = []
        return None


def _summary(result: PollResult, at: datetime, store_error: str | None) -> dict[str, object]:
    return {
        "at": at.isoformat(),
        "events": len(result.events),
        "heal_events": len(result.heal),
        "usage_rows": len(result.usage),
        "errors": result.errors + ([store_error] if store_error else []),
        "counts": dict(sorted((k, v) for k, v in result.counts.items() if v)),
    }


def _report(summary: dict[str, object], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        out.write(
            f"{summary['at']}: {summary['events']} event(s), {summary['heal_events']} heal "
            f"event(s), {summary['usage_rows']} usage row(s)\n"
        )
    errors = summary["errors"]
    assert isinstance(errors, list)
    for line in errors:
        sys.stderr.write(f"fleetmedic: error: {line}\n")
    out.flush()


def _heal_out(target: str | None) -> TextIO | None:
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    try:
        return Path(target).open("a", encoding="utf-8")  # closed by poll() at exit
    except OSError as exc:
        fail(f"cannot write heal events to {target}: {exc.strerror}")


@prometheus.command("poll")
def poll(
    url: str = typer.Option(..., "--url", help="Base URL, before /api/v1 (Mimir: .../prometheus)."),
    db: Path | None = typer.Option(
        default_db_path(), "--db", help="Store to write events and usage into."
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write to a store."),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Signal catalog (YAML); the packaged one if omitted."
    ),
    every: float = typer.Option(30.0, "--every", min=1.0, help="Seconds between polls."),
    once: bool = typer.Option(False, "--once", help="Poll once and exit."),
    backfill: str | None = typer.Option(
        None, "--backfill", help="First read this far back with range queries (e.g. 6h)."
    ),
    step: float = typer.Option(60.0, "--step", min=1.0, help="Range-query step (seconds)."),
    heal_out: str | None = typer.Option(
        None, "--heal-out", help="Append heal events (JSON lines for `heal run`) here; '-': stdout."
    ),
    token_file: Path | None = typer.Option(
        None, "--token-file", help=f"Bearer token file (else ${TOKEN_ENV})."
    ),
    username: str | None = typer.Option(None, "--username", help="HTTP basic auth user."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help=f"Basic auth password file (else ${PASSWORD_ENV})."
    ),
    org_id: str | None = typer.Option(None, "--org-id", help="X-Scope-OrgID (Mimir, Cortex)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds per request."),
    fmt: str = typer.Option("text", "--format", help="text or json (one line per poll)."),
) -> None:
    """Poll the signal catalog's queries; write events and GPU usage to the store."""
    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, got {fmt!r}")
    span = _duration(backfill, "--backfill")
    try:
        signals = load_catalog(catalog)
    except FleetmedicError as exc:
        fail(str(exc))
    token = _secret(token_file, TOKEN_ENV)
    password = _secret(password_file, PASSWORD_ENV) if username else None
    try:
        api = PrometheusAPI(url, auth=Auth(token, username, password, org_id), timeout=timeout)
    except FleetmedicError as exc:
        fail(str(exc))
    stream = _heal_out(heal_out)
    report_to = sys.stderr if heal_out == "-" else sys.stdout
    with api:
        source = PrometheusSource(api, signals)
        failed = _loop(
            source,
            _Saver(None if no_store else db),
            span,
            step,
            every,
            once,
            stream,
            lambda summary: _report(summary, fmt, report_to),
        )
    if stream is not None and stream is not sys.stdout:
        stream.close()
    if once and failed:
        raise typer.Exit(1)  # a script polling once learns that something could not be read


def _loop(
    source: PrometheusSource,
    saver: _Saver,
    span: timedelta | None,
    step: float,
    every: float,
    once: bool,
    heal: TextIO | None,
    report: Callable[[dict[str, object]], None],
) -> bool:
    """Poll until SIGTERM/Ctrl-C (or once); each poll saved, written out and reported.
    Returns whether the last poll had errors."""
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    now = datetime.now(UTC)
    first = source.backfill(now - span, now, step) if span else None
    while True:
        at = datetime.now(UTC)
        result = source.poll(at)
        if first is not None:
            first.extend(result)
            result, first = first, None
        store_error = saver(result)
        if heal is not None:
            heal.writelines(json.dumps(item, sort_keys=True) + "\n" for item in result.heal)
            heal.flush()
        summary = _summary(result, at, store_error)
        report(summary)
        if once or stop.wait(every):
            return bool(summary["errors"])
