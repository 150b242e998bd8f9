"""Import every sub-command module of this package so that each registers itself on the app.

Adding a command is adding a module here that decorates a function with ``@app.command()``; no list
to keep in step.
"""

import importlib
import pkgutil

import fleetmedic.cli as _package

_NOT_COMMANDS = {"app", "commands", "output"}

for _info in pkgutil.iter_modules(_package.__path__):
    if _info.name not in _NOT_COMMANDS and not _info.name.startswith("_"):
        importlib.import_module(f"fleetmedic.cli.{_info.name}")
