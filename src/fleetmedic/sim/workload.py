"""The jobs a run submits: drawn from the fitted distributions, or replayed from a store.

Generated jobs follow ``params.yaml``: arrivals with Venus' diurnal and weekly shape (and its
day-to-day swing), sizes and durations of the chosen trace profile, final states at the trace's
shares. The arrival *level* is set by the offered load (GPU demand over capacity), because the
fitted traces come from clusters of other sizes. A job's fate (succeed, cancel, or a user failure
of some category) is drawn at submission, as a user's bug exists before the job runs; failures the
platform causes are not drawn here but injected while the job runs (``failures.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from fleetmedic.model.records import Job
from fleetmedic.sim.calibration import Calibration
from fleetmedic.sim.config import GPUS_PER_NODE, SimConfig
from fleetmedic.sim.params import Params, Profile

PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW = 100, 50, 10
TEAMS = ("llm-pretrain", "multimodal", "speech", "vision", "recsys", "agents", "eval", "research")
NO_CHECKPOINT_KINDS = frozenset({"notebook", "eval", "inference"})
STARTUP_SECONDS = 240.0  # user failures at start-up happen within the first minutes


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job as submitted, with its hidden fate. Times are seconds after the run's start."""

    idx: int
    job_id: str
    name: str
    user: str
    team: str
    kind: str
    gpus: int
    pool: str
    priority: int
    submit: float
    work: float
    fate: str  # succeeded | cancelled | failed
    fate_category: str | None  # the user failure's taxonomy id when fate == failed
    fate_at: float  # failed/cancelled: progress (s of work) at which it fails or is cancelled
    interval: float  # checkpoint interval (s); inf = never checkpoints
    save: float
    restart: float
    gpu_util: float

    @property
    def nodes(self) -> int:
        return max(1, math.ceil(self.gpus / GPUS_PER_NODE))


def pool_capacity(config: SimConfig) -> dict[str, int]:
    """GPUs per pool (one pool per GPU model), whole nodes, at least one node each."""
    total = sum(config.gpu_models.values())
    names = sorted(config.gpu_models)
    nodes = {m: max(1, int(config.nodes * config.gpu_models[m] / total)) for m in names}
    nodes[max(names, key=lambda m: config.gpu_models[m])] += config.nodes - sum(nodes.values())
    return {pool_name(m): n * GPUS_PER_NODE for m, n in nodes.items()}


def pretrain_id(config: SimConfig) -> str:
    return f"sim-{config.run_tag}-pretrain"


def pool_name(gpu_model: str) -> str:
    return f"gpu-{gpu_model.lower()}"


