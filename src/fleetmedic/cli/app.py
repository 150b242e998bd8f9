"""The Typer application that sub-command modules register on."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

app = typer.Typer(
    name="fleetmedic",
    help="Reliability for ML GPU platforms: diagnose, heal, measure, prioritize.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error on stderr and exit: how every bad input ends."""
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    sys.stderr.write(f"fleetmedic: error: {first_line}\n")
    raise SystemExit(code)


@app.callback()
def _root() -> None:
    """Reliability for ML GPU platforms: diagnose, heal, measure, prioritize."""
