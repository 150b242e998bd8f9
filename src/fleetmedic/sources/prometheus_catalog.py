"""The signal catalog: which PromQL queries to run and what their results mean, as YAML data.

Why data: a platform team adds a rule for its own exporter (a new DCGM field, a node-exporter
alert) by adding an entry, without code. Why strict: a typo in a field, a category or a message
placeholder would otherwise surface as an event that silently never fires or a message full of
"?", so :func:`load_catalog` refuses it with one line naming the file and the field.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleetmedic.model.errors import InputError
from fleetmedic.model.taxonomy import CATEGORIES

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
FIXED_FIELDS = frozenset(
    {"node", "gpu", "uuid", "model", "device", "value", "value_name", "value_percent", "signal"}
)
"""What every message may name; a signal's ``labels`` add the series labels it may name."""

GPU_LABELS = {"gpu": "gpu", "uuid": "UUID", "model": "modelName", "device": "device"}
"""DCGM exporter label of each GPU field (dcgm-exporter's names, kept by every scrape config)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signal(_Strict):
    """One query and how to read its series."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["event", "usage"]
    description: str = ""
    query: str = Field(min_length=1)
    scope: Literal["gpu", "node"] = "gpu"
    labels: tuple[str, ...] = ()
    # event signals
    reason: str | None = None
    severity: Literal["info", "warning", "error"] = "warning"
    message: str | None = None
    category: str | None = None
    confidence: float = Field(default=0.9, ge=0, le=1)
    ignore_values: tuple[float, ...] = ()
    value_names: dict[int, str] = Field(default_factory=dict)
    value_digits: int = Field(default=0, ge=0, le=6)
    value_in_key: bool = True
    # usage signals
    metric: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    scale: float = 1.0

    @model_validator(mode="after")
    def _fits_kind(self) -> Signal:
        if self.kind == "event":
            if not self.reason or not self.message:
                raise ValueError("an event signal needs reason and message")
            if self.metric is not None:
                raise ValueError("metric is for usage signals")
            if self.category is not None and self.category not in CATEGORIES:
                raise ValueError(f"unknown category {self.category!r} (docs/taxonomy.md)")
            self._check_placeholders(self.message)
        elif self.metric is None:
            raise ValueError("a usage signal needs metric")
        elif self.reason or self.message or self.category:
            raise ValueError("reason, message and category are for event signals")
        return self

    def _check_placeholders(self, message: str) -> None:
        allowed = FIXED_FIELDS | set(self.labels)
        for name in PLACEHOLDER.findall(message):
            if name not in allowed:
                raise ValueError(
                    f"message names {{{name}}}; allowed: {', '.join(sorted(allowed))} "
                    "(add a series label to `labels` to name it)"
                )

    @cached_property
    def ignored(self) -> frozenset[float]:
        return frozenset(self.ignore_values)


class Catalog(_Strict):
    version: Literal[1]
    node_labels: tuple[str, ...] = Field(min_length=1)
    signals: tuple[Signal, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[str] = set()
        for signal in self.signals:
            if signal.name in seen:
                raise ValueError(f"signal {signal.name!r} is defined twice")
            seen.add(signal.name)
        return self

    def of_kind(self, kind: str) -> list[Signal]:
        return [s for s in self.signals if s.kind == kind]


def _where(error: ValidationError, raw: object) -> str:
    """``signals.gpu_xid.category: message``: the entry's name, not its index, when known."""
    err = error.errors()[0]
    loc = list(err["loc"])
    if len(loc) >= 2 and loc[0] == "signals" and isinstance(loc[1], int) and isinstance(raw, dict):
        entries = raw.get("signals")
        if (
            isinstance(entries, list)
            and loc[1] < len(entries)
            and isinstance(entries[loc[1]], dict)
        ):
            loc[1] = str(entries[loc[1]].get("name", loc[1]))
    where = ".".join(str(x) for x in loc) or "(top)"
    return f"{where}: {err['msg']}"


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not YAML: {' '.join(str(exc).split())}") from None
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{source}: {_where(exc, raw)}") from None


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at ``path``, else the packaged ``prometheus_signals.yaml``."""
    if path is None:
        packaged = resources.files("fleetmedic.sources").joinpath("prometheus_signals.yaml")
        return parse_catalog(packaged.read_text("utf-8"), "prometheus_signals.yaml")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read catalog {path}: {exc.strerror}") from None
    return parse_catalog(text, str(path))
