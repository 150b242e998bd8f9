"""The failure taxonomy: loaded from ``taxonomy.yaml`` so ids, owners and default advice live in data."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

Owner = Literal["user", "platform", "hardware", "—"]
OWNERS: tuple[str, ...] = ("user", "platform", "hardware", "—")


class Category(BaseModel):
    """One taxonomy entry: who owns the fix and what to do by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    owner: Owner
    meaning: str
    action: str
    retryable: bool
    advice: str


@cache
def _load() -> dict[str, Category]:
    text = resources.files("fleetmedic.model").joinpath("taxonomy.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {key: Category(id=key, **value) for key, value in raw.items()}


CATEGORIES: dict[str, Category] = _load()


def category(category_id: str) -> Category:
    """Return the taxonomy entry, failing loudly on an id that is not in the contract."""
    try:
        return CATEGORIES[category_id]
    except KeyError:
        raise KeyError(f"unknown taxonomy category: {category_id!r}") from None
