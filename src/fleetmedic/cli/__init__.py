"""The ``fleetmedic`` command. Each sub-command lives in its own module and registers on ``app``."""

from __future__ import annotations

import sys

from fleetmedic.cli import commands as _commands  # noqa: F401  (registers the sub-commands)
from fleetmedic.cli.app import app, fail
from fleetmedic.model.errors import FleetmedicError


def main() -> None:
    """Console entry point: turn every intended error into one line on stderr and exit 2."""
    try:
        app(standalone_mode=True)
    except FleetmedicError as exc:
        fail(str(exc))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("fleetmedic: interrupted\n")
        sys.exit(130)


__all__ = ["app", "main"]
