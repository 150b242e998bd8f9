"""Failure injection at the calibrated rates (``calibration.yaml``).

Three processes, because failures arrive in three ways on a real platform:

* **node hardware**: each node fails on its own clock (Poisson at Meta's r_f per node-day, a few
  lemon nodes at a fitted multiple of it), whether or not a job runs on it; the jobs on it fail;
* **job-level platform faults** (NCCL/IB, per-node storage errors, hangs, evictions, /dev/shm):
  a hazard proportional to the nodes a job holds, drawn when an attempt starts, plus start-up
  faults (image pulls, rendezvous) drawn per attempt;
* **shared-storage incidents**: fleet-wide events that fail many running jobs at once.

User failures are not here: they are the job's fate, drawn at submission (``workload.py``).
"""

from __future__ import annotations

import math
import random

from fleetmedic.sim.calibration import Calibration
from fleetmedic.sim.config import GPUS_PER_NODE, SimConfig

PER_1000_NODE_DAYS = 1000.0 * 86400.0  # rate per 1000 node-days -> per node-second


def _pick(rng: random.Random, names: tuple[str, ...], cumulative: tuple[float, ...]) -> str:
    u = rng.random() * cumulative[-1]
    for name, edge in zip(names, cumulative, strict=True):
        if u < edge:
            return name
    return names[-1]


def _cumulative(weights: list[float]) -> tuple[float, ...]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


class FailureModel:
    """Draws failure times and kinds; all randomness from one seeded stream."""

    def __init__(self, config: SimConfig, calib: Calibration, rng: random.Random) -> None:
        self.rng = rng
        scale = config.failure_scale
        hw = calib.hardware
        r_f = hw.node_failure_rate_per_1000_node_days[config.hardware_profile].value
        fraction = (
            config.lemon_fraction
            if config.lemon_fraction is not None
            else calib.lemons.fraction.value
        )
        multiplier = calib.lemons.rate_multiplier.value
        count = round(fraction * config.nodes)
        self.lemons = frozenset(rng.sample(range(config.nodes), count)) if count else frozenset()
        base = r_f / (1 - fraction + fraction * multiplier) if count else r_f
        self.node_rate = [
            (base * multiplier if i in self.lemons else base) * scale / PER_1000_NODE_DAYS
            for i in range(config.nodes)
        ]
        self.healthy_rate = base * scale / PER_1000_NODE_DAYS
        self.hw_kinds = tuple(hw.kind_share)
        self.hw_cum = _cumulative([r.value for r in hw.kind_share.values()])
        self.xids = tuple(hw.xid_share)
        self.xid_cum = _cumulative([r.value for r in hw.xid_share.values()])
        self.repair_median = {k: r.value * 3600.0 for k, r in hw.repair_hours.items()}
        infra = calib.infra
        self.job_rate = (
            infra.non_hardware_rate_per_1000_node_days.value * scale / PER_1000_NODE_DAYS
        )
        self.infra_kinds = tuple(infra.share)
        self.infra_cum = _cumulative([r.value for r in infra.share.values()])
        incidents = infra.storage_incidents
        self.storage_rate = (
            incidents.per_day_per_1000_nodes.value * config.nodes / 1000.0 * scale / 86400.0
        )
        self.storage_hit = incidents.hit_per_node.value
        self.p_image_pull = infra.startup.image_pull.value * scale
        self.p_rendezvous = infra.startup.rendezvous.value * scale

    # -- node hardware ------------------------------------------------------------------------
    def next_node_failure(self, node: int, now: float) -> float:
        rate = self.node_rate[node]
        return math.inf if rate <= 0 else now + self.rng.expovariate(rate)

    def hardware_kind(self) -> tuple[str, str | None]:
        """(category, Xid) of a node hardware failure."""
        kind = _pick(self.rng, self.hw_kinds, self.hw_cum)
        xid = _pick(self.rng, self.xids, self.xid_cum) if kind == "gpu_hardware" else None
        return kind, xid

    def repair_seconds(self, kind: str) -> float:
        median = self.repair_median.get(kind, self.repair_median["node_failure"])
        return median * math.exp(self.rng.gauss(0.0, 1.0))

    def deep_repair_seconds(self) -> float:
        return self.repair_median["deep_repair"]

    def repaired(self, node: int) -> None:
        """A node back from deep repair is healthy: its lemon rate is gone."""
        self.node_rate[node] = self.healthy_rate

    # -- job-level faults ---------------------------------------------------------------------
    def attempt_fault(self, gpus: int) -> tuple[float, str]:
        """(seconds after the attempt starts, category) of its next platform fault."""
        nodes = gpus / GPUS_PER_NODE
        rate = self.job_rate * nodes
        if rate <= 0:
            return math.inf, ""
        return self.rng.expovariate(rate), _pick(self.rng, self.infra_kinds, self.infra_cum)

    def startup_fault(self, nodes: int) -> str | None:
        u = self.rng.random()
        if u < self.p_image_pull:
            return "image_pull"
        if nodes > 1 and u < self.p_image_pull + self.p_rendezvous:
            return "rendezvous"
        return None

    # -- storage incidents --------------------------------------------------------------------
    def next_storage_incident(self, now: float) -> float:
        return math.inf if self.storage_rate <= 0 else now + self.rng.expovariate(self.storage_rate)

    def storage_hits(self, gpus: int) -> bool:
        nodes = max(1, gpus // GPUS_PER_NODE)
        return self.rng.random() < 1 - (1 - self.storage_hit) ** nodes
