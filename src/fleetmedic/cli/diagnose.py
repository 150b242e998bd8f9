"""``fleetmedic diagnose``: placeholder until the engine lands."""

from __future__ import annotations

from fleetmedic.cli.app import app


@app.command()
def diagnose() -> None:
    """Name the root cause of a failed ML job (engine in progress)."""
