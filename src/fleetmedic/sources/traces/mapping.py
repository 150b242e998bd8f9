"""The mapping file of ``fleetmedic import csv``: which column holds which job field.

A YAML file validated strictly (Pydantic, ``extra="forbid"``) so a misspelt key fails loudly
instead of silently importing nothing. See docs/import.md for a worked example.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleetmedic.model.errors import InputError
from fleetmedic.model.records import JobKind, JobStatus

TimeUnit = Literal["iso", "s", "ms", "us"]
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    """Store field -> column name in the file. ``job_id`` and ``status`` are required."""

    job_id: str
    status: str
    user: str | None = None
    team: str | None = None
    project: str | None = None
    kind: str | None = None
    framework: str | None = None
    num_gpus: str | None = None
    num_nodes: str | None = None
    priority: str | None = None
    queue: str | None = None
    gpu_model: str | None = None
    submitted_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: str | None = None
    reason: str | None = None
    nodes: str | None = None

    def used(self) -> dict[str, str]:
        """The mapped fields, field -> column."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Mapping(_Strict):
    """A whole mapping file."""

    source: str
    cluster: str | None = None
    reader: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    delimiter: str | None = None
    time_zone: str = "UTC"
    time_unit: TimeUnit = "iso"
    epoch: str = "1970-01-01 00:00:00"
    columns: Columns
    statuses: dict[str, JobStatus] = {}
    kinds: dict[str, JobKind] = {}
    nodes_separator: str = ","

    @field_validator("source", "cluster")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN.match(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.'")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("delimiter", "nodes_separator")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("must be one character")
        return value

    @property
    def prefix(self) -> str:
        """Job ids are ``<source>[-<cluster>]:<id>``."""
        return f"{self.source}-{self.cluster}" if self.cluster else self.source


def load_mapping(path: Path | None) -> Mapping:
    """Read and validate a mapping file; every problem is one :class:`InputError` line."""
    if path is None:
        raise InputError("format csv needs --mapping FILE (see docs/import.md)")
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such mapping file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable YAML mapping: {first}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a mapping file is a YAML mapping with 'source' and 'columns'")
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "mapping"
        raise InputError(f"{path}: {where}: {error['msg']}") from None
