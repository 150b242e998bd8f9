"""What the diagnosis engine reads: documents of a job's bundle, as sources hand them over.

A log document is opened lazily and read as a byte stream, so a multi-gigabyte file is never held in
memory. A Kubernetes document has already been parsed into fact lines: one line of plain text per
status, condition or event, written in the phrasing ``kubectl`` prints, so that one signature
catalog matches both a pasted ``kubectl describe`` and a ``kubectl get -o json`` object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal

DocumentKind = Literal["log", "k8s"]


@dataclass(frozen=True, slots=True)
class FactLine:
    """One statement derived from a Kubernetes object, with where it came from."""

    text: str
    line: int
    ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One input of a bundle: a log to stream, or facts parsed from Kubernetes objects."""

    name: str
    kind: DocumentKind
    opener: Callable[[], BinaryIO] | None = None
    facts: tuple[FactLine, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def open(self) -> BinaryIO:
        if self.opener is None:
            raise ValueError(f"{self.name} has no byte stream")
        return self.opener()
