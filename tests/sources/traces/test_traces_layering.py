"""Importers stay in their layer: ``sources`` never reaches into ``diagnose`` or ``kpi``."""

from __future__ import annotations

import ast
from io import StringIO
from pathlib import Path

from rich.console import Console

import fleetmedic.sources.traces as traces
from fleetmedic.cli.import_ import _Bars
from fleetmedic.sources.traces import import_traces, registry
from fleetmedic.store import Store

FORBIDDEN = ("fleetmedic.diagnose", "fleetmedic.kpi", "fleetmedic.cli", "fleetmedic.report")


def test_trace_modules_import_only_lower_layers():
    folder = Path(traces.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_every_module_registers_one_format():
    assert sorted(registry()) == ["acme", "alibaba-gpu-2023", "csv", "helios", "k8s", "philly"]


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def file_started(self, path: Path, steps: int) -> None:
        self.calls.append(f"start {path.name} {steps}")

    def step(self, label: str) -> None:
        self.calls.append(label)

    def file_done(self) -> None:
        self.calls.append("done")


def test_progress_hook_sees_each_file_and_step(fixtures):
    recorder = _Recorder()
    with Store() as store:
        paths = [fixtures / "trace_seren.csv", fixtures / "trace_kalos.csv"]
        import_traces(store, "acme", paths, progress=recorder)
    assert recorder.calls == [
        "start trace_seren.csv 3",
        "reading and checking rows",
        "staging jobs and attempts",
        "writing to the store",
        "done",
        "start trace_kalos.csv 3",
        "reading and checking rows",
        "staging jobs and attempts",
        "writing to the store",
        "done",
    ]


def test_progress_bars_draw_on_a_terminal(fixtures):
    out = StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with Store() as store, _Bars(console) as bars:
        import_traces(store, "philly", [fixtures / "philly_cluster_job_log.json"], progress=bars)
    assert "philly_cluster_job_log.json" in out.getvalue()
