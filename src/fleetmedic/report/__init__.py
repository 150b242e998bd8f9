"""Reports: the self-contained HTML review and chart images (docs/report.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fleetmedic.model.errors import InputError
from fleetmedic.report.charts import Chart, build_charts
from fleetmedic.report.data import ReportData, gather
from fleetmedic.report.html import render_html
from fleetmedic.report.png import find_browser, write_pngs

__all__ = [
    "Chart",
    "ReportData",
    "WrittenReport",
    "build_charts",
    "gather",
    "write_page",
    "write_report",
]


@dataclass(frozen=True)
class WrittenReport:
    html: Path
    images: list[Path] = field(default_factory=list)


def write_report(
    backend: Any,
    out: Path,
    *,
    png_dir: Path | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
) -> WrittenReport:
    """Write the HTML report to ``out`` and, with ``png_dir``, every chart as a PNG there.

    The browser for PNGs is looked up before any query runs, so a missing Chromium fails fast.
    """
    browser = find_browser() if png_dir is not None else None
    data = gather(backend, since, until, limit=limit)
    return write_page(data, out, png_dir=png_dir, browser=browser)


def write_page(
    data: ReportData, out: Path, *, png_dir: Path | None = None, browser: str | None = None
) -> WrittenReport:
    """Render gathered report data to ``out`` (and PNGs), for callers that also use the data."""
    charts = build_charts(data)
    page = render_html(data, charts)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from exc
    images = write_pngs(charts, png_dir, browser) if png_dir is not None and browser else []
    return WrittenReport(html=out, images=images)
