"""Shared output helpers: JSON for machines, Rich for people."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

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
