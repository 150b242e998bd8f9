"""A gang scheduler over 8-GPU nodes: priorities, team quotas, preemption, all-or-nothing placement.

It behaves like Kubernetes with a batch admission layer (Kueue/Volcano style), reduced to what
decides where GPU time goes:

* jobs of 8+ GPUs take whole nodes, all of them at once or none (gang); smaller jobs share a node,
  best fit, so whole nodes stay free for gangs;
* one queue per node pool, ordered by priority, then jobs inside their team's quota before jobs
  that would borrow beyond it, then arrival; smaller jobs backfill around a blocked one;
* a team over its quota still runs (it borrows idle capacity), but only jobs inside their team's
  quota may preempt, as in Kueue's cohorts;
* a job that does not fit may preempt running jobs of lower effective priority (lowest priority
  first, then the smallest, then the most recently started: who loses least). A multi-node job may also preempt
  smaller jobs of its own priority that have run for 2 hours once it has waited 2 hours, Meta's RSC
  rule that lets large jobs start without draining the cluster (Kokolis et al., 2024).

Hot path: plain sets of node indices per pool and free-GPU count; no per-GPU objects.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

from fleetmedic.sim.config import GPUS_PER_NODE
from fleetmedic.sim.workload import PRIORITY_LOW

SEARCH_BACKOFF = 300.0  # seconds before a job that found no victims looks again
MAX_SEARCHES = 2  # preemption searches per pool per pass


class Queued(Protocol):
    """What the scheduler needs to know of a pending job."""

    idx: int
    gpus: int
    pool: str
    team: str
    priority: int
    queued_at: float
    excluded: set[int]
    next_search: float


@dataclass(slots=True)
class Node:
    idx: int
    name: str
    pool: str
    free: int = GPUS_PER_NODE
    jobs: dict[int, int] = field(default_factory=dict)  # job idx -> GPUs held here
    up: bool = True
    cordoned: bool = False

    @property
    def schedulable(self) -> bool:
        return self.up and not self.cordoned


@dataclass(slots=True)
class Running:
    priority: int  # effective: borrowed jobs run at PRIORITY_LOW
    start: float
    gpus: int
    pool: str
    team: str
    nodes: tuple[int, ...]


@dataclass(slots=True)
class Pool:
    name: str
    nodes: list[int]
    whole: set[int] = field(default_factory=set)  # schedulable and fully free
    partial: list[set[int]] = field(default_factory=lambda: [set() for _ in range(GPUS_PER_NODE)])
    free_gpus: int = 0
    queue: list[tuple[int, int, float, int]] = field(default_factory=list)
    """Keys (-priority, over quota, queued_at, idx), kept sorted."""
    dirty: bool = True
    last_pass: float = 0.0


@dataclass(frozen=True, slots=True)
class Placement:
    job: int
    nodes: tuple[int, ...]
    priority: int
    victims: tuple[int, ...]


class GangScheduler:
    """Node state, queues and the placement pass. The engine owns time and job state."""

    def __init__(
        self, node_pools: list[tuple[str, str]], quotas: dict[str, int], preempt_after: float
    ) -> None:
        self.nodes = [Node(i, name, pool) for i, (name, pool) in enumerate(node_pools)]
        self.pools: dict[str, Pool] = {}
        for node in self.nodes:
            self.pools.setdefault(node.pool, Pool(node.pool, [])).nodes.append(node.idx)
        for node in self.nodes:
            self._index(node)
        self.quotas = quotas
        self.used: dict[str, int] = dict.fromkeys(quotas, 0)
        self.running: dict[int, Running] = {}
        self.by_pool: dict[str, set[int]] = {name: set() for name in self.pools}
        self.waiting: dict[int, Queued] = {}
        self.keys: dict[int, tuple[int, int, float, int]] = {}
        self.preempt_after = preempt_after

    # -- node bookkeeping -------------------------------------------------------------------
    def _index(self, node: Node) -> None:
        if not node.schedulable:
            return
        pool = self.pools[node.pool]
        pool.free_gpus += node.free
        if node.free == GPUS_PER_NODE:
            pool.whole.add(node.idx)
        elif node.free > 0:
            pool.partial[node.free].add(node.idx)
        pool.dirty = True

    def _unindex(self, node: Node) -> None:
        if not node.schedulable:
            return
        pool = self.pools[node.pool]
        pool.free_gpus -= node.free
        pool.whole.discard(node.idx)
        if 0 < node.free < GPUS_PER_NODE:
            pool.partial[node.free].discard(node.idx)

    def set_up(self, idx: int, up: bool) -> None:
        node = self.nodes[idx]
        self._unindex(node)
        node.up = up
        self._index(node)

    def set_cordoned(self, idx: int, cordoned: bool) -> None:
        node = self.nodes[idx]
        self._unindex(node)
        node.cordoned = cordoned
        self._index(node)

    def _take(self, job: int, gpus: int, idx: int) -> None:
        node = self.nodes[idx]
        self._unindex(node)
        node.free -= gpus
        node.jobs[job] = gpus
        self._index(node)

    def _give(self, job: int, idx: int) -> None:
        node = self.nodes[idx]
        self._unindex(node)
        node.free += node.jobs.pop(job)
        self._index(node)

    # -- queue ------------------------------------------------------------------------------
    def enqueue(self, job: Queued) -> None:
        pool = self.pools[job.pool]
        key = (-job.priority, 0 if self._within_quota(job) else 1, job.queued_at, job.idx)
        bisect.insort(pool.queue, key)
        self.waiting[job.idx] = job
        self.keys[job.idx] = key
        pool.dirty = True

    def dequeue(self, idx: int) -> None:
        job = self.waiting.pop(idx, None)
        if job is None:
            return
        pool = self.pools[job.pool]
        key = self.keys.pop(idx)
        at = bisect.bisect_left(pool.queue, key)
        if at < len(pool.queue) and pool.queue[at] == key:
            pool.queue.pop(at)

    def release(self, job: int) -> Running | None:
        """Free a job's GPUs (its attempt ended); returns what it held."""
        run = self.running.pop(job, None)
        if run is None:
            return None
        self.by_pool[run.pool].discard(job)
        for idx in run.nodes:
            self._give(job, idx)
        self.used[run.team] = self.used.get(run.team, 0) - run.gpus
        return run

    # -- placement --------------------------------------------------------------------------
    def schedule(self, now: float) -> list[Placement]:
        """One pass over every pool whose state changed; applies and returns the placements."""
        out: list[Placement] = []
        for name in sorted(self.pools):
            pool = self.pools[name]
            # Time alone can make a job placeable (the 2-hour preemption rule): look again
            # every SEARCH_BACKOFF even when nothing changed.
            if pool.queue and (pool.dirty or now - pool.last_pass >= SEARCH_BACKOFF):
                pool.last_pass = now
                out.extend(self._pass(pool, now))
            pool.dirty = False
        return out

    def _pass(self, pool: Pool, now: float) -> list[Placement]:
        out: list[Placement] = []
        searches = 0
        for key in list(pool.queue):
            if pool.free_gpus == 0 and searches >= MAX_SEARCHES:
                break
            job = self.waiting[key[3]]
            nodes = self._free_nodes(pool, job)
            victims: tuple[int, ...] = ()
            if nodes is None and searches < MAX_SEARCHES and job.next_search <= now:
                searches += 1
                job.next_search = now + SEARCH_BACKOFF
                found = self._victims(pool, job, now) if self._may_preempt(pool, job, now) else None
                if found is not None:
                    victims = found
                    for victim in victims:
                        self.release(victim)
                    nodes = self._free_nodes(pool, job)
            if nodes is None:
                continue
            self.dequeue(job.idx)
            out.append(self._allocate(job, nodes, now, victims))
        return out

    def _allocate(
        self, job: Queued, nodes: tuple[int, ...], now: float, victims: tuple[int, ...]
    ) -> Placement:
        per_node = min(job.gpus, GPUS_PER_NODE)
        for idx in nodes:
            self._take(job.idx, per_node, idx)
        priority = job.priority
        self.used[job.team] = self.used.get(job.team, 0) + job.gpus
        self.running[job.idx] = Running(priority, now, job.gpus, job.pool, job.team, nodes)
        self.by_pool[job.pool].add(job.idx)
        return Placement(job.idx, nodes, priority, victims)

    def place_on(self, job: Queued, nodes: tuple[int, ...], now: float) -> Placement | None:
        """Place ``job`` on exactly ``nodes`` if they can take it now (an in-place restart)."""
        per_node = min(job.gpus, GPUS_PER_NODE)
        if not nodes or job.idx in self.running:
            return None
        for idx in nodes:
            node = self.nodes[idx]
            if not node.schedulable or node.free < per_node or idx in job.excluded:
                return None
        return self._allocate(job, nodes, now, ())

    def _free_nodes(self, pool: Pool, job: Queued) -> tuple[int, ...] | None:
        """Free capacity that fits the whole job now, or None (all or nothing)."""
        if job.gpus > pool.free_gpus:
            return None
        if job.gpus >= GPUS_PER_NODE:
            need = job.gpus // GPUS_PER_NODE
            if len(pool.whole) < need:
                return None
            candidates = sorted(pool.whole - job.excluded) if job.excluded else sorted(pool.whole)
            return tuple(candidates[:need]) if len(candidates) >= need else None
        for free in range(job.gpus, GPUS_PER_NODE):
            bucket = pool.partial[free]
            if bucket:
                usable = bucket - job.excluded if job.excluded else bucket
                if usable:
                    return (min(usable),)
        usable = pool.whole - job.excluded if job.excluded else pool.whole
        return (min(usable),) if usable else None

    # -- preemption -------------------------------------------------------------------------
    def _eligible(self, job: Queued, victim: Running, now: float) -> bool:
        if victim.priority < job.priority:
            return True
        return (
            job.gpus > GPUS_PER_NODE
            and victim.priority == job.priority
            and victim.gpus < job.gpus
            and now - victim.start >= self.preempt_after
            and now - job.queued_at >= self.preempt_after
        )

    def _within_quota(self, job: Queued) -> bool:
        return self.used.get(job.team, 0) + job.gpus <= self.quotas.get(job.team, 0)

    def _may_preempt(self, pool: Pool, job: Queued, now: float) -> bool:
        """Cheap test before the node scan: could enough GPUs be freed at all?

        Only a job that would run inside its team's quota (or a high-priority one) preempts:
        borrowing capacity never takes it from others, as in Kueue's cohorts.
        """
        if job.priority <= PRIORITY_LOW * 5 and not self._within_quota(job):
            return False
        freeable = pool.free_gpus
        for other in self.by_pool[pool.name]:
            run = self.running[other]
            if self._eligible(job, run, now):
                freeable += run.gpus
                if freeable >= job.gpus:
                    return True
        return False

    def _cost(self, job: int) -> tuple[int, int, float]:
        """Preemption cost: lowest priority first, then the smallest job, then the newest."""
        run = self.running[job]
        return (run.priority, run.gpus, -run.start)

    def _victims(self, pool: Pool, job: Queued, now: float) -> tuple[int, ...] | None:
        """Jobs to preempt so that ``job`` fits, cheapest first; None when it cannot fit."""
        options: list[tuple[tuple[int, int, float], int, tuple[int, ...]]] = []
        for idx in pool.nodes:
            node = self.nodes[idx]
            if not node.schedulable or idx in job.excluded:
                continue
            occupants = sorted(node.jobs, key=self._cost)
            if any(not self._eligible(job, self.running[o], now) for o in occupants):
                if job.gpus >= GPUS_PER_NODE:
                    continue
                occupants = [o for o in occupants if self._eligible(job, self.running[o], now)]
            chosen: list[int] = []
            free = node.free
            need = min(job.gpus, GPUS_PER_NODE)
            for occupant in occupants:
                if free >= need:
                    break
                chosen.append(occupant)
                free += node.jobs[occupant]
            if free < need:
                continue
            cost = max((self._cost(o) for o in chosen), default=(-1, 0, 0.0))
            options.append((cost, idx, tuple(chosen)))
        need_nodes = max(1, job.gpus // GPUS_PER_NODE)
        if len(options) < need_nodes:
            return None
        options.sort()
        victims: dict[int, None] = {}
        for _, _, picked in options[:need_nodes]:
            victims.update(dict.fromkeys(picked))
        return tuple(victims)
