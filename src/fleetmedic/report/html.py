"""Assemble the single-file HTML report from the charts and the priorities table.

One copy of plotly.js is inlined in the page head and every chart is a ``<div>`` drawn by it, so
the file opens anywhere, offline, and stays one file to attach to a ticket or an e-mail. Every
piece of text from the store goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from string import Template

from plotly.offline import get_plotlyjs

import fleetmedic
from fleetmedic.kpi.priorities_format import table_cells
from fleetmedic.kpi.priorities_model import PriorityReport
from fleetmedic.report.charts import Chart
from fleetmedic.report.data import Headline, ReportData

TITLE = "fleetmedic fleet report"

_PRIORITIES_HOW = (
    "Root causes ranked by GPU-hours lost in the period (work since the last checkpoint, plus "
    "restart time when the allocation was held). Gain: the goodput points a fix would return. "
    "Trend: against the period of equal length before. Where: a node, pool or image carrying "
    "over half of the cause's losses."
)

_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("#", True),
    ("Cause", False),
    ("Owner team", False),
    ("GPU-h lost", True),
    ("Failures", True),
    ("Jobs", True),
    ("Users", True),
    ("Tickets", True),
    ("Trend", False),
    ("Gain (goodput pts)", True),
    ("Where", False),
)


@cache
def _template() -> Template:
    text = resources.files("fleetmedic.report").joinpath("template.html").read_text("utf-8")
    return Template(text)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _cards(head: Headline) -> str:
    cards = (
        ("Goodput", _pct(head.goodput)),
        ("ETTR", _pct(head.ettr)),
        ("GPU-hours", f"{head.gpu_hours:,.0f}"),
        ("GPU-hours lost", f"{head.gpu_hours_lost:,.0f}"),
        ("Jobs", f"{head.jobs:,}"),
        ("Failures", f"{head.failures:,}"),
        ("MTTR", "—" if head.mttr_hours is None else f"{head.mttr_hours:,.1f} h"),
    )
    return "\n".join(
        f'<div class="card"><div class="value">{html.escape(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for label, value in cards
    )


def _chart_section(chart: Chart) -> str:
    div = chart.figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{chart.name}",
        default_height="420px",
        config={"displaylogo": False, "responsive": True},
    )
    return (
        f'<section id="{chart.name}">\n<h2>{html.escape(chart.title)}</h2>\n'
        f'<p class="how">{html.escape(chart.how_to_read)}</p>\n<div class="chart">{div}</div>\n'
        "</section>"
    )


def priorities_table(report: PriorityReport) -> str:
    """The ranking as an HTML table; every cell escaped."""
    if not report.rows:
        return "<p>No failed attempts in this period.</p>"
    head = "".join(
        f"<th{' class=num' if numeric else ''}>{html.escape(name)}</th>"
        for name, numeric in _COLUMNS
    )
    body = []
    for row in report.rows:
        cells = ["—" if cell is None else cell for cell in table_cells(row)]
        body.append(
            "<tr>"
            + "".join(
                f"<td{' class=num' if numeric else ''}>{html.escape(str(cell))}</td>"
                for cell, (_, numeric) in zip(cells, _COLUMNS, strict=True)
            )
            + "</tr>"
        )
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def render_html(data: ReportData, charts: Sequence[Chart], *, now: datetime | None = None) -> str:
    """The whole page as one string."""
    window = data.window
    period = (
        f"{window.since:%Y-%m-%d %H:%M} to {window.until:%Y-%m-%d %H:%M} UTC "
        f"({window.days:,.1f} days)"
    )
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M")
    return _template().substitute(
        title=html.escape(TITLE),
        period=html.escape(period),
        plotlyjs=get_plotlyjs(),
        cards=_cards(data.headline),
        charts="\n".join(_chart_section(chart) for chart in charts),
        priorities_how=html.escape(_PRIORITIES_HOW),
        priorities=priorities_table(data.priorities),
        version=html.escape(fleetmedic.__version__),
        generated=html.escape(generated),
    )
