"""The discrete-event loop: jobs arrive, are placed, run, fail, heal, and leave records.

One heap of ``(time, seq, kind, a, b)`` tuples; ``seq`` breaks ties in insertion order so a run is
reproducible bit for bit. An attempt's end is decided when it starts (the earliest of: success,
its user fate, its own platform fault) and revised when something outside it strikes first (a node
dies, storage fails, the scheduler preempts it); stale end events are skipped by token.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleetmedic.model.records import Action
from fleetmedic.sim import checkpoint as ck
from fleetmedic.sim.calibration import Calibration
from fleetmedic.sim.config import GPUS_PER_NODE, SimConfig
from fleetmedic.sim.emit import EventRow, FailureContext, cluster_events
from fleetmedic.sim.executor import Healer
from fleetmedic.sim.failures import FailureModel
from fleetmedic.sim.observe import Observer, SignalObserver, Verdict
from fleetmedic.sim.params import load_params
from fleetmedic.sim.scheduler import GangScheduler, Placement
from fleetmedic.sim.truth import Injected, owner_of
from fleetmedic.sim.workload import TEAMS, JobSpec, pool_capacity

ARRIVE, END, NODE_FAIL, NODE_REPAIR, STORAGE, REQUEUE, PENDING_TIMEOUT = range(7)
INTERRUPTED = frozenset({"failed", "timeout", "preempted"})
STEP_SECONDS = 10.0  # nominal seconds per training step, for the step numbers logs print


class Run:
    """The current attempt of a job."""

    __slots__ = (
        "attempt",
        "category",
        "culprit",
        "detail",
        "end",
        "nodes",
        "priority",
        "restart",
        "saved_before",
        "start",
        "status",
        "stop",
        "token",
        "user_side",
        "xid",
    )

    def __init__(
        self,
        attempt: int,
        start: float,
        nodes: tuple[int, ...],
        priority: int,
        restart: float,
        saved_before: float,
    ) -> None:
        self.attempt, self.start, self.nodes, self.priority = attempt, start, nodes, priority
        self.restart, self.saved_before = restart, saved_before
        self.stop = self.end = math.inf
        self.status, self.category, self.detail = "succeeded", "", ""
        self.culprit, self.user_side, self.token = 0, False, 0
        self.xid: str | None = None


class JobState:
    """Mutable state of one job; also what the scheduler reads while it waits."""

    __slots__ = (
        "attempts",
        "ended",
        "excluded",
        "first_start",
        "gpus",
        "idx",
        "last_nodes",
        "next_search",
        "pool",
        "priority",
        "queued_at",
        "restarts",
        "run",
        "saved",
        "spec",
        "status",
        "team",
    )

    def __init__(self, spec: JobSpec) -> None:
        self.spec, self.idx, self.gpus, self.pool = spec, spec.idx, spec.gpus, spec.pool
        self.team, self.priority = spec.team, spec.priority
        self.queued_at, self.next_search = spec.submit, 0.0
        self.excluded: set[int] = set()
        self.status = "future"  # future | pending | running | <final status>
        self.attempts, self.restarts = 0, 0
        self.saved = 0.0
        self.first_start: float | None = None
        self.ended: float | None = None
        self.run: Run | None = None
        self.last_nodes: tuple[int, ...] = ()  # of the attempt that just ended


@dataclass(slots=True)
class AttemptRecord:
    """One attempt as it ended (``end`` None: still running at the horizon)."""

    job: int
    attempt: int
    nodes: tuple[int, ...]
    start: float | None
    end: float | None
    status: str
    exit_code: int | None
    reason: str | None
    last_ckpt: float | None
    gpus: int
    productive: float  # seconds of work this attempt kept (GPU-seconds = x gpus)
    category: str | None = None  # injected truth for interrupted attempts


@dataclass
class SimResult:
    """Everything a run produced; ``workflows`` and ``metrics`` read it, ``storage`` stores it."""

    config: SimConfig
    jobs: list[JobSpec]
    states: list[JobState]
    attempts: list[AttemptRecord]
    events: list[EventRow]
    truth: list[Injected]
    verdicts: dict[tuple[str, int], Verdict]
    actions: list[Action]
    node_names: list[str]
    node_pools: list[str]
    lemons: frozenset[int]
    cordoned: dict[int, str]
    hardware: list[tuple[float, int, str, str | None]]
    node_up: list[bool] = field(default_factory=list)  # at the horizon
    counters: dict[str, int] = field(default_factory=dict)


_EXIT = {
    "image_pull": None,
    "scheduling": None,
    "preemption": 143,
    "timeout": 143,
    "node_failure": None,
    "hang": 143,
    "host_oom": 137,
    "node_pressure_eviction": 137,
    "native_crash": 139,
    "device_assert": 134,
}
_REASON = {
    "preemption": "Preempted",
    "timeout": "DeadlineExceeded",
    "host_oom": "OOMKilled",
    "node_pressure_eviction": "Evicted",
    "node_failure": "NodeLost",
    "image_pull": "ImagePullBackOff",
    "scheduling": "Unschedulable",
    "hang": "Stalled",
}


class Simulation:
    """One run. Inject the observer (how failures are read) and, optionally, the executor."""

    def __init__(
        self,
        config: SimConfig,
        jobs: Sequence[JobSpec],
        calib: Calibration,
        observer: Observer | None = None,
        healer: Callable[[Simulation], Healer] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.config, self.calib = config, calib
        self.specs = list(jobs)
        self.jobs = [JobState(s) for s in self.specs]
        self.by_id = {s.job_id: i for i, s in enumerate(self.specs)}
        self.observer: Observer = observer or SignalObserver()
        self.progress = progress
        self.rng = random.Random(f"{config.seed}/engine")
        self.failures = FailureModel(config, calib, random.Random(f"{config.seed}/failures"))
        self.node_names, self.node_pools = self._layout()
        self.node_idx = {n: i for i, n in enumerate(self.node_names)}
        quotas = self._quotas()
        self.sched = GangScheduler(
            list(zip(self.node_names, self.node_pools, strict=True)),
            quotas,
            calib.scheduler.preempt_after_hours.value * 3600,
        )
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.tokens = 0
        self.now = 0.0
        self.attempts: list[AttemptRecord] = []
        self.events: list[EventRow] = []
        self.truth: list[Injected] = []
        self.verdicts: dict[tuple[str, int], Verdict] = {}
        self.hardware: list[tuple[float, int, str, str | None]] = []
        self.repair_token = [0] * len(self.node_names)
        self.draining: set[int] = set()
        self.deep: set[int] = set()
        self.cordoned: dict[int, str] = {}
        self.counters: dict[str, int] = {"events": 0, "passes": 0}
        recovery = calib.recovery
        self.nccl_timeout = recovery.nccl_timeout_minutes.value * 60
        self.node_lost = recovery.node_lost_minutes.value * 60
        self.hang_notice = recovery.hang_notice_hours.value * 3600
        self.hang_detect = recovery.hang_detect_minutes.value * 60
        self.p_resubmit = recovery.resubmit_probability.value
        self.resubmit_delay = recovery.resubmit_delay_hours.value * 3600
        self.backoff = recovery.auto_backoff_seconds.value
        self.pending_timeout = calib.scheduler.pending_timeout_hours.value * 3600
        self.healer: Healer | None = None
        if config.heal != "off":
            if healer is None:
                raise ValueError(f"heal mode {config.heal!r} needs a healer")
            self.healer = healer(self)

    # -- set-up -----------------------------------------------------------------------------
    def _layout(self) -> tuple[list[str], list[str]]:
        names, pools = [], []
        for pool, gpus in sorted(pool_capacity(self.config).items()):
            for i in range(gpus // GPUS_PER_NODE):
                names.append(f"{pool}-{i:04d}")
                pools.append(pool)
        return names, pools

    def _quotas(self) -> dict[str, int]:
        shares = load_params().teams.quota_share
        total = sum(shares)
        return {
            team: int(self.config.gpus * s / total) for team, s in zip(TEAMS, shares, strict=False)
        }

    def when(self, t: float) -> datetime:
        return self.config.start + timedelta(seconds=t)

    def _token(self) -> int:
        """A fresh, never reused token: an end event of an earlier attempt can't match a later."""
        self.tokens += 1
        return self.tokens

    def _push(self, t: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    # -- main loop --------------------------------------------------------------------------
    def run(self) -> SimResult:
        horizon = self.config.horizon
        for job in self.jobs:
            self._push(job.spec.submit, ARRIVE, job.idx)
        for idx in range(len(self.node_names)):
            self._push(self.failures.next_node_failure(idx, 0.0), NODE_FAIL, idx)
        self._push(self.failures.next_storage_incident(0.0), STORAGE)
        next_tick = 0.0
        handlers = {
            ARRIVE: self._arrive,
            END: self._end,
            NODE_FAIL: self._node_fail,
            NODE_REPAIR: self._node_repair,
            STORAGE: self._storage,
            REQUEUE: self._requeue,
            PENDING_TIMEOUT: self._pending_timeout,
        }
        while self.heap and self.heap[0][0] <= horizon:
            t, _, kind, a, b = heapq.heappop(self.heap)
            self.now = t
            self.counters["events"] += 1
            handlers[kind](a, b)
            if not self.heap or self.heap[0][0] > t:
                self._schedule()
            if t >= next_tick:
                self._tick(t / horizon)
                next_tick = t + 3600.0
        self.now = horizon
        self._finalize()
        if self.progress is not None:
            self.progress(1.0)
        return SimResult(
            config=self.config,
            jobs=self.specs,
            states=self.jobs,
            attempts=self.attempts,
            events=self.events,
            truth=self.truth,
            verdicts=self.verdicts,
            actions=self.healer.actions() if self.healer else [],
            node_names=self.node_names,
            node_pools=self.node_pools,
            lemons=self.failures.lemons,
            cordoned=self.cordoned,
            hardware=self.hardware,
            node_up=[node.up for node in self.sched.nodes],
            counters=self.counters,
        )

    def _tick(self, fraction: float) -> None:
        """Hourly: report progress and let the healer run its periodic checks (lemon test)."""
        if self.healer is not None:
            self.healer.tick(self.now)
        if self.progress is not None:
            self.progress(fraction)

    def _schedule(self) -> None:
        placements = self.sched.schedule(self.now)
        if placements:
            self.counters["passes"] += 1
        for placement in placements:
            for victim in placement.victims:
                self._preempted(victim)
            self._start(placement)

    # -- job lifecycle ----------------------------------------------------------------------
    def _arrive(self, idx: int, _: int) -> None:
        job = self.jobs[idx]
        job.status = "pending"
        job.queued_at = self.now
        if job.spec.fate == "failed" and job.spec.fate_category == "scheduling":
            self._push(self.now + self.pending_timeout, PENDING_TIMEOUT, idx)
            return
        self.sched.enqueue(job)

    def _start(self, placement: Placement) -> None:
        job = self.jobs[placement.job]
        spec = job.spec
        job.status = "running"
        job.attempts += 1
        if job.first_start is None:
            job.first_start = self.now
        restart = spec.restart if job.attempts > 1 else 0.0
        run = Run(job.attempts, self.now, placement.nodes, placement.priority, restart, job.saved)
        job.run = run
        self._plan(job, run)
        node0 = self.node_names[placement.nodes[0]]
        self.events.append(
            EventRow(
                self.now,
                "k8s",
                "k8s_event",
                f"pod/{spec.team}/{spec.name}-worker-0",
                "Scheduled",
                f"Successfully assigned {spec.team}/{spec.name}-worker-0 to {node0}",
                "info",
                spec.job_id,
                run.attempt,
            )
        )

    def _plan(self, job: JobState, run: Run) -> None:
        """Decide how this attempt ends unless something outside it strikes first."""
        spec, now = job.spec, self.now
        interval, save = spec.interval, spec.save
        remaining = spec.work - job.saved
        t_ok = now + ck.wall_time_for(remaining, run.restart, interval, save)
        plan: tuple[float, float, str, str, str] = (t_ok, t_ok, "succeeded", "", "")
        if spec.fate == "failed" and spec.fate_category:
            category = spec.fate_category
            if category in self.calib.user.startup_categories:
                t = now + run.restart + spec.fate_at
            else:
                need = max(1.0, spec.fate_at - job.saved)
                t = now + ck.wall_time_for(need, run.restart, interval, save)
            status = "timeout" if category == "timeout" else "failed"
            plan = min(plan, (t, t, status, category, "user"))
        elif spec.fate == "cancelled":
            # The user stops the run once it has done enough work (an eval looked good or bad).
            need = max(1.0, spec.fate_at - job.saved)
            t = now + ck.wall_time_for(need, run.restart, interval, save)
            plan = min(plan, (t, t, "cancelled", "", ""))
        fault = self.failures.startup_fault(len(run.nodes))
        if fault == "image_pull":
            t = now + self.rng.uniform(120, 600)
            plan = min(plan, (now, t, "failed", fault, "registry"))
        elif fault == "rendezvous":
            plan = min(plan, (now, now + run.restart + 900.0, "failed", fault, ""))
        dt, category = self.failures.attempt_fault(spec.gpus)
        stop = now + dt
        if stop < plan[0]:
            if category == "hang":
                notice = (
                    self.hang_detect
                    if self.config.heal == "auto"
                    else self.hang_notice * math.exp(self.rng.gauss(0, 0.8))
                )
                plan = (stop, stop + notice, "failed", category, "")
            else:
                plan = (stop, stop + self.rng.uniform(2, 30), "failed", category, "")
        run.stop, run.end, run.status, run.category, run.detail = plan
        run.user_side = plan[4] == "user"
        run.culprit = self.rng.randrange(len(run.nodes))
        run.token = self._token()
        self._push(run.end, END, job.idx, run.token)

    def _interrupt(
        self,
        idx: int,
        stop: float,
        end: float,
        category: str,
        culprit: int,
        xid: str | None = None,
        detail: str = "",
        status: str = "failed",
    ) -> None:
        """Something outside the attempt ends it; ignored if its own cause came first."""
        run = self.jobs[idx].run
        if run is None or stop >= run.stop:
            return
        run.stop, run.end, run.status, run.category = stop, end, status, category
        run.culprit, run.xid, run.detail, run.user_side = culprit, xid, detail, False
        run.token = self._token()
        self._push(end, END, idx, run.token)

    def _end(self, idx: int, token: int) -> None:
        job = self.jobs[idx]
        if job.run is None or job.run.token != token:
            return
        self._finish(job)

    def _preempted(self, idx: int) -> None:
        job = self.jobs[idx]
        run = job.run
        if run is None:
            return
        run.stop = run.end = self.now
        run.status, run.category, run.detail = "preempted", "preemption", ""
        run.culprit = self.rng.randrange(len(run.nodes))
        self._finish(job, released=True)

    def _finish(self, job: JobState, released: bool = False) -> None:
        run = job.run
        assert run is not None
        spec, now = job.spec, self.now
        interval, save = spec.interval, spec.save
        remaining = spec.work - run.saved_before
        if run.status == "succeeded":
            productive = remaining
            saves = max(0, math.ceil(remaining / interval) - 1) if math.isfinite(interval) else 0
            job.saved = spec.work
        else:
            progress = ck.progress_at(min(run.stop, now) - run.start, run.restart, interval, save)
            productive = progress.done if run.status == "cancelled" else progress.saved
            saves = progress.saves
            job.saved = run.saved_before + progress.saved
        last = ck.last_save_time(run.start, run.restart, interval, save, saves)
        category = run.category or None
        self.attempts.append(
            AttemptRecord(
                job.idx,
                run.attempt,
                run.nodes,
                run.start,
                now,
                run.status,
                0 if run.status == "succeeded" else _EXIT.get(run.category, 1),
                _REASON.get(run.category, "Error")
                if run.status in INTERRUPTED
                else ("Completed" if run.status == "succeeded" else "Cancelled"),
                last,
                spec.gpus,
                productive,
                category if run.status in INTERRUPTED else None,
            )
        )
        job.run = None
        if not released:
            self.sched.release(job.idx)
        self._maybe_drain(run.nodes)
        if run.status == "succeeded" or run.status == "cancelled":
            self._done(job, run.status)
            return
        verdict = self._record_failure(job, run)
        if run.status == "preempted":
            self._requeue(job.idx, 0)
            return
        owner = owner_of(run.category, run.user_side)
        if job.saved > run.saved_before:
            job.restarts = 0  # it made progress: the next failure is not a crash loop
        restarted = False
        if self.healer is not None:
            job.last_nodes = run.nodes
            restarted = self.healer.on_failure(now, spec.job_id, run.attempt, verdict)
        if restarted:
            return
        # A checkpointing training run is always resubmitted; other jobs usually are.
        resubmit = 1.0 if math.isfinite(spec.interval) else self.p_resubmit
        if owner != "user" and self.rng.random() < resubmit:
            delay = self.resubmit_delay * math.exp(self.rng.gauss(0.0, 1.0))
            job.status = "waiting"
            self._push(now + delay, REQUEUE, job.idx)
            return
        self._done(job, run.status)

    def _record_failure(self, job: JobState, run: Run) -> Verdict:
        spec = job.spec
        nodes = tuple(self.node_names[i] for i in run.nodes)
        culprit_node = run.nodes[run.culprit] if run.nodes else None
        ctx = FailureContext(
            job=spec,
            attempt=run.attempt,
            nodes=nodes,
            start=run.start,
            stop=min(run.stop, self.now),
            end=self.now,
            category=run.category,
            culprit=run.culprit,
            xid=run.xid,
            user_side=run.user_side,
            resumed_step=int(run.saved_before / STEP_SECONDS),
            origin=self.config.start,
            seed=self.config.seed,
            restart=run.restart,
        )
        rows = cluster_events(ctx)
        self.events.extend(rows)
        lemon = culprit_node is not None and culprit_node in self.failures.lemons
        self.truth.append(
            Injected(
                job_id=spec.job_id,
                attempt=run.attempt,
                category=run.category,
                owner=owner_of(run.category, run.user_side),
                node=nodes[run.culprit] if nodes else None,
                detail=run.detail or (f"xid {run.xid}" if run.xid else ""),
                at=run.stop,
                end=self.now,
                gpus=spec.gpus,
                lemon=lemon and run.category in {"gpu_hardware", "node_failure"},
            )
        )
        verdict = self.observer(ctx, rows)
        self.verdicts[(spec.job_id, run.attempt)] = verdict
        return verdict

    def _done(self, job: JobState, status: str) -> None:
        job.status = status
        job.ended = self.now
        if status == "succeeded":
            spec = job.spec
            self.events.append(
                EventRow(
                    self.now,
                    "k8s",
                    "k8s_event",
                    f"job/{spec.team}/{spec.name}",
                    "Completed",
                    "Job completed",
                    "info",
                    spec.job_id,
                    job.attempts,
                )
            )

    def _requeue(self, idx: int, _: int) -> None:
        job = self.jobs[idx]
        if job.run is not None or job.status in {"succeeded", "failed", "cancelled", "timeout"}:
            return
        job.status = "pending"
        job.queued_at = self.now
        job.next_search = 0.0
        self.sched.enqueue(job)

    def _pending_timeout(self, idx: int, _: int) -> None:
        job = self.jobs[idx]
        if job.status != "pending" or job.run is not None:
            return
        job.attempts += 1
        run = Run(job.attempts, self.now, (), job.priority, 0.0, 0.0)
        run.stop = run.end = self.now
        run.status, run.category, run.detail = "failed", "scheduling", "unschedulable request"
        self.attempts.append(
            AttemptRecord(
                job.idx,
                run.attempt,
                (),
                None,
                self.now,
                "failed",
                None,
                "Unschedulable",
                None,
                job.gpus,
                0.0,
                "scheduling",
            )
        )
        self._record_failure(job, run)
        self._done(job, "failed")

    # -- nodes ------------------------------------------------------------------------------
    def _node_fail(self, idx: int, _: int) -> None:
        node = self.sched.nodes[idx]
        if not node.up:
            return
        kind, xid = self.failures.hardware_kind()
        self.hardware.append((self.now, idx, kind, xid))
        self.sched.set_up(idx, False)
        repair = (
            self.failures.deep_repair_seconds()
            if idx in self.draining
            else self.failures.repair_seconds(kind)
        )
        if idx in self.draining:
            self.deep.add(idx)
        self.repair_token[idx] += 1
        self._push(self.now + repair, NODE_REPAIR, idx, self.repair_token[idx])
        victims = list(node.jobs)
        if kind == "gpu_hardware":
            gpu, held = self.rng.randrange(GPUS_PER_NODE), 0
            hit = None
            for job_idx, gpus in node.jobs.items():
                held += gpus
                if gpu < held:
                    hit = job_idx
                    break
            victims = [hit] if hit is not None else []
        if not victims:
            self._node_event(idx, kind, xid)
            if self.healer is not None:  # the healer watches node signals, not only job failures
                self.healer.on_node_signal(self.now, self.node_names[idx], kind)
        for job_idx in victims:
            run = self.jobs[job_idx].run
            if run is None:
                continue
            culprit = run.nodes.index(idx)
            if kind == "gpu_hardware":
                delay = self.rng.uniform(5, 60)
            else:
                delay = self.nccl_timeout if len(run.nodes) > 1 else self.node_lost
            self._interrupt(
                job_idx,
                self.now,
                self.now + delay,
                kind,
                culprit,
                xid,
                "lemon" if idx in self.failures.lemons else "",
            )

    def _node_event(self, idx: int, kind: str, xid: str | None) -> None:
        name = self.node_names[idx]
        if kind == "gpu_hardware":
            self.events.append(
                EventRow(
                    self.now,
                    "kernel",
                    "kernel_log",
                    f"node/{name}",
                    "NVRM_Xid",
                    f"NVRM: Xid (PCI:0000:18:00): {xid}, pid=0",
                    "error",
                )
            )
        else:
            self._node_status(name, "NodeNotReady", "warning")

    def _node_repair(self, idx: int, token: int) -> None:
        if token != self.repair_token[idx]:
            return
        name = self.node_names[idx]
        self.sched.set_up(idx, True)
        self._node_status(name, "NodeReady", "info")
        if idx in self.deep:
            self.deep.discard(idx)
            self.draining.discard(idx)
            self.failures.repaired(idx)
            if self.healer is not None:
                self.healer.on_node_repaired(self.now, name)
        self._push(self.failures.next_node_failure(idx, self.now), NODE_FAIL, idx)

    def _maybe_drain(self, nodes: tuple[int, ...]) -> None:
        for idx in nodes:
            if idx in self.draining and idx not in self.deep and not self.sched.nodes[idx].jobs:
                self._deep_repair(idx)

    def _deep_repair(self, idx: int) -> None:
        self.deep.add(idx)
        self.sched.set_up(idx, False)
        self.repair_token[idx] += 1
        self._push(
            self.now + self.failures.deep_repair_seconds(), NODE_REPAIR, idx, self.repair_token[idx]
        )

    def _storage(self, _: int, __: int) -> None:
        for idx in sorted(self.sched.running):
            job = self.jobs[idx]
            if job.run is not None and self.failures.storage_hits(job.gpus):
                culprit = self.rng.randrange(len(job.run.nodes))
                self._interrupt(
                    idx,
                    self.now,
                    self.now + self.rng.uniform(1, 120),
                    "storage_io",
                    culprit,
                    None,
                    "storage incident",
                )
        self._push(self.failures.next_storage_incident(self.now), STORAGE)

    # -- ClusterControl (for SimExecutor) ---------------------------------------------------
    def _node_status(self, name: str, status: str, severity: str) -> None:
        """The kubelet's node status event, as ``kubectl get events`` shows it."""
        message = f"Node {name} status is now: {status}"
        self.events.append(
            EventRow(self.now, "k8s", "k8s_event", f"node/{name}", status, message, severity)
        )

    def node_index(self, name: str) -> int:
        return self.node_idx[name]

    def cordon_node(self, idx: int) -> None:
        self.sched.set_cordoned(idx, True)
        self.cordoned[idx] = "repeated hardware failures"
        name = self.node_names[idx]
        self._node_status(name, "NodeNotSchedulable", "info")

    def uncordon_node(self, idx: int) -> None:
        self.sched.set_cordoned(idx, False)
        name = self.node_names[idx]
        self._node_status(name, "NodeSchedulable", "info")

    def drain_node(self, idx: int) -> None:
        self.draining.add(idx)
        node = self.sched.nodes[idx]
        if node.jobs:
            return
        if not node.up:  # already out for an ordinary repair: make it a deep one
            self.deep.add(idx)
            self.repair_token[idx] += 1
            self._push(
                self.now + self.failures.deep_repair_seconds(),
                NODE_REPAIR,
                idx,
                self.repair_token[idx],
            )
            return
        self._deep_repair(idx)

    def restart_job(self, job_id: str, exclude: Sequence[int]) -> None:
        """Restart from the last checkpoint: in place on the same nodes when nothing is to be
        avoided and they are all still free and schedulable (what an in-job restart or a pod
        restart does: no trip through the queue), else back to the queue after a backoff."""
        job = self.jobs[self.by_id[job_id]]
        job.excluded.update(exclude)
        job.restarts += 1
        if not exclude and job.run is None:
            placement = self.sched.place_on(job, job.last_nodes, self.now)
            if placement is not None:
                self._start(placement)
                return
        job.status = "waiting"
        delay = min(1800.0, self.backoff * 2 ** min(job.restarts - 1, 10))
        self._push(self.now + delay, REQUEUE, job.idx)

    # -- horizon ----------------------------------------------------------------------------
    def _finalize(self) -> None:
        """Attempts still running at the horizon are recorded open, with the work done so far."""
        for idx in sorted(self.sched.running):
            job = self.jobs[idx]
            run = job.run
            if run is None:
                continue
            spec = job.spec
            progress = ck.progress_at(
                min(run.stop, self.now) - run.start, run.restart, spec.interval, spec.save
            )
            last = ck.last_save_time(
                run.start, run.restart, spec.interval, spec.save, progress.saves
            )
            self.attempts.append(
                AttemptRecord(
                    idx,
                    run.attempt,
                    run.nodes,
                    run.start,
                    None,
                    "running",
                    None,
                    None,
                    last,
                    spec.gpus,
                    progress.done,
                    None,
                )
            )
