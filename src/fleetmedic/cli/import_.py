"""``fleetmedic import``: load public GPU-cluster traces and Kubernetes dumps into the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from fleetmedic.cli.app import app, fail
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.sources.traces import ImportOptions, ImportReport, formats, import_traces
from fleetmedic.store import Store, default_db_path

_FORMAT_HELP = (
    "Trace format: acme (AcmeTrace trace_seren/kalos.csv), helios (cluster_log.csv), "
    "philly (cluster_job_log JSON), alibaba-gpu-2023 (openb_pod_list_*.csv), "
    "k8s (kubectl get pods,jobs,events,nodes -A -o json), csv (any table, with --mapping)."
)


class _Bars:
    """Rich progress bars on stderr, one per file, advanced by the runner's steps."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[name]}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def file_started(self, path: Path, steps: int) -> None:
        self.task = self.progress.add_task("starting", total=steps, name=path.name)

    def step(self, label: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=1, description=label)

    def file_done(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=task.total, description="done")


def _text(report: ImportReport) -> str:
    lines = []
    for f in report.files:
        written = ", ".join(f"{n} {t}" for t, n in f.written.as_dict().items() if n)
        lines.append(
            f"{f.path}: {f.rows_read} rows read, {f.rows_ok} ok, {f.rows_bad} bad; "
            f"wrote {written or 'nothing'} in {f.seconds:.2f}s"
        )
        for reason, count in list(f.bad_reasons.items())[:5]:
            lines.append(f"  {count} bad: {reason}")
        if len(f.bad_reasons) > 5:
            lines.append(f"  ... and {len(f.bad_reasons) - 5} more reasons (see --format json)")
    total = report.written.as_dict()
    lines.append(
        f"total: {sum(f.rows_read for f in report.files)} rows read, "
        f"{sum(f.rows_bad for f in report.files)} bad; "
        f"{total['jobs']} jobs, {total['attempts']} attempts, {total['events']} events, "
        f"{total['nodes']} nodes written to {report.db} in {report.seconds:.2f}s"
    )
    return "\n".join(lines)


_HELP = (
    "Import job traces into the store. Re-importing a file changes nothing (upserts). Rows that "
    "do not parse are counted per file and reason, never dropped silently; a file not in the "
    "expected schema stops the import before anything is written (exit 2)."
)


@app.command("import", help=_HELP)
def import_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=_FORMAT_HELP, show_default=False)],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(metavar="PATH...", help="Files to import.", show_default=False),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="DuckDB store (default: per-user data dir).")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Column-mapping YAML file (format csv only)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Cluster name for job ids when the file name lacks it."),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="Summary format: text or json.")] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Check the options, run the import, print the summary (text or JSON)."""
    if fmt not in formats():
        fail(f"unknown import format {fmt!r}; choose one of {', '.join(formats())}")
    if not paths:
        fail("no PATH given: fleetmedic import FORMAT PATH...")
    if output not in ("text", "json"):
        fail(f"unknown --format {output!r}; choose text or json")
    if mapping is not None and fmt != "csv":
        fail("--mapping is only used with format csv")
    options = ImportOptions(cluster=cluster, mapping=mapping)
    console = Console(stderr=True)
    show = not quiet and sys.stderr.isatty()
    try:
        with Store(db or default_db_path()) as store:
            if show:
                with _Bars(console) as bars:
                    report = import_traces(store, fmt, paths, options=options, progress=bars)
            else:
                report = import_traces(store, fmt, paths, options=options)
    except FleetmedicError as exc:
        fail(str(exc))
    if output == "json":
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(_text(report))
