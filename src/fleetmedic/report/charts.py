"""Plotly figures built from the report's aggregates, one function per chart.

Every label that comes from the data (categories, signatures, node names) is HTML-escaped before
it reaches Plotly: Plotly renders a subset of HTML in labels, and the page must never run markup a
user slipped into a job or a diagnosis. Plotly shows the escaped entities as plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from fleetmedic.kpi.priorities_model import PriorityReport
from fleetmedic.report.data import ReportData, SizeRow, WeeklySeries
from fleetmedic.report.queries import NodeLoss

STATUS_COLORS = {
    "succeeded": "#2ca02c",
    "failed": "#d62728",
    "timeout": "#ff7f0e",
    "preempted": "#9467bd",
    "cancelled": "#7f7f7f",
    "running": "#1f77b4",
    "pending": "#aec7e8",
}


@dataclass(frozen=True)
class Chart:
    """A figure with the words that explain it on the page (docs/report.md has the long form)."""

    name: str
    title: str
    how_to_read: str
    figure: go.Figure


def _label(text: object, width: int | None = None) -> str:
    """Escaped label text, cut to ``width`` characters (the hover shows it in full)."""
    value = str(text)
    if width is not None and len(value) > width:
        value = value[: width - 1] + "…"
    return html.escape(value, quote=True)


def _layout(fig: go.Figure, *, y_title: str, x_title: str = "", empty: bool = False) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 50, "t": 40, "b": 90},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    if empty:
        fig.add_annotation(
            text="No data in this period", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
    return fig


def outcome_hours(weekly: WeeklySeries) -> Chart:
    fig = go.Figure()
    for status, values in weekly.hours_by_status.items():
        fig.add_bar(
            name=status,
            x=list(weekly.weeks),
            y=list(values),
            marker_color=STATUS_COLORS.get(status),
        )
    fig.update_layout(barmode="stack")
    return Chart(
        name="gpu_hours_by_outcome",
        title="GPU-hours by outcome, per week",
        how_to_read=(
            "Each bar is one week (starting Monday, UTC); its height is the GPU-hours used, split "
            "by how the job ended. A growing red, orange or purple share is capacity spent on "
            "work that did not finish."
        ),
        figure=_layout(fig, y_title="GPU-hours", x_title="week", empty=not weekly.weeks),
    )


def pareto(report: PriorityReport, top: int = 15) -> Chart:
    rows = report.rows[:top]
    total = report.total_gpu_hours_lost
    running, cumulative = 0.0, []
    for row in rows:
        running += row.gpu_hours_lost
        cumulative.append(100.0 * running / total if total else 0.0)
    causes = [_label(row.cause, 28) for row in rows]
    fig = go.Figure()
    fig.add_bar(
        name="GPU-hours lost",
        x=causes,
        y=[row.gpu_hours_lost for row in rows],
        marker_color="#d62728",
        customdata=[[_label(row.cause), _label(row.team)] for row in rows],
        hovertemplate=(
            "%{customdata[0]}<br>%{y:,.1f} GPU-h lost<br>%{customdata[1]}<extra></extra>"
        ),
    )
    fig.add_scatter(
        name="cumulative % of all lost GPU-hours",
        x=causes,
        y=cumulative,
        yaxis="y2",
        mode="lines+markers",
        marker_color="#1f77b4",
    )
    fig.update_layout(
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 105],
            "tickvals": [0, 20, 40, 60, 80, 100],
            "ticksuffix": "%",
            "showgrid": False,
        },
        xaxis={"tickangle": -30},
    )
    return Chart(
        name="pareto_causes",
        title="Causes by GPU-hours lost (Pareto)",
        how_to_read=(
            "Bars: GPU-hours each root cause (category/signature) lost in the period, largest "
            "first. Line: the running share of all lost GPU-hours. The causes left of the point "
            "where the line flattens are the few worth fixing first."
        ),
        figure=_layout(fig, y_title="GPU-hours lost", empty=not rows),
    )


def _pct(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else 100.0 * v for v in values]


def goodput_trend(weekly: WeeklySeries) -> Chart:
    fig = go.Figure()
    fig.add_scatter(
        name="goodput", x=list(weekly.weeks), y=_pct(weekly.goodput), mode="lines+markers"
    )
    fig.add_scatter(name="ETTR", x=list(weekly.weeks), y=_pct(weekly.ettr), mode="lines+markers")
    fig.update_yaxes(range=[0, 105])
    return Chart(
        name="goodput_ettr",
        title="Goodput and ETTR, per week",
        how_to_read=(
            "Goodput: share of allocated GPU-hours whose progress was kept. ETTR: share of a job's "
            "wall-clock time (re-queue waits included) spent making progress that was kept. "
            "Both at 100% means no work was lost; a dip marks a bad week."
        ),
        figure=_layout(fig, y_title="%", x_title="week", empty=not weekly.weeks),
    )


def queue_wait(sizes: Sequence[SizeRow]) -> Chart:
    buckets = [row.bucket for row in sizes]
    fig = go.Figure()
    for name, values in (
        ("p50", [row.wait_p50 for row in sizes]),
        ("p90", [row.wait_p90 for row in sizes]),
        ("p99", [row.wait_p99 for row in sizes]),
    ):
        fig.add_bar(name=name, x=buckets, y=values)
    fig.update_layout(barmode="group")
    return Chart(
        name="queue_wait_by_size",
        title="Queue wait by job size",
        how_to_read=(
            "Hours from submission to start for jobs that started in the period, by job size "
            "(GPUs): median, 90th and 99th percentile. Large jobs waiting far longer than small "
            "ones point at fragmentation or missing gang-scheduling capacity."
        ),
        figure=_layout(
            fig,
            y_title="hours",
            x_title="job size (GPUs)",
            empty=not any(row.wait_p50 is not None for row in sizes),
        ),
    )


def mttf(sizes: Sequence[SizeRow]) -> Chart:
    fig = go.Figure()
    fig.add_bar(
        name="MTTF",
        x=[row.bucket for row in sizes],
        y=[row.mttf_hours for row in sizes],
        customdata=[[row.interruptions, row.run_hours] for row in sizes],
        hovertemplate=(
            "%{x} GPUs<br>MTTF %{y:,.1f} h<br>%{customdata[0]} interruptions in "
            "%{customdata[1]:,.0f} run-hours<extra></extra>"
        ),
        marker_color="#9467bd",
    )
    return Chart(
        name="mttf_by_size",
        title="Mean time to failure by job size",
        how_to_read=(
            "Run-hours per interruption (failed, timed out or preempted attempt), by job size. "
            "Bigger jobs span more nodes, so their MTTF falls; a steep drop says large jobs need "
            "more frequent checkpoints or healthier nodes."
        ),
        figure=_layout(
            fig,
            y_title="hours",
            x_title="job size (GPUs)",
            empty=not any(row.mttf_hours is not None for row in sizes),
        ),
    )


def worst_nodes(nodes: Sequence[NodeLoss]) -> Chart:
    ordered = list(reversed(nodes))  # horizontal bars draw bottom-up: worst on top
    fig = go.Figure()
    fig.add_bar(
        name="GPU-hours lost",
        orientation="h",
        y=[_label(n.node_id, 24) for n in ordered],
        x=[n.gpu_hours_lost for n in ordered],
        text=[f"{n.failures} failures" for n in ordered],
        customdata=[_label(n.pool or "—") for n in ordered],
        hovertemplate="%{y} (pool %{customdata})<br>%{x:,.1f} GPU-h lost, %{text}<extra></extra>",
        marker_color="#d62728",
    )
    return Chart(
        name="worst_nodes",
        title="Worst nodes",
        how_to_read=(
            "Nodes ranked by GPU-hours lost to failures they took part in (a node named by the "
            "diagnosis takes the whole failure; otherwise the attempt's nodes share it), with the "
            "number of failed attempts. One node far ahead of the rest is a candidate to cordon."
        ),
        figure=_layout(fig, y_title="", x_title="GPU-hours lost", empty=not nodes),
    )


def build_charts(data: ReportData) -> list[Chart]:
    """The report's charts, in page order."""
    return [
        outcome_hours(data.weekly),
        pareto(data.priorities),
        goodput_trend(data.weekly),
        queue_wait(data.sizes),
        mttf(data.sizes),
        worst_nodes(data.worst_nodes),
    ]
