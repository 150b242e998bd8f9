"""``fleetmedic ticket ...``: triage a user's ticket, import a tracker's export, ticket KPIs."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.cli.output import print_json, progress_bars
from fleetmedic.kpi.priorities_owners import load_owner_map
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import Store, default_db_path

ticket = typer.Typer(
    help="Ticket triage: why did my job fail? (docs/tickets.md)", no_args_is_help=True
)
app.add_typer(ticket, name="ticket")

MAX_INPUT_BYTES = 32 * 1024 * 1024
"""Bytes read from a file or standard input; a bigger ticket is cut (and says so)."""
TRIAGE_FORMATS = ("text", "json", "markdown", "html")
_DB = typer.Option(default_db_path(), "--db", help="DuckDB store to read (and write with --save).")


def _read_bytes(text: str | None, file: Path | None) -> tuple[bytes, str]:
    if file is not None and text is not None:
        fail("give the ticket as TEXT, '-' or --file, not both")
    if file is not None:
        try:
            with open(file, "rb") as stream:
                return stream.read(MAX_INPUT_BYTES), str(file)
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
    if text == "-":
        return sys.stdin.buffer.read(MAX_INPUT_BYTES), "standard input"
    if text is None:
        fail("give the ticket text, '-' for standard input, or --file FILE")
    return text.encode("utf-8", errors="replace"), "TEXT"


def _when(value: str | None, option: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: not an ISO date or date-time: {value!r} (e.g. 2024-06-03T14:00Z)")
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@contextmanager
def _store(db: Path, write: bool) -> Iterator[Store]:
    if not write and not db.is_file():
        fail(f"no database at {db} (create one with `fleetmedic import ... --db {db}`)")
    try:
        with Store(db, read_only=not write) as store:
            yield store
    except FleetmedicError as exc:
        fail(str(exc))


@ticket.command()
def triage(
    text: str | None = typer.Argument(
        None, metavar="[TEXT]", help="The ticket's text; '-' reads standard input."
    ),
    file: Path | None = typer.Option(None, "--file", help="Read the ticket from this file."),
    user: str | None = typer.Option(None, "--user", help="Who filed it (as jobs name users)."),
    at: str | None = typer.Option(None, "--at", help="When it was filed (ISO, UTC). Default: now."),
    ticket_id: str | None = typer.Option(None, "--id", help="The tracker's id. Default: a hash."),
    title: str | None = typer.Option(None, "--title", help="The ticket's title or summary."),
    db: Path = _DB,
    fmt: str = typer.Option("text", "--format", help="text, json, markdown or html (the answer)."),
    save: bool = typer.Option(False, "--save", help="Keep the ticket and its triage in the store."),
    known_issues: Path | None = typer.Option(
        None, "--known-issues", help="Known-issue catalog YAML (default: packaged)."
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Triage rules YAML (default: packaged)."
    ),
    owners: Path | None = typer.Option(
        None, "--owners", help="Owner-to-team mapping YAML, as for `fleetmedic priorities`."
    ),
    rewrite: bool = typer.Option(
        False, "--rewrite", help="Reword the draft with the LLM at $FLEETMEDIC_LLM_URL (optional)."
    ),
) -> None:
    """Triage one ticket: its jobs and their diagnoses, incident, similar tickets, a draft answer."""
    from fleetmedic.tickets import render
    from fleetmedic.tickets.catalog import load_catalog
    from fleetmedic.tickets.models import TicketIn
    from fleetmedic.tickets.rewrite import RewriteError
    from fleetmedic.tickets.rewrite import rewrite as reword
    from fleetmedic.tickets.rules import load_rules
    from fleetmedic.tickets.save import save_triage
    from fleetmedic.tickets.text import clean, decode
    from fleetmedic.tickets.triage import Settings, render_draft
    from fleetmedic.tickets.triage import triage as run_triage

    if fmt not in TRIAGE_FORMATS:
        fail(f"--format must be one of {', '.join(TRIAGE_FORMATS)}, got {fmt!r}")
    data, label = _read_bytes(text, file)
    created = _when(at, "--at")
    try:
        body, warnings = clean(decode(data, label))
        if len(data) >= MAX_INPUT_BYTES:
            warnings.append(f"input longer than {MAX_INPUT_BYTES:,} bytes: read the first part")
        if not body.strip():
            fail(f"{label}: the ticket is empty")
        settings = Settings(
            catalog=load_catalog(known_issues),
            rules=load_rules(rules),
            owners=load_owner_map(owners),
        )
        digest = hashlib.sha256(f"{user}\x1f{created.isoformat()}\x1f{body}".encode()).hexdigest()
        incoming = TicketIn(
            ticket_id=ticket_id or f"T-{digest[:12]}",
            text=body,
            title=clean(title)[0] if title else None,
            user=user,
            created_at=created,
        )
        with _store(db, save) as store:
            result = run_triage(store.con, incoming, settings)
            result = result.model_copy(update={"warnings": (*warnings, *result.warnings)})
            if rewrite:
                try:
                    result = result.model_copy(update={"draft": reword(result.draft)})
                except RewriteError as exc:
                    sys.stderr.write(f"fleetmedic: warning: {exc}; kept the templated draft\n")
            if save:
                save_triage(store.con, result, datetime.now(UTC))
    except FleetmedicError as exc:
        fail(str(exc))
    for warning in result.warnings:
        sys.stderr.write(f"fleetmedic: warning: {warning}\n")
    if fmt == "json":
        print_json(result.model_dump(mode="json"))
    elif fmt == "markdown":
        typer.echo(render.to_markdown(result), nl=False)
    elif fmt == "html":
        typer.echo(render_draft(result, settings, "html"), nl=False)
    else:
        answer = result.draft if rewrite else render_draft(result, settings, "text")
        typer.echo(render.to_text(result, answer), nl=False)


def _overrides(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column:
            fail(f"--map expects FIELD=COLUMN, got {pair!r}")
        found[name.strip()] = column
    return found


@ticket.command("import")
def import_(
    path: Path = typer.Argument(..., metavar="FILE", help="The tracker's export."),
    fmt: str = typer.Option(..., "--format", help="jira (JSON export), csv or jsonl."),
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to write."),
    mapping: list[str] = typer.Option(
        [],
        "--map",
        help="CSV: FIELD=COLUMN (fields: ticket_id title text user created_at "
        "status first_answer_at resolved_at); repeat it.",
    ),
    full: bool = typer.Option(
        False, "--triage", help="Triage every ticket fully (slow: for small exports)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import tickets from a tracker export; malformed rows are counted, not fatal."""
    from fleetmedic.tickets.importers import read_file
    from fleetmedic.tickets.ingest import ingest
    from fleetmedic.tickets.triage import Settings

    overrides = _overrides(mapping)
    try:
        parsed = read_file(path, fmt, overrides)
        with _store(db, True) as store, progress_bars(sys.stderr.isatty()) as update:
            report = ingest(
                store,
                parsed,
                fmt=fmt,
                path=str(path),
                settings=Settings(),
                full_triage=full,
                progress=update,
            )
    except FleetmedicError as exc:
        fail(str(exc))
    if as_json:
        print_json(report.as_dict())
        return
    typer.echo(
        f"{report.imported:,} tickets imported from {path} ({report.read:,} read, "
        f"{report.bad:,} malformed, {report.linked:,} linked to jobs) in {report.seconds:.1f} s"
    )
    for problem in report.problems:
        sys.stderr.write(f"fleetmedic: skipped {problem}\n")


