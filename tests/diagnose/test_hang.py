"""Hang detection from timestamps and stack dumps, not from the word 'hang'."""

from __future__ import annotations

from collections.abc import Callable

from fleetmedic.model.records import Diagnosis

Run = Callable[..., Diagnosis]


def steps(rank: int, count: int, start_minute: int = 0) -> str:
    return "\n".join(
        f"2024-07-01 09:{start_minute + i // 30:02d}:{(i % 30) * 2:02d},000 INFO [rank{rank}] step {i} loss {2 - i / 1000:.3f}"
        for i in range(count)
    )


def test_progress_that_stops_while_the_bundle_goes_on_is_a_hang(run: Run) -> None:
    heartbeat = "\n".join(
        f"2024-07-01 09:{m:02d}:00,000 WARNING agent: worker group heartbeat ok, waiting"
        for m in range(10, 40)
    )
    result = run({"rank0.log": steps(0, 300), "rank1.log": steps(1, 300) + "\n" + heartbeat})
    assert result.category == "hang"
    assert "no progress" in result.summary
    assert result.signature == "hang.progress_stalled"


def test_a_crash_after_the_last_step_is_not_a_hang(run: Run) -> None:
    crash = "\n2024-07-01 09:10:01,000 ERROR ValueError: bad batch\n"
    later = "\n".join(f"2024-07-01 09:{m:02d}:00,000 INFO agent waiting" for m in range(20, 50))
    result = run({"rank0.log": steps(0, 300) + crash + later})
    assert result.category == "code_error"


def test_steady_progress_is_not_a_hang(run: Run) -> None:
    assert run({"rank0.log": steps(0, 600)}).category == "unknown"


def test_short_pause_relative_to_pace_is_not_a_hang(run: Run) -> None:
    tail = "\n2024-07-01 09:14:00,000 INFO saving checkpoint"
    assert run({"rank0.log": steps(0, 300) + tail}).category == "unknown"


def test_py_spy_dump_of_ranks_in_collectives(run: Run) -> None:
    dump = (
        "Process 2211: python -u pretrain.py --tp 8\n"
        "Python v3.10.12 (/usr/bin/python3.10)\n\n"
        'Thread 2211 (idle): "MainThread"\n'
        "    all_reduce (torch/distributed/distributed_c10d.py:2288)\n"
        "    reduce_gradients (megatron/core/distributed/grad_buffer.py:114)\n"
    )
    result = run({"pyspy-rank4.txt": dump})
    assert result.category == "hang"
