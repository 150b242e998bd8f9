"""What a simulation run is asked to do: fleet, horizon, seed, checkpoint policy, heal mode.

Validated strictly (Pydantic, ``extra="forbid"``) because a typo in a YAML config or a fleet that
cannot exist (negative GPUs, a GPU count that is not whole 8-GPU nodes) must stop the run with one
clear line, not bend its figures. Rates live in ``calibration.yaml``; this is only the scenario.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

HealMode = Literal["off", "dry-run", "auto"]
HEAL_MODES: tuple[str, ...] = ("off", "dry-run", "auto")
GPUS_PER_NODE = 8
MIN_GPUS, MAX_GPUS = 128, 12_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckpointPolicy(_Strict):
    """How training jobs checkpoint; each job jitters the interval around ``interval_minutes``."""

    interval_minutes: Annotated[float, Field(gt=0, description="mean interval, training")] = 60.0
    large_interval_minutes: Annotated[float, Field(gt=0, description="256+ GPU jobs")] = 30.0
    save_minutes: Annotated[float, Field(ge=0, description="blocking cost of one save")] = 1.0
    restart_minutes: Annotated[
        float, Field(ge=0, description="restart overhead u0: placement to first step")
    ] = 10.0


class Pretrain(_Strict):
    """A long pre-training run that holds a share of the fleet for the whole horizon."""

    share: Annotated[float, Field(ge=0, le=0.5, description="fraction of the GPUs")] = 0.25
    checkpoint_minutes: Annotated[float, Field(gt=0)] = 30.0


class SimConfig(_Strict):
    """One simulation scenario. Same config and seed give the same run, bit for bit."""

    gpus: Annotated[int, Field(description="fleet size in GPUs (8 per node)")] = 4096
    days: Annotated[float, Field(gt=0, le=366)] = 30.0
    seed: Annotated[int, Field(ge=0)] = 0
    heal: HealMode = "off"
    gpu_models: dict[str, float] = Field(default_factory=lambda: {"H100": 0.75, "A100": 0.25})
    profile: Literal["kalos", "seren", "philly", "helios"] = "kalos"
    hardware_profile: Literal["rsc1", "rsc2"] = "rsc1"
    offered_load: Annotated[float | None, Field(gt=0, le=2.0)] = None  # default: calibration
    failure_scale: Annotated[float, Field(ge=0, description="multiplies infra rates")] = 1.0
    lemon_fraction: Annotated[float | None, Field(ge=0, le=0.5)] = None  # default: calibration
    checkpoint: CheckpointPolicy = CheckpointPolicy()
    pretrain: Pretrain = Pretrain()
    workload: bool = True  # generate the fitted workload (False: the pre-training run only)
    start: datetime = datetime(2024, 6, 3, tzinfo=UTC)

    @field_validator("gpus")
    @classmethod
    def _whole_nodes(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be positive (got {value})")
        if value % GPUS_PER_NODE:
            raise ValueError(f"must be a multiple of {GPUS_PER_NODE}, whole nodes (got {value})")
        if not MIN_GPUS <= value <= MAX_GPUS:
            raise ValueError(f"must be between {MIN_GPUS} and {MAX_GPUS} (got {value})")
        return value

    @field_validator("gpu_models")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(share <= 0 for share in value.values()):
            raise ValueError("needs at least one GPU model, each with a positive share")
        return value

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def run_tag(self) -> str:
        """Short id of this scenario: prefixes job ids so runs can share a store without mixing."""
        text = self.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def nodes(self) -> int:
        return self.gpus // GPUS_PER_NODE

    @property
    def horizon(self) -> float:
        """Simulated seconds."""
        return self.days * 86400.0


def describe_error(exc: ValidationError) -> str:
    """One line for a bad configuration: ``--gpus: must be a multiple of 8 ...``."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "config"
    message = str(error["msg"]).removeprefix("Value error, ")
    flag = f"--{where}" if where in {"gpus", "days", "seed", "heal"} else where
    return f"{flag}: {message}"
