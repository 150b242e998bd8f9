"""Shared output helpers: JSON for machines, Rich for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def print_json(obj: Any, *, compact: bool = False) -> None:
    """Plain JSON on stdout (no colour, no wrapping): what other tools parse."""
    text = json.dumps(
        obj,
        ensure_ascii=False,
        separators=(",", ":") if compact else None,
        indent=None if compact else 2,
        default=str,
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, float], None] | None]:
    """Rich progress bars on stderr, one per stage, when it is a terminal; nothing otherwise.

    Yields ``update(stage, fraction)`` for long work (simulation, import) to report through.
    """
    if not enabled:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, fraction: float) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=1.0)
        bars.update(tasks[stage], completed=fraction)

    with bars:
        yield update
