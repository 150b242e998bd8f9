"""The four renderings of a priorities report: text for people, JSON/CSV for tools, Markdown for
tickets and wikis. Kept beside the records so the CLI, the HTML report and the tests share them.
"""

from __future__ import annotations

import csv
import io
import json

from fleetmedic.kpi.priorities_model import PriorityReport, PriorityRow

FORMATS = ("text", "json", "csv", "markdown")

CSV_COLUMNS = (
    "rank",
    "category",
    "signature",
    "owner",
    "team",
    "gpu_hours_lost",
    "failures",
    "jobs_affected",
    "users_affected",
    "tickets",
    "trend",
    "trend_change_pct",
    "previous_gpu_hours_lost",
    "gain_gpu_hours",
    "gain_goodput_points",
    "node",
    "node_share",
    "pool",
    "pool_share",
    "image",
    "image_share",
    "repeat_tickets",
)


def trend_label(row: PriorityRow) -> str:
    """``up +25%``, ``down -40%``, ``flat +3%`` or ``new``."""
    if row.trend.change_pct is None:
        return row.trend.direction
    return f"{row.trend.direction} {row.trend.change_pct:+.0f}%"


def to_json(report: PriorityReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_csv(report: PriorityReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(row.to_flat())
    return buffer.getvalue()


def _md_cell(value: object) -> str:
    """A Markdown table cell: pipes, newlines and HTML can't break the table or inject markup."""
    text = "—" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _header(report: PriorityReport) -> str:
    window = report.window
    share = report.total_gpu_hours_lost / report.total_gpu_hours if report.total_gpu_hours else 0.0
    return (
        f"{window.since:%Y-%m-%d %H:%M} to {window.until:%Y-%m-%d %H:%M} UTC "
        f"({window.days:g} days, compared with the {window.days:g} days before): "
        f"{report.total_gpu_hours:,.1f} GPU-hours, {report.total_gpu_hours_lost:,.1f} lost "
        f"({share:.1%})"
    )


_MD_HEAD = (
    "Rank",
    "Cause",
    "Owner team",
    "GPU-h lost",
    "Failures",
    "Jobs",
    "Users",
    "Tickets",
    "Trend",
    "Gain (goodput pts)",
    "Concentrated on",
)


def table_cells(row: PriorityRow) -> tuple[object, ...]:
    """A row's cells in table order (Markdown here, HTML in the report); None is an empty cell."""
    return (
        row.rank,
        row.cause,
        row.team,
        f"{row.gpu_hours_lost:,.1f}",
        row.failures,
        row.jobs_affected,
        row.users_affected,
        row.tickets,
        trend_label(row),
        f"{row.gain_goodput_points:.2f}",
        row.where or None,
    )


def to_markdown(report: PriorityReport) -> str:
    lines = [
        f"**Priorities** {_md_cell(_header(report))}",
        "",
        "| " + " | ".join(_MD_HEAD) + " |",
        "|" + "|".join("---:" if i in {0, 3, 4, 5, 6, 7, 9} else "---" for i in range(11)) + "|",
    ]
    for row in report.rows:
        cells = table_cells(row)
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def to_text(report: PriorityReport) -> str:
    lines = [f"Priorities {_header(report)}"]
    if not report.rows:
        lines.append("No failed attempts in this period.")
        return "\n".join(lines) + "\n"
    head = (
        f"{'#':>3}  {'cause':<34} {'owner team':<22} {'GPU-h lost':>11} {'fail':>5} "
        f"{'jobs':>5} {'users':>5} {'tix':>4}  {'trend':<11} {'gain pts':>8}  where"
    )
    lines += ["", head]
    for row in report.rows:
        tickets = "-" if row.tickets is None else str(row.tickets)
        lines.append(
            f"{row.rank:>3}  {row.cause[:34]:<34} {row.team[:22]:<22} {row.gpu_hours_lost:>11,.1f} "
            f"{row.failures:>5} {row.jobs_affected:>5} {row.users_affected:>5} {tickets:>4}  "
            f"{trend_label(row):<11} {row.gain_goodput_points:>8.2f}  {row.where}".rstrip()
        )
    return "\n".join(lines) + "\n"


def render(report: PriorityReport, fmt: str) -> str:
    """Render in one of :data:`FORMATS`."""
    renderers = {"text": to_text, "json": to_json, "csv": to_csv, "markdown": to_markdown}
    return renderers[fmt](report)
