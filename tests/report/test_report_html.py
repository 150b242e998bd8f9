"""The HTML report is one self-contained, escaped file with every chart and the ranking."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from plotly.offline import get_plotlyjs
from typer.testing import CliRunner

from fleetmedic.cli import app

if TYPE_CHECKING:
    from conftest import Hostile

CHARTS = (
    "gpu_hours_by_outcome",
    "pareto_causes",
    "goodput_ettr",
    "queue_wait_by_size",
    "mttf_by_size",
    "worst_nodes",
)


@pytest.fixture(scope="module")
def page(report_db: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("html") / "sub" / "report.html"
    result = CliRunner().invoke(app, ["report", "--db", str(report_db), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    return out.read_text("utf-8")


def test_page_needs_no_network(page: str) -> None:
    tags = re.findall(r"<(?:script|link|img|iframe|source|embed)\b[^>]*>", page, re.IGNORECASE)
    assert tags, "expected the page's own script tags"
    for tag in tags:
        assert not re.search(r"\b(?:src|href)\s*=", tag, re.IGNORECASE), tag
    assert "@import" not in page


def test_plotly_js_is_inlined_exactly_once(page: str) -> None:
    banner = get_plotlyjs()[:200]

    assert page.count(banner) == 1
    assert page.count("Plotly.newPlot(") == len(CHARTS)


def test_every_chart_and_the_priorities_table_are_present(page: str) -> None:
    for name in CHARTS:
        assert f'id="chart-{name}"' in page
    table = page[page.index('<section id="priorities">') :]
    assert table.count("<tr>") == 1 + 3  # header + gpu_oom, the hostile cause, timeout
    assert "gpu_oom/cuda_oom" in table


def test_user_text_is_escaped_everywhere(page: str, hostile: Hostile) -> None:
    for payload in hostile.payloads:
        assert payload not in page, payload
    assert "&lt;script&gt;alert(&#x27;category&#x27;)&lt;/script&gt;" in page  # the table cell
