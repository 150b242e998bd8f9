"""The signature catalog: YAML files in ``signatures/``, one per family, validated strictly.

A signature says which lines (or Kubernetes facts) show a failure, which taxonomy category that is,
whether it is a *cause* or only a *symptom* that other failures produce, how strongly it wins over
other findings, and what to do. Adding one is editing YAML; a typo fails loudly at load time.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetmedic.model.taxonomy import CATEGORIES

Role = Literal["cause", "symptom", "progress"]
Source = Literal["log", "k8s"]


class Signature(BaseModel):
    """One rule. ``patterns`` are regular expressions over a single line (case-insensitive unless
    ``case_sensitive``); named groups (``(?P<xid>\\d+)``) become details for the summary. A line
    that also matches one of ``exclude`` is not a hit (benign look-alikes such as NCCL INFO)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    category: str
    role: Role = "cause"
    priority: int = Field(ge=0, le=100)
    confidence: float = Field(ge=0.0, le=1.0)
    patterns: tuple[str, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    case_sensitive: bool = False
    sources: tuple[Source, ...] = ("log", "k8s")
    summary: str
    owner: Literal["user", "platform", "hardware"] | None = None
    action: str | None = None
    advice: str | None = None
    retryable: bool | None = None
    node_scoped: bool = False
    fallback: bool = False  # a catch-all rule: any specific reading of the same line wins
    examples: tuple[str, ...] = Field(min_length=1)
    counter_examples: tuple[str, ...] = ()

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES or value == "unknown":
            raise ValueError(f"unknown taxonomy category {value!r}")
        return value

    @field_validator("patterns", "exclude")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        return patterns

    @model_validator(mode="after")
    def _examples_match(self) -> Signature:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        compiled = [re.compile(line_bound(p), flags) for p in self.patterns]
        excluded = [re.compile(p, flags) for p in self.exclude]
        for example in self.examples:
            if not any(c.search(example) for c in compiled) or any(
                x.search(example) for x in excluded
            ):
                raise ValueError(f"{self.id}: example does not match its patterns: {example!r}")
        for counter in self.counter_examples:
            if any(c.search(counter) for c in compiled) and not any(
                x.search(counter) for x in excluded
            ):
                raise ValueError(f"{self.id}: counter-example matches its patterns: {counter!r}")
        return self


class Family(BaseModel):
    """One YAML file: the signatures of one framework or subsystem."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    description: str
    signatures: tuple[Signature, ...]


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    families: tuple[Family, ...]

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return tuple(s for family in self.families for s in family.signatures)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        seen: set[str] = set()
        for sig in self.signatures:
            if sig.id in seen:
                raise ValueError(f"duplicate signature id {sig.id!r}")
            seen.add(sig.id)
        return self


def line_bound(pattern: str) -> str:
    """Rewrite a pattern so no part of it can match across a newline.

    The scanner matches whole chunks of a file at once (that is what makes it fast), so ``\\s``,
    ``\\W``, ``\\D`` and negated classes ``[^...]``, which all match ``\\n``, are narrowed to stay on
    one line. Authors write ordinary regexes; this keeps them line-scoped.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            if not in_class and pair == "\\s":
                out.append("[ \\t\\r\\f\\v]")
            elif not in_class and pair in ("\\W", "\\D"):
                out.append("[^" + pair.lower() + "\\n]")
            elif in_class and pair == "\\s":
                out.append(" \\t\\r\\f\\v")
            else:
                out.append(pair)
            i += 2
            continue
        if not in_class and char == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^\\n")
                i += 2
                continue
        elif in_class and char == "]" and out and out[-1] not in ("[", "[^\\n"):
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


def parse_family(text: str, name: str = "<string>") -> Family:
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: a signature file is a mapping with 'family' and 'signatures'")
    return Family.model_validate(data)


@cache
def load_catalog() -> Catalog:
    """All packaged families, in file-name order."""
    folder = resources.files("fleetmedic.diagnose").joinpath("signatures")
    families = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            families.append(parse_family(entry.read_text("utf-8"), entry.name))
    return Catalog(families=tuple(families))
