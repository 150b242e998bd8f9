"""The catalog is data: it must load, cover the taxonomy, and each rule must do what its examples say."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from fleetmedic.diagnose.catalog import line_bound, load_catalog, parse_family
from fleetmedic.diagnose.engine import compiled_catalog, diagnose
from fleetmedic.diagnose.scan import CompiledCatalog
from fleetmedic.model.inputs import Document
from fleetmedic.model.taxonomy import CATEGORIES

CATALOG = load_catalog()
SIGNATURES = CATALOG.signatures
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_category_has_a_signature() -> None:
    covered = {s.category for s in SIGNATURES if s.role != "progress"}
    assert covered == set(CATEGORIES) - {"unknown"}


def test_every_family_is_documented() -> None:
    text = (DOCS / "signatures.md").read_text("utf-8")
    for family in CATALOG.families:
        assert f"`{family.family}`" in text, (
            f"family {family.family} missing from docs/signatures.md"
        )


@pytest.mark.parametrize("engine", ["hyperscan", "regex"])
def test_both_engines_find_every_example(engine: str) -> None:
    compiled = CompiledCatalog(CATALOG, engine)
    for index, sig in enumerate(compiled.signatures):
        if "log" not in sig.sources:
            continue
        progress = sig.role == "progress"
        matcher = compiled.progress_matcher if progress else compiled.matcher
        owner = compiled.progress_owner if progress else compiled.pattern_owner
        for example in sig.examples:
            found = {owner[p] for p, _ in matcher.scan(example.encode() + b"\n")}
            assert index in found, f"{engine} misses {sig.id} example {example!r}"


@pytest.mark.parametrize("sig", [s for s in SIGNATURES if s.role != "progress"], ids=lambda s: s.id)
def test_example_alone_is_reported(sig) -> None:  # type: ignore[no-untyped-def]
    """A signature's example, alone in a log, shows up as the root cause or among the findings."""
    example = sig.examples[0].encode()
    doc = Document(name="x.log", kind="log", opener=lambda: io.BytesIO(example + b"\n"))
    result = diagnose([doc], name="x")
    reported = {result.signature} | {s.signature for s in result.secondary}
    same_category_won = result.category == sig.category
    assert sig.id in reported or same_category_won


def test_typo_in_a_field_fails_loudly() -> None:
    family = {
        "family": "t",
        "description": "d",
        "signatures": [
            {
                "id": "t.x",
                "category": "gpu_oom",
                "priority": 1,
                "confidence": 0.5,
                "patterns": ["x"],
                "summary": "s",
                "examples": ["x"],
                "advise": "typo",
            }
        ],
    }
    with pytest.raises(ValidationError, match="advise"):
        parse_family(yaml.safe_dump(family))


def test_unknown_category_is_refused() -> None:
    text = """
family: t
description: d
signatures:
  - {id: t.x, category: gpu_melted, priority: 1, confidence: 0.5, patterns: [x], summary: s, examples: [x]}
"""
    with pytest.raises(ValidationError, match="unknown taxonomy category"):
        parse_family(text)


def test_example_that_does_not_match_is_refused() -> None:
    text = """
family: t
description: d
signatures:
  - {id: t.x, category: gpu_oom, priority: 1, confidence: 0.5, patterns: [abc], summary: s, examples: [xyz]}
"""
    with pytest.raises(ValidationError, match="does not match"):
        parse_family(text)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"foo\s+bar", "foo   bar", True),
        (r"foo\s+bar", "foo\nbar", False),
        (r"a[^)]*b", "a xx b", True),
        (r"a[^)]*b", "a x\nx b", False),
        (r"x\Wy", "x y", True),
        (r"x\Wy", "x\ny", False),
        (r"[\s]", " ", True),
        (r"[]]", "]", True),
    ],
)
def test_line_bound_keeps_patterns_on_one_line(pattern: str, text: str, matches: bool) -> None:
    import re

    assert bool(re.search(line_bound(pattern), text)) is matches


def test_compiled_catalog_is_cached() -> None:
    assert compiled_catalog("auto") is compiled_catalog("auto")
