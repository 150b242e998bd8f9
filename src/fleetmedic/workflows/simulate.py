"""Simulate a fleet, diagnose every interrupted attempt from what the cluster showed, score it.

Why here and not in ``sim``: the simulator may not import the diagnosis engine or the Kubernetes
source adapter (stages are independent), so this module wires them together: it hands the engine a
:class:`DiagnoseObserver` that turns each failed attempt's bundle into documents (logs as bytes,
pod and events objects through ``sources.kubernetes_objects``) and runs ``diagnose`` on them,
unchanged. The healing controller (``workflows.healing``) then acts on those diagnoses, so a wrong one costs what it would on a
real cluster. Accuracy is scored against the injected truth, which the diagnoser never sees.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.heal.policy import PolicySet
from fleetmedic.model.inputs import Document
from fleetmedic.model.records import Diagnosis
from fleetmedic.sim.calibration import load_calibration
from fleetmedic.sim.config import SimConfig
from fleetmedic.sim.emit import Bundle, EventRow, FailureContext, bundle, to_json
from fleetmedic.sim.engine import SimResult, Simulation
from fleetmedic.sim.metrics import summary
from fleetmedic.sim.observe import Verdict
from fleetmedic.sim.params import load_params
from fleetmedic.sim.storage import write_result
from fleetmedic.sim.truth import score
from fleetmedic.sim.workload import JobSpec, from_records, generate
from fleetmedic.sources.kubernetes_objects import to_fact_lines
from fleetmedic.store.db import Store
from fleetmedic.store.read import read_jobs
from fleetmedic.store.writer import DiagnosisRow
from fleetmedic.store.writer import write_diagnoses as store_diagnoses
from fleetmedic.workflows.healing import healer_factory

DETECTION_SECONDS = 60.0
"""Time from an attempt's end to its diagnosis (collecting the bundle): what MTTD measures."""

_NODE_REF = re.compile(r"\bnode/([\w.-]+)")


def documents(collected: Bundle) -> list[Document]:
    """The bundle as the diagnosis engine reads it: logs as byte streams, objects as facts."""
    docs = [
        Document(name=name, kind="log", opener=_opener(data))
        for name, data in collected.logs.items()
    ]
    for name, obj in collected.objects.items():
        docs.append(Document(name=name, kind="k8s", facts=tuple(to_fact_lines(obj, to_json(obj)))))
    return docs


def _opener(data: bytes) -> Callable[[], Any]:
    return lambda: io.BytesIO(data)


def suspect_node(diag: Diagnosis, nodes: Sequence[str]) -> str | None:
    """The node the diagnosis points at: named in its evidence (file or text), else None."""
    known = set(nodes)
    for item in diag.evidence:
        stem = Path(item.file).stem
        for prefix in ("dmesg-", "node-"):
            if stem.startswith(prefix) and stem[len(prefix) :] in known:
                return stem[len(prefix) :]
        for match in _NODE_REF.finditer(item.text):
            if match.group(1) in known:
                return match.group(1)
    found = diag.details.get("node")
    return found if found in known else None


@dataclass
class DiagnoseObserver:
    """Diagnoses each interrupted attempt from its bundle; keeps the diagnoses for the store."""

    engine: str = "auto"
    diagnoses: dict[tuple[str, int], tuple[Diagnosis, float, str | None]] = field(
        default_factory=dict
    )

    def __call__(self, ctx: FailureContext, events: Sequence[EventRow]) -> Verdict:
        name = f"{ctx.job.job_id}#{ctx.attempt}"
        diag = diagnose(documents(bundle(ctx)), name, self.engine)
        node = suspect_node(diag, ctx.nodes)
        self.diagnoses[(ctx.job.job_id, ctx.attempt)] = (diag, ctx.end + DETECTION_SECONDS, node)
        return Verdict(diag.category, diag.owner, node)

    def diagnosis(self, job_id: str, attempt: int) -> Diagnosis | None:
        found = self.diagnoses.get((job_id, attempt))
        return found[0] if found else None


def workload(config: SimConfig, replay: Path | None = None) -> list[JobSpec]:
    """Generated jobs, or the jobs table of another store replayed."""
    calib, params = load_calibration(), load_params()
    if replay is None:
        return generate(config, params, calib)
    with Store(replay, read_only=True) as source:
        records = read_jobs(source)
    return from_records(records, config, calib, params)


def run_simulation(
    config: SimConfig,
    db: Path | None,
    *,
    replay: Path | None = None,
    progress: Callable[[str, float], None] | None = None,
    diagnose_engine: str = "auto",
    policies: PolicySet | None = None,
) -> tuple[dict[str, Any], SimResult]:
    """Simulate, diagnose every interrupted attempt, store it all (when ``db``), summarize."""
    calib, params = load_calibration(), load_params()
    jobs = workload(config, replay)
    observer = DiagnoseObserver(diagnose_engine)
    tick = None if progress is None else (lambda f: progress("simulate", f))
    healer = healer_factory(policies, observer.diagnosis) if config.heal != "off" else None
    sim = Simulation(config, jobs, calib, observer=observer, healer=healer, progress=tick)
    result = sim.run()
    graded = score(result.truth, {k: d.category for k, (d, _, _) in observer.diagnoses.items()})
    if db is not None:
        if progress is not None:
            progress("store", 0.0)
        with Store(db) as store:
            write_result(store, result)
            write_diagnoses(store, config, observer.diagnoses)
        if progress is not None:
            progress("store", 1.0)
    return summary(result, graded, calib, params), result


def write_diagnoses(
    store: Store,
    config: SimConfig,
    diagnoses: dict[tuple[str, int], tuple[Diagnosis, float, str | None]],
) -> int:
    """Keep the run's diagnoses, stamped with simulated time (so MTTD is meaningful)."""
    origin = config.start.astimezone(UTC)
    rows = [
        DiagnosisRow(job_id, attempt, diag, origin + timedelta(seconds=at), node)
        for (job_id, attempt), (diag, at, node) in sorted(diagnoses.items())
    ]
    return store_diagnoses(store, rows)
