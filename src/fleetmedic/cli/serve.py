"""``fleetmedic serve``: the web dashboard, REST API and /metrics over a store (docs/web.md)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from fleetmedic.cli.app import app, fail
from fleetmedic.heal.state import default_control_path
from fleetmedic.model.errors import FleetmedicError
from fleetmedic.store import default_db_path

LOOPBACK = "127.0.0.1"


def run_server(
    db: Path,
    control: Path,
    *,
    host: str,
    port: int,
    insecure_local: bool,
    tokens: str | None = None,
    banner: str = "",
) -> None:
    """Build the app and serve it until interrupted; bad tokens or paths exit 2 first."""
    import uvicorn

    from fleetmedic.web import create_app

    if not db.is_file():
        fail(f"no database at {db} (create one with `fleetmedic import ... --db {db}`)")
    value = os.environ.get("FLEETMEDIC_TOKENS") if tokens is None else tokens
    if not value and not insecure_local:
        fail(
            "no tokens: set FLEETMEDIC_TOKENS=name:role:token,... (roles viewer, operator, "
            "admin), or pass --insecure-local to serve 127.0.0.1 without authentication"
        )
    if not value and host != LOOPBACK:
        fail("--insecure-local serves 127.0.0.1 only; set FLEETMEDIC_TOKENS to use --host")
    try:
        web = create_app(db, control, value or None, insecure_local=insecure_local and not value)
    except FleetmedicError as exc:
        fail(str(exc))
    typer.echo(
        f"fleetmedic: serving {db} on http://{host}:{port}/ (Ctrl-C stops){banner}", err=True
    )
    # X-Forwarded-Proto is trusted from a proxy on 127.0.0.1 only (uvicorn's default): behind a
    # local TLS proxy the session cookie is then marked Secure.
    uvicorn.run(web, host=host, port=port, log_level="warning")


@app.command()
def serve(
    db: Path = typer.Option(default_db_path(), "--db", help="DuckDB store to read."),
    host: str = typer.Option(LOOPBACK, "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    control: Path = typer.Option(
        default_control_path(),
        "--control",
        envvar="FLEETMEDIC_CONTROL",
        help="The healing controller's control store (SQLite): actions, approvals, switches.",
    ),
    insecure_local: bool = typer.Option(
        False,
        "--insecure-local",
        help="Without FLEETMEDIC_TOKENS: serve 127.0.0.1 only, everyone local as admin.",
    ),
) -> None:
    """Serve the web dashboard, the REST API (/api/v1) and Prometheus /metrics.

    Tokens come from FLEETMEDIC_TOKENS="name:role:token,..." (roles viewer, operator, admin);
    tools send one as "Authorization: Bearer TOKEN", people log in with it at /login. Without
    tokens the server refuses to start unless --insecure-local.
    """
    run_server(db, control, host=host, port=port, insecure_local=insecure_local)
