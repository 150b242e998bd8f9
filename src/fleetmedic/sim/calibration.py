"""Load ``calibration.yaml``: every injected rate, validated, each with its source.

Why strict: a rate without a citation, a share list that does not sum to one or a typo in a key
would silently bend every figure the simulator reports, so all of them fail at load time.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from fleetmedic.model.taxonomy import CATEGORIES

Kind = Literal["published", "derived", "fitted", "assumed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """One number and where it comes from."""

    value: float
    kind: Kind
    source: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _cited(self) -> Rate:
        if self.kind != "assumed" and not self.source:
            raise ValueError(f"a {self.kind} value ({self.value}) needs a source")
        return self


def _check_shares(shares: dict[str, Rate], what: str) -> None:
    total = sum(r.value for r in shares.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{what} shares sum to {total}, not 1")


class Hardware(_Strict):
    node_failure_rate_per_1000_node_days: dict[str, Rate]
    kind_share: dict[str, Rate]
    xid_share: dict[str, Rate]
    repair_hours: dict[str, Rate]

    @model_validator(mode="after")
    def _shares(self) -> Hardware:
        _check_shares(self.kind_share, "hardware.kind_share")
        _check_shares(self.xid_share, "hardware.xid_share")
        return self


class Lemons(_Strict):
    fraction: Rate
    rate_multiplier: Rate


class MttfReference(_Strict):
    gpus_8_days: Rate
    gpus_1024_hours: Rate


class StorageIncidents(_Strict):
    per_day_per_1000_nodes: Rate
    hit_per_node: Rate


class Startup(_Strict):
    image_pull: Rate
    rendezvous: Rate


class Infra(_Strict):
    non_hardware_rate_per_1000_node_days: Rate
    share: dict[str, Rate]
    storage_incidents: StorageIncidents
    startup: Startup

    @model_validator(mode="after")
    def _shares(self) -> Infra:
        _check_shares(self.share, "infra.share")
        return self


class User(_Strict):
    infra_share_of_failed_jobs: Rate
    share: dict[str, Rate]
    startup_categories: tuple[str, ...]

    @model_validator(mode="after")
    def _shares(self) -> User:
        _check_shares(self.share, "user.share")
        return self


class Recovery(_Strict):
    nccl_timeout_minutes: Rate
    node_lost_minutes: Rate
    hang_notice_hours: Rate
    hang_detect_minutes: Rate
    resubmit_probability: Rate
    resubmit_delay_hours: Rate
    auto_backoff_seconds: Rate


class Scheduler(_Strict):
    preempt_after_hours: Rate
    pending_timeout_hours: Rate
    offered_load: Rate


class Calibration(_Strict):
    """The whole file; :func:`load_calibration` returns it validated."""

    references: dict[str, str]
    hardware: Hardware
    lemons: Lemons
    job_mttf_reference: MttfReference
    infra: Infra
    user: User
    recovery: Recovery
    scheduler: Scheduler

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        for path, rate in self.rates():
            if rate.source is not None and rate.source not in self.references:
                raise ValueError(f"{path}: unknown source {rate.source!r}")
        categories = (
            list(self.hardware.kind_share)
            + list(self.infra.share)
            + list(self.user.share)
            + list(self.user.startup_categories)
        )
        for category in categories:
            if category not in CATEGORIES:
                raise ValueError(f"{category!r} is not a taxonomy category")
        return self

    def rates(self) -> list[tuple[str, Rate]]:
        """Every rate with its dotted path, for the docs table and the citation check."""
        out: list[tuple[str, Rate]] = []

        def walk(prefix: str, node: object) -> None:
            if isinstance(node, Rate):
                out.append((prefix, node))
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(f"{prefix}.{name}" if prefix else name, getattr(node, name))
            elif isinstance(node, dict):
                for key, value in node.items():
                    walk(f"{prefix}.{key}", value)

        for name in (
            "hardware",
            "lemons",
            "job_mttf_reference",
            "infra",
            "user",
            "recovery",
            "scheduler",
        ):
            walk(name, getattr(self, name))
        return out


@cache
def load_calibration() -> Calibration:
    """The packaged calibration, parsed once."""
    text = resources.files("fleetmedic.sim").joinpath("calibration.yaml").read_text("utf-8")
    return Calibration.model_validate(yaml.safe_load(text))
