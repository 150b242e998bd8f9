"""Helpers to build bundles from text, as the engine sees them."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.model.inputs import Document
from fleetmedic.model.records import Diagnosis


def log(name: str, text: str) -> Document:
    data = text.encode("utf-8")
    return Document(name=name, kind="log", opener=lambda: io.BytesIO(data))


@pytest.fixture
def run() -> Callable[..., Diagnosis]:
    """Diagnose a bundle given as {file name: text}."""

    def _run(files: dict[str, str], engine: str = "auto") -> Diagnosis:
        return diagnose([log(n, t) for n, t in files.items()], name="bundle", engine=engine)

    return _run
