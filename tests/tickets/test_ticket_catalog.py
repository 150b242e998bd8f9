"""The known-issue catalog: valid, each entry found by its own example, category first."""

from __future__ import annotations

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.catalog import default_catalog, parse_catalog

CATALOG = default_catalog()


@pytest.mark.parametrize("issue", CATALOG.issues, ids=[i.id for i in CATALOG.issues])
def test_every_entry_is_the_top_hit_for_its_example(issue: object) -> None:
    hits = CATALOG.search(issue.example)  # type: ignore[attr-defined]

    assert hits and hits[0].id == issue.id  # type: ignore[attr-defined]


def test_a_known_category_puts_its_entries_first() -> None:
    hits = CATALOG.search("my job failed with an error", category="storage_io")

    assert {h.id for h in hits} == {"KI-STORAGE-NFS", "KI-DISK-QUOTA"}


def test_a_catalog_with_an_unknown_category_or_key_fails_loudly() -> None:
    entry = "- {id: X, title: t, categories: [%s], symptoms: s, fix: f, runbook: r, example: e%s}"
    with pytest.raises(InputError, match="unknown or missing"):
        parse_catalog(entry % ("gpu_omm", ""), "k.yaml")
    with pytest.raises(InputError, match="Extra inputs"):
        parse_catalog(entry % ("gpu_oom", ", owner: me"), "k.yaml")
    with pytest.raises(InputError, match="repeat an id"):
        parse_catalog((entry % ("gpu_oom", "")) + "\n" + (entry % ("gpu_oom", "")), "k.yaml")
