"""Heal events from JSON lines: both shapes, every kind of bad line, and the non-blocking reader."""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading

import pytest
from healkit import diagnosis

from fleetmedic.heal.events import (
    Incoming,
    Malformed,
    parse_event,
    read_events,
    read_lines,
)


def envelope(**fields: object) -> str:
    body: dict[str, object] = {"diagnosis": diagnosis("nccl_comm", "job-1").model_dump(mode="json")}
    body.update(fields)
    return json.dumps(body)


def parsed(line: str | bytes) -> Incoming:
    result = parse_event(line, 7, "ev.jsonl")
    assert isinstance(result, Incoming), result
    return result


def refused(line: str | bytes) -> str:
    result = parse_event(line, 7, "ev.jsonl")
    assert isinstance(result, Malformed), result
    warning = result.warning()
    assert warning.startswith("ev.jsonl:7: skipped: ") and "\n" not in warning
    return result.reason


def test_envelope_with_every_field() -> None:
    item = parsed(
        envelope(
            job={"job_id": "job-1", "status": "failed", "attempts": 2},
            node="n4",
            attempt=2,
            event_id="evt-9",
            ts="2026-01-01T00:00:00Z",
        )
    )
    assert item.key == "id:evt-9" and item.line == 7 and item.ts is not None
    ev = item.event
    assert (ev.job_ref, ev.node_id, ev.attempt_no) == ("job-1", "n4", 2)
    assert ev.job is not None and ev.job.attempts == 2


def test_bare_diagnosis_as_diagnose_prints_it_takes_the_node_from_details() -> None:
    line = diagnosis("gpu_hardware", "job-3", details={"node": "n7"}).model_dump_json()
    ev = parsed(line).event
    assert (ev.job_ref, ev.node_id, ev.job) == ("job-3", "n7", None)


def test_content_key_ignores_the_job_snapshot_but_not_node_or_attempt() -> None:
    failed = parsed(envelope(job={"job_id": "job-1", "status": "failed"}, node="n1"))
    later = parsed(envelope(job={"job_id": "job-1", "status": "running", "attempts": 2}, node="n1"))
    assert failed.key == later.key and failed.key.startswith("h:")
    assert parsed(envelope(node="n2")).key != failed.key
    assert parsed(envelope(node="n1", attempt=2)).key != failed.key


def test_a_node_only_event_is_named_by_its_key() -> None:
    d = diagnosis("gpu_hardware", job_id=None, details={"node": "n7"}).model_dump(mode="json")
    with_id = parsed(json.dumps({"diagnosis": d, "event_id": "dcgm-1"}))
    assert with_id.event.ref == "id:dcgm-1"
    assert with_id.event.cause_id == "id:dcgm-1:gpu_hardware"
    hashed = parsed(json.dumps({"diagnosis": d}))
    assert hashed.event.ref == hashed.key


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"a string"', "expected a JSON object"),
        (b"\xff\xfe\x00junk\x00\x9c", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ('{"category": "nccl_comm"}', "Field required"),
        (envelope(extra=1), "extra: Extra inputs are not permitted"),
        (envelope(attempt=0), "attempt: Input should be greater than or equal to 1"),
        (envelope(ts="2026-01-01T00:00:00"), "ts: Input should have timezone info"),
        (envelope(job={"job_id": "other", "status": "failed"}), "differs from diagnosis.job_id"),
    ],
)
def test_bad_lines_become_one_line_reasons(line: str | bytes, says: str) -> None:
    assert says in refused(line)


def test_an_event_naming_neither_job_nor_node_is_refused() -> None:
    bare = diagnosis("gpu_hardware", job_id=None).model_dump_json()
    assert "names neither a job nor a node" in refused(bare)


def test_a_long_validation_error_is_cut_to_a_short_line() -> None:
    reason = refused(json.dumps({f"field{i}": i for i in range(200)}))
    assert len(reason) <= 300 and "more)" in reason


class Lazy(io.RawIOBase):
    """A stream of ``size`` bytes of 'x' then ``tail``, made up as it is read (never in memory)."""

    def __init__(self, size: int, tail: bytes) -> None:
        self.left, self.tail = size, tail

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        if self.left > 0:
            step = min(n, self.left)
            self.left -= step
            return b"x" * step
        out, self.tail = self.tail[:n], self.tail[n:]
        return out


async def collect(stream: io.RawIOBase | io.BytesIO, **kw: int) -> list[tuple[int, bytes | None]]:
    return [item async for item in read_lines(stream, **kw)]  # type: ignore[arg-type]


def test_lines_are_numbered_and_a_last_line_needs_no_newline() -> None:
    lines = asyncio.run(collect(io.BytesIO(b"a\n\nbb\r\nccc"), chunk=2))
    assert lines == [(1, b"a"), (2, b""), (3, b"bb\r"), (4, b"ccc")]


def test_a_50_mb_line_is_skipped_without_keeping_it() -> None:
    good = envelope(node="n1").encode()
    stream = Lazy(50 * 1024 * 1024, b"\n" + good + b"\n")
    items = asyncio.run(collect(stream, max_line=1 << 20))
    assert items == [(1, None), (2, good)]


def test_read_events_counts_the_bad_line_and_goes_on() -> None:
    text = f"{envelope(node='n1')}\n\nnot json\n{'y' * 5000}\n{envelope(node='n2')}\n"

    async def main() -> list[Incoming | Malformed]:
        stream = io.BytesIO(text.encode())
        return [item async for item in read_events(stream, "ev.jsonl", max_line=4096)]

    items = asyncio.run(main())
    assert [type(i).__name__ for i in items] == ["Incoming", "Malformed", "Malformed", "Incoming"]
    bad = [i for i in items if isinstance(i, Malformed)]
    assert [b.line for b in bad] == [3, 4]
    assert bad[1].reason == "line longer than 4096 bytes"


def test_a_read_error_ends_the_source_with_a_warning() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read1(self, n: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    async def main() -> list[Incoming | Malformed]:
        return [item async for item in read_events(Broken(), "dev")]  # type: ignore[arg-type]

    (item,) = asyncio.run(main())
    assert isinstance(item, Malformed) and "read error" in item.reason


def test_waiting_on_an_idle_pipe_does_not_block_the_loop() -> None:
    read_fd, write_fd = os.pipe()

    async def main() -> tuple[int, list[tuple[int, bytes | None]]]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        with os.fdopen(read_fd, "rb") as stream:
            lines = read_lines(stream)
            first = asyncio.ensure_future(anext(lines))
            await asyncio.sleep(0.2)  # the reader thread is blocked in read(); the loop is not
            assert not first.done()
            threading.Thread(target=os.write, args=(write_fd, b"late line\n")).start()
            got = [await first]
            os.close(write_fd)
            got += [item async for item in lines]
        ticker.cancel()
        return ticks, got

    ticks, got = asyncio.run(main())
    assert ticks >= 5
    assert got == [(1, b"late line")]