@ticket.command()
def stats(
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read."),
    since: str | None = typer.Option(None, "--since", help="Start (ISO, UTC). Default: first."),
    until: str | None = typer.Option(None, "--until", help="End, exclusive. Default: after last."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Ticket KPIs: volume by category, auto-answered share, time to first answer, repeats."""
    from fleetmedic.tickets.kpis import ticket_kpis

    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, got {fmt!r}")
    start = _when(since, "--since").replace(tzinfo=None) if since else None
    end = _when(until, "--until").replace(tzinfo=None) if until else None
    with _store(db, False) as store:
        result = ticket_kpis(store.con, start, end)
    if fmt == "json":
        print_json(result)
        return
    typer.echo(_stats_text(result), nl=False)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _stats_text(r: dict[str, Any]) -> str:
    t, auto, tfa = r["tickets"], r["auto_answered"], r["time_to_first_answer_hours"]
    rep, period = r["repeat_tickets"], r["period"]
    lines = [
        f"Tickets {period['since']} → {period['until']}",
        f"  total {t['total']:,}, open {t['open']:,}, linked to jobs {t['linked_to_jobs']:,}",
        f"  auto-answered {_pct(auto['share_of_triaged'])} of triaged",
        f"  time to first answer p50 {tfa['p50']} h, p90 {tfa['p90']} h",
        f"  tickets per 1,000 jobs {r['tickets_per_1000_jobs']}",
        f"  repeat tickets {rep['total']:,} ({_pct(rep['share'])})",
        "By category",
    ]
    lines += [f"  {name:<24} {n:>7,}" for name, n in t["by_category"].items()]
    if rep["by_cause"]:
        lines.append("Repeats by root cause")
        lines += [
            f"  {c['cause']:<48} {c['repeats']:>5} of {c['tickets']}" for c in rep["by_cause"][:10]
        ]
    return "\n".join(lines) + "\n"