class _Drawer:
    """Draws job attributes from one profile; vectorised where it matters for speed."""

    def __init__(
        self, config: SimConfig, params: Params, calib: Calibration, rng: np.random.Generator
    ) -> None:
        self.config, self.params, self.calib, self.rng = config, params, calib, rng
        self.tag = config.run_tag
        self.profile: Profile = params.profiles[config.profile]
        self.pools = pool_capacity(config)
        biggest = max(self.pools.values())
        size = self.profile.size
        sizes = 2 ** np.arange(size.max_log2 + 1)
        tail = size.alpha ** np.arange(1, size.max_log2 + 1)
        pmf = np.concatenate([[size.p1], (1 - size.p1) * tail / tail.sum()])
        keep = sizes <= biggest // 2  # no fitted job may need more than half of the largest pool
        self.sizes, self.size_pmf = sizes[keep], pmf[keep] / pmf[keep].sum()
        shares = self.profile.outcomes.job_share
        infra = calib.user.infra_share_of_failed_jobs.value
        fail_user = shares["failed"] * (1 - infra)
        self.fates = ("succeeded", "cancelled", "failed")
        fate_p = np.array(
            [shares["succeeded"] + shares["failed"] * infra, shares["cancelled"], fail_user]
        )
        self.fate_p = fate_p / fate_p.sum()
        self.user_cats = tuple(calib.user.share)
        p = np.array([r.value for r in calib.user.share.values()])
        self.user_p = p / p.sum()

    def sizes_and_durations(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng, dur = self.rng, self.profile.duration
        gpus = rng.choice(self.sizes, size=n, p=self.size_pmf)
        fate = rng.choice(len(self.fates), size=n, p=self.fate_p)
        delta = np.array([dur.delta[f] for f in self.fates])[fate]
        log_d = delta + dur.beta * np.log(gpus) + dur.sigma * rng.standard_normal(n)
        seconds = np.clip(np.exp(log_d), 10.0, dur.max_seconds)
        return gpus, fate, seconds

    def mean_gpu_seconds(self) -> float:
        """E[GPUs x duration] of a job, by Monte Carlo on a separate stream (sets the rate)."""
        saved, self.rng = self.rng, np.random.default_rng([self.config.seed, 7])
        gpus, _, seconds = self.sizes_and_durations(50_000)
        self.rng = saved
        return float(np.mean(gpus * seconds))


def _arrival_times(
    config: SimConfig, params: Params, per_day: float, rng: np.random.Generator
) -> np.ndarray:
    """Non-homogeneous Poisson arrivals: hourly rate = mean x hour shape x weekday x day swing."""
    arrivals = params.arrivals
    hours = math.ceil(config.days * 24)
    hourly = np.asarray(arrivals.hourly)
    weekday = np.asarray(arrivals.weekday)
    days = hours // 24 + 1
    cv = arrivals.daily_cv
    swing = rng.gamma(1 / cv**2, cv**2, size=days) if cv > 0 else np.ones(days)
    h = np.arange(hours)
    start_weekday = config.start.weekday()
    rate = (per_day / 24) * hourly[h % 24] * weekday[(start_weekday + h // 24) % 7] * swing[h // 24]
    counts = rng.poisson(rate)
    times = np.repeat(h, counts) * 3600.0 + rng.random(int(counts.sum())) * 3600.0
    times = np.sort(times)
    return times[times < config.horizon]


def _kind(rng: np.random.Generator, gpus: int) -> str:
    if gpus == 1:
        return str(rng.choice(["notebook", "eval", "finetune", "train"], p=[0.3, 0.3, 0.2, 0.2]))
    if gpus <= 8:
        return str(rng.choice(["finetune", "train", "eval"], p=[0.4, 0.4, 0.2]))
    return str(rng.choice(["train", "finetune", "eval"], p=[0.7, 0.2, 0.1]))


def _checkpointing(
    config: SimConfig, rng: np.random.Generator, kind: str, gpus: int
) -> tuple[float, float, float]:
    """(interval, save, restart) seconds; the interval jitters per job around the policy."""
    policy = config.checkpoint
    nodes = max(1, gpus // GPUS_PER_NODE)
    restart = policy.restart_minutes * 60 * (1 + 0.1 * math.log2(nodes))
    if kind in NO_CHECKPOINT_KINDS:
        return math.inf, 0.0, restart
    base = policy.large_interval_minutes if gpus >= 256 else policy.interval_minutes
    interval = base * 60 * float(np.exp(rng.normal(0, 0.3)))
    return interval, policy.save_minutes * 60, restart


def _util(params: Params, u: float) -> float:
    q = np.asarray(params.gpu_util.quantiles)
    return float(np.interp(u, np.linspace(0, 1, len(q)), q))


def generate(config: SimConfig, params: Params, calib: Calibration) -> list[JobSpec]:
    """The run's submitted jobs, deterministic for ``config.seed``, ordered by submission."""
    rng = np.random.default_rng([config.seed, 1])
    drawer = _Drawer(config, params, calib, rng)
    jobs: list[JobSpec] = []
    pretrain = _pretrain(config, drawer, rng)
    if pretrain is not None:
        jobs.append(pretrain)
    if not config.workload:
        return jobs
    load = config.offered_load or calib.scheduler.offered_load.value
    capacity = config.gpus - (pretrain.gpus if pretrain else 0)
    per_day = load * capacity * 86400.0 / drawer.mean_gpu_seconds()
    times = _arrival_times(config, params, per_day, rng)
    gpus, fates, seconds = drawer.sizes_and_durations(len(times))
    quota = np.asarray(params.teams.quota_share)
    team_of = rng.choice(len(TEAMS), size=len(times), p=quota / quota.sum())
    pools = sorted(drawer.pools)
    pool_p = np.array([drawer.pools[p] for p in pools], dtype=float)
    for i, submit in enumerate(times):
        jobs.append(
            _job(
                config,
                drawer,
                rng,
                len(jobs),
                float(submit),
                int(gpus[i]),
                drawer.fates[fates[i]],
                float(seconds[i]),
                TEAMS[team_of[i]],
                pools,
                pool_p,
            )
        )
    return jobs


def _job(
    config: SimConfig,
    drawer: _Drawer,
    rng: np.random.Generator,
    idx: int,
    submit: float,
    gpus: int,
    fate: str,
    seconds: float,
    team: str,
    pools: list[str],
    pool_p: np.ndarray,
) -> JobSpec:
    kind = _kind(rng, gpus)
    fits = np.array([drawer.pools[p] >= gpus * 2 for p in pools], dtype=float) * pool_p
    pool = pools[int(rng.choice(len(pools), p=fits / fits.sum()))]
    interval, save, restart = _checkpointing(config, rng, kind, gpus)
    category: str | None = None
    work, fate_at = seconds, 0.0
    if fate == "failed":
        category = str(rng.choice(drawer.user_cats, p=drawer.user_p))
        if category in drawer.calib.user.startup_categories:
            seconds = min(seconds, STARTUP_SECONDS * float(rng.random()) + 5)
        fate_at = seconds
        work = seconds * (2 + float(rng.exponential(2.0)))
    elif fate == "cancelled":
        fate_at = seconds
        work = seconds * (1 + float(rng.exponential(1.0)))
    priority = PRIORITY_LOW if kind == "eval" else PRIORITY_NORMAL
    user = f"{team}-u{int(rng.zipf(1.6)) % 12:02d}"
    return JobSpec(
        idx=idx,
        job_id=f"sim-{drawer.tag}-{idx:06d}",
        name=f"{team}-{kind}-{idx}",
        user=user,
        team=team,
        kind=kind,
        gpus=gpus,
        pool=pool,
        priority=priority,
        submit=submit,
        work=work,
        fate=fate,
        fate_category=category,
        fate_at=fate_at,
        interval=interval,
        save=save,
        restart=restart,
        gpu_util=_util(drawer.params, float(rng.random())),
    )


def _pretrain(config: SimConfig, drawer: _Drawer, rng: np.random.Generator) -> JobSpec | None:
    """The long pre-training run: largest power-of-two node count within its share and pool."""
    if config.pretrain.share <= 0:
        return None
    pool = max(drawer.pools, key=lambda p: (drawer.pools[p], p))
    want = min(config.gpus * config.pretrain.share, drawer.pools[pool] * 0.75)
    nodes = 2 ** math.floor(math.log2(max(1.0, want / GPUS_PER_NODE)))
    gpus = nodes * GPUS_PER_NODE
    policy = config.checkpoint
    return JobSpec(
        idx=0,
        job_id=pretrain_id(config),
        name="llm-pretrain-run-0",
        user="llm-pretrain-u00",
        team="llm-pretrain",
        kind="train",
        gpus=gpus,
        pool=pool,
        priority=PRIORITY_HIGH,
        submit=0.0,
        work=config.horizon * 4,
        fate="succeeded",
        fate_category=None,
        fate_at=0.0,
        interval=config.pretrain.checkpoint_minutes * 60,
        save=policy.save_minutes * 60,
        restart=policy.restart_minutes * 60 * (1 + 0.1 * math.log2(nodes)),
        gpu_util=_util(drawer.params, 0.9),
    )


def from_records(
    records: Sequence[Job], config: SimConfig, calib: Calibration, params: Params
) -> list[JobSpec]:
    """Replay an imported trace: its submissions, sizes, run times and final states.

    Times are shifted so the first submission is the run's start; jobs submitted after the horizon
    are dropped; sizes round up to whole nodes above 8 GPUs and are capped at half the largest pool.
    A trace's ``failed`` jobs become user failures of a category drawn at the calibrated shares (the
    trace does not say why they failed); platform failures are injected as for generated jobs.
    """
    rng = np.random.default_rng([config.seed, 2])
    drawer = _Drawer(config, params, calib, rng)
    pools = sorted(drawer.pools)
    pool_p = np.array([drawer.pools[p] for p in pools], dtype=float)
    cap = max(drawer.pools.values()) // 2
    dated = [j for j in records if j.submitted_at is not None]
    if not dated:
        return []
    origin = min(j.submitted_at for j in dated if j.submitted_at is not None)
    out: list[JobSpec] = []
    for job in sorted(dated, key=lambda j: (j.submitted_at, j.job_id)):
        assert job.submitted_at is not None
        submit = (job.submitted_at - origin).total_seconds()
        if submit >= config.horizon:
            break
        gpus = max(1, math.ceil(job.num_gpus or 1))
        if gpus > GPUS_PER_NODE:
            gpus = math.ceil(gpus / GPUS_PER_NODE) * GPUS_PER_NODE
        gpus = min(gpus, cap)
        seconds = 600.0
        if job.started_at and job.ended_at and job.ended_at > job.started_at:
            seconds = (job.ended_at - job.started_at).total_seconds()
        fate = {"failed": "failed", "timeout": "failed", "cancelled": "cancelled"}.get(
            job.status, "succeeded"
        )
        team = job.team or TEAMS[len(out) % len(TEAMS)]
        spec = _job(config, drawer, rng, len(out), submit, gpus, fate, seconds, team, pools, pool_p)
        out.append(
            replace(spec, job_id=f"replay-{drawer.tag}-{job.job_id}", user=job.user or spec.user)
        )
    return out
