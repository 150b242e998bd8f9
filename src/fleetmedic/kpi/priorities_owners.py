"""Which team fixes a cause: the taxonomy owner mapped to a team name, from ``owners.yaml``.

The mapping is data so a deployment renames teams or moves one category (say ``image_pull``) to
another team without code; it is validated strictly so a misspelt owner or category fails loudly
instead of silently leaving rows unassigned.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fleetmedic.model import CATEGORIES, OWNERS
from fleetmedic.model.errors import InputError

UNASSIGNED = "Unassigned (triage)"


class OwnerMap(BaseModel):
    """Taxonomy owner → team, with per-category overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owners: dict[str, str]
    categories: dict[str, str] = {}

    @field_validator("owners")
    @classmethod
    def _known_owners(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OWNERS))
        if unknown:
            raise ValueError(f"unknown owner(s) {unknown}; expected some of {list(OWNERS)}")
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown taxonomy categor(ies) {unknown}")
        return value

    def team(self, category: str, owner: str) -> str:
        """The team for a cause: the category override, else the owner's team, else triage."""
        if category in self.categories:
            return self.categories[category]
        return self.owners.get(owner, UNASSIGNED)


def parse_owner_map(text: str, origin: str) -> OwnerMap:
    """Validate an owners YAML document; ``origin`` names it in the one-line error."""
    try:
        raw = yaml.safe_load(text)
        return OwnerMap.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        detail = str(exc).replace("\n", " ")
        raise InputError(f"{origin}: not a valid owners mapping: {detail}") from exc


@cache
def default_owner_map() -> OwnerMap:
    """The packaged ``kpi/owners.yaml``."""
    text = resources.files("fleetmedic.kpi").joinpath("owners.yaml").read_text("utf-8")
    return parse_owner_map(text, "fleetmedic/kpi/owners.yaml")


def load_owner_map(path: str | Path | None) -> OwnerMap:
    """A deployment's own mapping file, or the packaged one when ``path`` is None."""
    if path is None:
        return default_owner_map()
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read owners file {path}: {exc.strerror}") from exc
    return parse_owner_map(text, str(path))
