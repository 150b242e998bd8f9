"""The report's charts as PNG files, drawn by kaleido in a headless Chromium.

kaleido 1.x no longer ships a browser: it drives an installed Chrome or Chromium. We look for one
first, the same way kaleido does (``BROWSER_PATH``, then the usual names on ``PATH``, then the
usual install paths), so a machine without one gets a one-line error before any work is done,
not a stack trace after the HTML was written. MathJax is switched off: kaleido would otherwise
load it from a CDN, and the images must render without network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go

from fleetmedic.model.errors import FleetmedicError, InputError
from fleetmedic.report.charts import Chart

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TYPICAL_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/snap/bin/chromium",
)
WIDTH, HEIGHT = 1100, 480

MISSING = (
    "--png needs Chromium or Chrome to draw images and none was found: install it (Debian: "
    "apt-get install chromium) or set BROWSER_PATH to its executable"
)


class ImageError(FleetmedicError):
    """The browser was found but could not draw the images."""


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_browser(
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    typical: Sequence[str] = TYPICAL_PATHS,
) -> str:
    """Path of the Chromium/Chrome kaleido will drive; :class:`InputError` when there is none."""
    env = os.environ if env is None else env
    override = env.get("BROWSER_PATH")
    if override:
        if _executable(override):
            return override
        raise InputError(f"--png: BROWSER_PATH={override} is not an executable browser")
    for name in BROWSER_NAMES:
        found = which(name)
        if found and _executable(found):
            return found
    for path in typical:
        if _executable(path):
            return path
    raise InputError(MISSING)


def write_pngs(charts: Sequence[Chart], out_dir: Path, browser: str) -> list[Path]:
    """Write ``<out_dir>/<chart name>.png`` for every chart with one browser session."""
    import kaleido  # heavy (starts threads on import); only the --png path pays for it
    from kaleido.errors import ChromeNotFoundError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--png: cannot create {out_dir}: {exc.strerror}") from exc
    paths = [out_dir / f"{chart.name}.png" for chart in charts]
    jobs = [
        {
            "fig": go.Figure(chart.figure).update_layout(title=chart.title),
            "path": path,
            "opts": {"format": "png", "width": WIDTH, "height": HEIGHT},
        }
        for chart, path in zip(charts, paths, strict=True)
    ]
    try:
        errors = kaleido.write_fig_from_object_sync(
            jobs, kopts={"path": browser, "mathjax": False}, cancel_on_error=True
        )
    except ChromeNotFoundError as exc:
        raise InputError(f"--png: the browser at {browser} could not be started") from exc
    except Exception as exc:  # kaleido/choreographer raise many types; say which step failed
        raise ImageError(f"--png: drawing the charts with {browser} failed: {exc}") from exc
    if errors:
        raise ImageError(f"--png: drawing the charts failed: {errors[0]}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ImageError(f"--png: no image was written for {', '.join(missing)}")
    return paths
