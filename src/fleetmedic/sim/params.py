"""Load ``params.yaml``: the workload distributions fitted by ``bench/fit_sim_params.py``.

The file is generated; this module only types it, so that the workload generator reads named fields
and a regenerated file with a missing block fails here rather than deep inside a run.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict


class _Loose(BaseModel):
    # Generated file: extra bookkeeping fields (targets, sources) are allowed and kept.
    model_config = ConfigDict(extra="allow", frozen=True)


class SizeFit(_Loose):
    p1: float
    alpha: float
    max_log2: int


class DurationFit(_Loose):
    sigma: float
    beta: float
    delta: dict[str, float]
    max_seconds: float


class Outcomes(_Loose):
    job_share: dict[str, float]
    gpu_time_share: dict[str, float]


class Profile(_Loose):
    source: str
    licence: str
    size: SizeFit
    duration: DurationFit
    outcomes: Outcomes
    queue_seconds: dict[str, float]


class Arrivals(_Loose):
    source: str
    licence: str
    hourly: tuple[float, ...]
    weekday: tuple[float, ...]
    daily_cv: float


class Teams(_Loose):
    quota_share: tuple[float, ...]


class GpuUtil(_Loose):
    quantiles: tuple[float, ...]


class Titan(_Loose):
    dbe_share: float
    otb_share: float
    lemon_fraction: float
    lemon_rate_multiplier: float


class Params(_Loose):
    profiles: dict[str, Profile]
    arrivals: Arrivals
    teams: Teams
    gpu_util: GpuUtil
    titan: Titan


@cache
def load_params() -> Params:
    """The packaged fitted parameters, parsed once."""
    text = resources.files("fleetmedic.sim").joinpath("params.yaml").read_text("utf-8")
    return Params.model_validate(yaml.safe_load(text))


PROFILES: tuple[str, ...] = ("kalos", "seren", "philly", "helios")
"""Workload profiles in ``params.yaml`` (rows of Acme's ``cluster_summary.csv``)."""
