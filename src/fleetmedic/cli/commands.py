"""Import the sub-command modules of this package so that each registers itself on the app.

Adding a command is adding a module here that decorates a function with ``@app.command()``; no list
to keep in step. A module is named after its command (``import_`` for ``import``, underscores for
hyphens). When the command line names one command, only its module is imported: the others pull in
pandas, Ibis and PyArrow, which would cost every ``fleetmedic diagnose`` about a second and 130 MB.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import fleetmedic.cli as _package

_NOT_COMMANDS = {"app", "commands", "output"}


def command_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.iter_modules(_package.__path__)
        if info.name not in _NOT_COMMANDS and not info.name.startswith("_")
    ]


def register(argv: list[str]) -> None:
    """Import the module of the command in ``argv`` if there is one, else every command module."""
    names = command_modules()
    wanted = argv[1].replace("-", "_") if len(argv) > 1 else ""
    chosen = [name for name in names if name.rstrip("_") == wanted] or names
    for name in chosen:
        importlib.import_module(f"fleetmedic.cli.{name}")


register(sys.argv if sys.argv and sys.argv[0].endswith("fleetmedic") else [])
