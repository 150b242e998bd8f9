"""Heal events from JSON lines, for the event pipeline (docs/heal-pipeline.md).

A line is either an envelope ``{"diagnosis": {...}, "job": {...}, "node": "...", "attempt": n,
"event_id": "...", "ts": "..."}`` (only ``diagnosis`` required) or a bare diagnosis, which is what
``fleetmedic diagnose --format jsonl`` prints; a bare diagnosis takes its node from
``details["node"]``. An event must name a job (``diagnosis.job_id`` or ``job.job_id``) or a node,
else there is nothing to act on and the line is refused here. A node-only event (a diagnosis of a
node, no job) is named for the controller by its ``event_id``, else by its content hash, so a
resent copy is still the same cause.

The streams come from other programs (a pipe, a file an agent appends to), so a bad line — not
JSON, the wrong shape, binary junk, a 50 MB line — becomes a :class:`Malformed` with its line
number and a one-line reason, never an exception, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from fleetmedic.heal.controller import HealEvent
from fleetmedic.model.records import Diagnosis, Job

MAX_LINE_BYTES = 1 << 20
"""Longest line kept (1 MiB; a real diagnosis is 2 to 4 KB). Longer lines are skipped unread."""
CHUNK_BYTES = 1 << 16
_REASON_CHARS = 300


class Envelope(BaseModel):
    """A diagnosis with the context the controller needs; what a watcher or an agent sends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    diagnosis: Diagnosis
    job: Job | None = None
    node: str | None = Field(default=None, min_length=1)
    attempt: int | None = Field(default=None, ge=1)
    event_id: str | None = Field(default=None, min_length=1)
    ts: AwareDatetime | None = None


@dataclass(frozen=True)
class Incoming:
    """A valid event and its de-duplication key (the source's event id, else a content hash).

    ``arrived`` (``time.perf_counter()``) is when the event reached us, for a source that knows
    better than the moment it hands the event over (a paced replay); latency is counted from it.
    """

    event: HealEvent
    key: str
    line: int = 0
    source: str = "<events>"
    ts: datetime | None = None
    arrived: float | None = None


@dataclass(frozen=True)
class Malformed:
    """A line that is not an event, with why: reported as one warning and counted."""

    line: int
    reason: str
    source: str = "<events>"

    def warning(self) -> str:
        return f"{self.source}:{self.line}: skipped: {self.reason}"


def content_key(event: HealEvent) -> str:
    """What makes two events "the same" without an event id: diagnosis, node and attempt.

    The job snapshot is left out on purpose: the same failure reported again with a fresher job
    status is still the same failure.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(event.diagnosis.model_dump_json().encode("utf-8"))
    digest.update(f"\x1f{event.node_id or ''}\x1f{event.attempt_no}".encode())
    return "h:" + digest.hexdigest()


def _one_line(error: ValidationError) -> str:
    parts = []
    for err in error.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"]) or "(top)"
        parts.append(f"{where}: {err['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _reason(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _REASON_CHARS else flat[: _REASON_CHARS - 1] + "…"


def _validate(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise TypeError(f"expected a JSON object, got {type(raw).__name__}")
    if "diagnosis" in raw:
        return Envelope.model_validate(raw)
    return Envelope(diagnosis=Diagnosis.model_validate(raw))


def _event(envelope: Envelope) -> tuple[HealEvent, str]:
    """The event and its de-duplication key; a job-less event is named by that key."""
    diagnosis, job = envelope.diagnosis, envelope.job
    if diagnosis.job_id is not None and job is not None and job.job_id != diagnosis.job_id:
        raise LookupError(f"job.job_id {job.job_id!r} differs from diagnosis.job_id")
    event = HealEvent(diagnosis=diagnosis, job=job, node=envelope.node, attempt=envelope.attempt)
    if event.job_ref is None and event.node_id is None:
        raise LookupError(
            "names neither a job nor a node, so there is nothing to act on: set "
            'diagnosis.job_id or details.node, or send {"diagnosis": ..., "job": ..., "node": ...}'
        )
    key = f"id:{envelope.event_id}" if envelope.event_id else content_key(event)
    if event.job_ref is None:  # a node-only event: its cause is named by the event itself
        event = replace(event, ref=key)
    return event, key


def parse_event(raw: bytes | str, line: int = 0, source: str = "<events>") -> Incoming | Malformed:
    """One line of JSON to an event, or the reason it is not one (never raises)."""
    try:
        envelope = _validate(json.loads(raw))
        event, key = _event(envelope)
    except ValidationError as exc:
        return Malformed(line, _reason(_one_line(exc)), source)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
        return Malformed(line, _reason(f"not JSON: {exc}"), source)
    except (TypeError, LookupError) as exc:
        return Malformed(line, _reason(str(exc)), source)
    return Incoming(event, key, line, source, envelope.ts)


class _Splitter:
    """Cuts blocks of bytes into numbered lines, dropping any line longer than ``limit``.

    An over-long line is yielded as ``None`` once its end is found; its bytes are never kept, so a
    50 MB line costs the time to read it, not the memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.number = 0
        self.pending = bytearray()
        self.skipping = False

    def feed(self, block: bytes) -> list[tuple[int, bytes | None]]:
        lines: list[tuple[int, bytes | None]] = []
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            lines.append(self._line(block[start:end]))
            start = end + 1
        self._keep(block[start:])
        return lines

    def end(self) -> list[tuple[int, bytes | None]]:
        if self.skipping or self.pending:
            return [self._line(b"")]
        return []

    def _line(self, tail: bytes) -> tuple[int, bytes | None]:
        self.number += 1
        too_long = self.skipping or len(self.pending) + len(tail) > self.limit
        text = None if too_long else (bytes(self.pending) + tail if self.pending else tail)
        self.pending.clear()
        self.skipping = False
        return self.number, text

    def _keep(self, rest: bytes) -> None:
        if self.skipping:
            return
        if len(self.pending) + len(rest) > self.limit:
            self.skipping = True
            self.pending.clear()
        else:
            self.pending += rest


