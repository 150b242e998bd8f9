"""Fetch a failed job's logs on demand: every rank's pod, every container, the previous instance of
any container that restarted, each capped.

Why on demand: logs are the largest thing a cluster holds, and only failures need them; the
watcher keeps no log. Why capped three ways: a rank that printed 40 GB must not stall the watcher
or fill its memory, so each request asks for the last ``tail_lines`` lines and at most
``bytes_per_log`` bytes (``tailLines``, ``limitBytes``: the API server stops there), the body is
cut at the same size here as well (a proxy or an old kubelet may ignore ``limitBytes``), and a
bundle stops fetching once ``bytes_per_bundle`` is spent. The failing pods go first, so when a
1,024-rank job hits the caps the logs that matter are in.

The previous instance (``previous=true``) is where a crash-looping container's error is; the
current one has only just started. A log that cannot be had (the pod is gone, a 400 for a missing
previous instance, a timeout, binary bytes) becomes a document with a warning, never an error: the
diagnosis goes on with what there is.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx2

from fleetmedic.model.inputs import Document
from fleetmedic.sources.bundle import SNIFF_BYTES, _is_binary
from fleetmedic.sources.kube_records import PodRecord
from fleetmedic.sources.kube_watch import KubeSession, _failure


@dataclass(frozen=True)
class LogLimits:
    tail_lines: int = 5_000
    bytes_per_log: int = 1 << 20
    bytes_per_bundle: int = 32 << 20
    pods: int = 64
    concurrency: int = 8
    timeout: float = 30.0


@dataclass(frozen=True)
class PodLog:
    namespace: str
    pod: str
    container: str
    previous: bool
    data: bytes = b""
    truncated: bool = False
    error: str | None = None

    @property
    def name(self) -> str:
        suffix = ".previous" if self.previous else ""
        return f"{self.namespace}/{self.pod}/{self.container}{suffix}.log"

    def document(self) -> Document:
        """A log document for the engine; a warning instead when there is no log to read."""
        if self.error is not None:
            return Document(self.name, "log", opener=None, warnings=(f"{self.name}: {self.error}",))
        data = self.data
        warnings = (f"{self.name}: cut at {len(data)} bytes",) if self.truncated else ()
        return Document(self.name, "log", opener=lambda: io.BytesIO(data), warnings=warnings)


def wanted(pods: Sequence[PodRecord], limit: int) -> list[tuple[PodRecord, str, bool]]:
    """(pod, container, previous) to fetch: failing pods first, then by rank; previous
    instances before current ones, since they hold the crash."""
    ordered = sorted(pods, key=lambda p: (not p.problem, _rank(p.rank), p.name))[:limit]
    plan: list[tuple[PodRecord, str, bool]] = []
    for pod in ordered:
        plan.extend((pod, c, True) for c in pod.containers if c in pod.previous)
        plan.extend((pod, c, False) for c in pod.containers)
    return plan


def _rank(rank: str) -> tuple[int, str]:
    return (int(rank), "") if rank.isdigit() else (1 << 30, rank)


class LogFetcher:
    """Fetches pod logs within :class:`LogLimits`; :attr:`stats` counts what happened."""

    def __init__(self, session: KubeSession, limits: LogLimits | None = None) -> None:
        self.session = session
        self.limits = limits or LogLimits()
        self.stats: Counter[str] = Counter()

    async def for_pods(self, pods: Sequence[PodRecord]) -> list[PodLog]:
        """The logs of these pods (see :func:`wanted`), in plan order, within the bundle budget."""
        plan = wanted(pods, self.limits.pods)
        budget = [self.limits.bytes_per_bundle]
        gate = asyncio.Semaphore(self.limits.concurrency)

        async def one(pod: PodRecord, container: str, previous: bool) -> PodLog:
            async with gate:
                if budget[0] <= 0:
                    self.stats["skipped"] += 1
                    error = "not fetched: the bundle's log budget is spent"
                    return PodLog(pod.namespace, pod.name, container, previous, error=error)
                log = await self.fetch(pod.namespace, pod.name, container, previous, budget[0])
                budget[0] -= len(log.data)
                return log

        return list(await asyncio.gather(*(one(*step) for step in plan)))

    async def fetch(
        self, namespace: str, pod: str, container: str, previous: bool, budget: int | None = None
    ) -> PodLog:
        """One container's log, at most ``min(bytes_per_log, budget)`` bytes."""
        cap = min(self.limits.bytes_per_log, budget or self.limits.bytes_per_log)
        params = {"container": container, "tailLines": str(self.limits.tail_lines)}
        params["limitBytes"] = str(cap)
        if previous:
            params["previous"] = "true"
        try:
            async with asyncio.timeout(self.limits.timeout):
                data, truncated, error = await self._get(
                    f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params, cap
                )
        except TimeoutError:
            data, truncated, error = b"", False, f"no answer within {self.limits.timeout:g} s"
        except httpx2.RequestError as exc:  # refused, reset, undecodable
            data, truncated, error = b"", False, f"{type(exc).__name__}: {exc}"
        if error is None and _is_binary(data[:SNIFF_BYTES]):
            data, error = b"", "binary data, not a log"
        self._count(len(data), truncated, error)
        return PodLog(namespace, pod, container, previous, data, truncated, error)

    async def _get(
        self, path: str, params: dict[str, str], cap: int
    ) -> tuple[bytes, bool, str | None]:
        async with self.session.http.stream("GET", path, params=params) as response:
            if response.status_code != 200:
                return b"", False, str(await _failure(response))
            parts: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                parts.append(chunk[: cap - size])
                size += len(parts[-1])
                if size >= cap:
                    return b"".join(parts), True, None
        return b"".join(parts), False, None

    def _count(self, size: int, truncated: bool, error: str | None) -> None:
        self.stats["fetched"] += 1
        self.stats["bytes"] += size
        if truncated:
            self.stats["truncated"] += 1
        if error is not None:
            self.stats["binary" if error.startswith("binary") else "errors"] += 1
