"""The answer cache: hits, stale-while-revalidate, single flight, file changes, TTL 0."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from fleetmedic.web.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_miss_then_hit_then_stale_refreshed_in_the_background() -> None:
    clock, calls = Clock(), []
    cache = ResultCache(ttl=60, clock=clock)

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert (cache.get("k", "file-1", compute).value, cache.get("k", "file-1", compute).state) == (
        1,
        "hit",
    )
    clock.now = 61
    stale = cache.get("k", "file-1", compute)
    assert (stale.value, stale.state) == (1, "stale")  # the old answer, at once
    wait_for(lambda: cache.peek("k") == 2)
    assert cache.get("k", "file-1", compute).value == 2


def test_a_changed_store_file_makes_the_answer_stale() -> None:
    cache = ResultCache(ttl=600, clock=Clock())
    cache.get("k", "inode-1", lambda: "old")

    assert cache.get("k", "inode-2", lambda: "new").state == "stale"
    wait_for(lambda: cache.peek("k") == "new")


def test_concurrent_misses_share_one_computation() -> None:
    cache, calls, gate = ResultCache(ttl=60), [], threading.Event()

    def slow() -> str:
        calls.append(1)
        gate.wait(5)
        return "done"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", 1, slow).value))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)

    assert results == ["done"] * 8 and len(calls) == 1


def test_lookup_never_blocks_and_ttl_zero_turns_caching_off() -> None:
    cache = ResultCache(ttl=60)
    assert cache.lookup("k", 1, lambda: 1) is None
    cache.get("k", 1, lambda: 1)
    found = cache.lookup("k", 1, lambda: 2)
    assert found is not None and found.value == 1

    off, calls = ResultCache(ttl=0), []
    for _ in range(3):
        assert off.get("k", 1, lambda: calls.append(1) or len(calls)).state == "off"
    assert len(calls) == 3


def test_a_failed_computation_is_not_kept() -> None:
    cache = ResultCache(ttl=60)

    def broken() -> int:
        raise RuntimeError("boom")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            cache.get("k", 1, broken)
    assert cache.get("k", 1, lambda: 3).value == 3