class _Reader:
    """Blocking reads in a daemon thread, handed to the loop a few blocks ahead of the parser."""

    def __init__(self, stream: BinaryIO, chunk: int, ahead: int = 4) -> None:
        self.read = getattr(stream, "read1", stream.read)
        self.chunk = chunk
        self.blocks: asyncio.Queue[bytes | OSError] = asyncio.Queue()
        self.slots = threading.Semaphore(ahead)
        self.closed = False
        self.loop = asyncio.get_running_loop()

    def start(self) -> None:
        threading.Thread(target=self._pump, name="fleetmedic-events", daemon=True).start()

    def _pump(self) -> None:
        while True:
            self.slots.acquire()
            if self.closed:
                return
            try:
                block: bytes | OSError = self.read(self.chunk)
            except OSError as exc:
                block = exc
            except ValueError as exc:  # the file was closed under us
                block = OSError(f"stream closed: {exc}")
            try:
                self.loop.call_soon_threadsafe(self.blocks.put_nowait, block)
            except RuntimeError:  # the loop is closed: nobody wants the rest
                return
            if not isinstance(block, bytes) or not block:
                return

    async def next(self) -> bytes:
        block = await self.blocks.get()
        self.slots.release()
        if not isinstance(block, bytes):
            raise block
        return block

    def close(self) -> None:
        self.closed = True
        self.slots.release()


async def read_lines(
    stream: BinaryIO, *, max_line: int = MAX_LINE_BYTES, chunk: int = CHUNK_BYTES
) -> AsyncIterator[tuple[int, bytes | None]]:
    """Numbered lines of ``stream`` (``None`` for a line over ``max_line``), without blocking.

    The reads happen in a daemon thread rather than the loop's default executor: a read from an
    idle pipe can block forever, and a daemon thread cannot keep the process from exiting on
    SIGTERM. ``read1`` returns what a pipe has now, so a live stream's lines arrive as they are
    written; the thread reads at most a few blocks ahead (back-pressure). A read error is raised
    here, as ``OSError``.
    """
    reader = _Reader(stream, chunk)
    reader.start()
    splitter = _Splitter(max_line)
    try:
        while block := await reader.next():
            for item in splitter.feed(block):
                yield item
        for item in splitter.end():
            yield item
    finally:
        reader.close()


async def read_events(
    stream: BinaryIO, source: str = "<events>", *, max_line: int = MAX_LINE_BYTES
) -> AsyncIterator[Incoming | Malformed]:
    """Every non-blank line of ``stream`` as an event or a :class:`Malformed`.

    A read error (a vanished file, an I/O error) ends this source with one :class:`Malformed`.
    """
    number = 0
    try:
        async for number, raw in read_lines(stream, max_line=max_line):
            if raw is None:
                yield Malformed(number, f"line longer than {max_line} bytes", source)
            elif raw.strip():
                yield parse_event(raw, number, source)
    except OSError as exc:
        yield Malformed(number + 1, _reason(f"read error, stopped reading: {exc}"), source)
