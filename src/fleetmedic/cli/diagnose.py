"""``fleetmedic diagnose``: name the root cause of a failed or stuck job from what it left behind."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json, stderr, stdout
from fleetmedic.diagnose.engine import diagnose as run_diagnosis
from fleetmedic.model.records import Diagnosis
from fleetmedic.sources.bundle import read_inputs


class Format(StrEnum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


class Engine(StrEnum):
    auto = "auto"
    hyperscan = "hyperscan"
    regex = "regex"


_OWNER_STYLE = {"user": "yellow", "platform": "cyan", "hardware": "magenta"}


@app.command()
def diagnose(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Logs (plain or .gz), pod/job/event JSON or YAML, kubectl describe "
            "output, or a directory of them for one job; '-' reads standard input.",
        ),
    ],
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="text for people; json or jsonl for tools.")
    ] = Format.text,
    engine: Annotated[
        Engine, typer.Option(help="Pattern engine: hyperscan (fast), regex (portable).")
    ] = Engine.auto,
    db: Annotated[
        Path | None,
        typer.Option(help="Also keep the diagnosis in this store (needs --job-id)."),
    ] = None,
    job_id: Annotated[
        str | None, typer.Option("--job-id", help="The job the bundle belongs to (with --db).")
    ] = None,
    attempt: Annotated[int, typer.Option(help="The job's attempt number (with --db).")] = 1,
) -> None:
    """Name the root cause of a failed ML job: category, owner, evidence lines and the fix.

    With one PATH (or a directory) the whole input is one job's bundle. With several PATHs and
    --format jsonl, each PATH is diagnosed on its own and printed as one JSON line, in order;
    otherwise all PATHs together form one bundle.
    """
    if output_format is Format.jsonl and len(paths) > 1:
        for path in paths:
            result = run_diagnosis(read_inputs([path]), name=path, engine=engine.value)
            _warn(result)
            print_json(result.model_dump(mode="json"), compact=True)
        return
    if (db is None) != (job_id is None):
        fail("--db and --job-id go together")
    name = paths[0] if len(paths) == 1 else ",".join(paths)
    result = run_diagnosis(read_inputs(paths), name=name, engine=engine.value)
    _warn(result)
    if db is not None and job_id is not None:
        from fleetmedic.store import Store
        from fleetmedic.store.writer import write_diagnosis

        with Store(db) as store:
            write_diagnosis(store, result, job_id=job_id, attempt=attempt)
    if output_format is Format.text:
        render_text(result)
    else:
        print_json(result.model_dump(mode="json"), compact=output_format is Format.jsonl)


def _warn(result: Diagnosis) -> None:
    for warning in result.warnings:
        # One line per warning whatever the terminal width: scripts read stderr line by line.
        stderr.print(f"fleetmedic: warning: {escape(warning)}", soft_wrap=True)


def _highlight(line: str, result: Diagnosis) -> Text:
    text = Text(line)
    words = [w for w in re.findall(r"[A-Za-z_][\w.]{3,}", result.summary) if len(w) > 4]
    for word in words[:6]:
        text.highlight_words([word], style="bold red", case_sensitive=False)
    return text


def render_text(result: Diagnosis) -> None:
    """The diagnosis for a person: verdict, evidence with file:line, what to do, the cascade."""
    owner_style = _OWNER_STYLE.get(result.owner, "white")
    head = Text.assemble(
        (result.category, "bold"),
        "  owner ",
        (result.owner, f"bold {owner_style}"),
        f"  confidence {result.confidence:.2f}",
        "  retryable " + ("yes" if result.retryable else "no"),
    )
    body = Text(result.summary)
    stdout.print(
        Panel(
            body,
            title=head,
            title_align="left",
            subtitle=result.signature or "",
            subtitle_align="right",
        ),
        soft_wrap=False,  # wrap the summary inside the box; evidence lines stay unwrapped
    )
    if result.evidence:
        stdout.print(Text("Evidence", style="bold"))
        for item in result.evidence:
            stdout.print(Text(f"  {item.file}:{item.line}  ", style="dim"), end="")
            stdout.print(_highlight(item.text[:300], result))
    stdout.print(Text.assemble(("What to do", "bold"), f" ({result.action.kind}): "), end="")
    stdout.print(Text(result.action.advice))
    if result.secondary:
        stdout.print(Text("Also seen (consequences or lesser findings)", style="bold"))
        for other in result.secondary:
            where = f"{other.evidence[0].file}:{other.evidence[0].line}" if other.evidence else ""
            stdout.print(
                Text(f"  - {other.category}: {other.summary}  ", style="dim")
                + Text(where, style="dim")
            )
