"""The ``fleetmedic`` command. Each sub-command lives in its own module and registers on ``app``."""

from __future__ import annotations

import sys

from typer import Abort
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from fleetmedic.cli import commands as _commands  # noqa: F401  (registers the sub-commands)
from fleetmedic.cli.app import app, fail
from fleetmedic.model.errors import FleetmedicError


def main() -> None:
    """Console entry point: every intended error ends as one line on stderr and exit 2.

    Typer runs without its standalone handling so that usage errors (unknown option, missing
    argument, bad choice) come here too, instead of a multi-line usage box.
    """
    try:
        result = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
        sys.exit(0)
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "fleetmedic"
        fail(f"{exc.format_message()} (see '{command} --help')")
    except ClickException as exc:
        fail(exc.format_message())
    except FleetmedicError as exc:
        fail(str(exc))
    except Abort:
        sys.stderr.write("fleetmedic: aborted\n")
        sys.exit(1)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("fleetmedic: interrupted\n")
        sys.exit(130)
    if isinstance(result, int) and result:
        sys.exit(result)


__all__ = ["app", "main"]
