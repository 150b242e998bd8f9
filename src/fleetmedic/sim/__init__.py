"""A deterministic discrete-event simulator of an ML GPU platform on Kubernetes.

Modules, in the order a run uses them: ``config`` (the scenario), ``calibration``/``params`` (rates
with citations, fitted workload), ``workload`` (jobs), ``scheduler`` (gang placement, quotas,
preemption), ``failures`` (injection), ``checkpoint`` (work kept and lost), ``engine`` (the event
loop), ``emit`` (what the cluster shows), ``observe``/``executor`` (how the platform
reacts), ``truth`` (what really happened), ``storage`` and ``metrics`` (records and figures).
"""

from fleetmedic.model.executor import Executor, RecordingExecutor
from fleetmedic.sim.calibration import Calibration, load_calibration
from fleetmedic.sim.config import HEAL_MODES, SimConfig
from fleetmedic.sim.engine import SimResult, Simulation
from fleetmedic.sim.executor import Healer, SimExecutor
from fleetmedic.sim.observe import Observer, SignalObserver, Verdict
from fleetmedic.sim.params import Params, load_params
from fleetmedic.sim.truth import Injected, Score, score
from fleetmedic.sim.workload import JobSpec, from_records, generate

__all__ = [
    "HEAL_MODES",
    "Calibration",
    "Executor",
    "Healer",
    "Injected",
    "JobSpec",
    "Observer",
    "Params",
    "RecordingExecutor",
    "Score",
    "SignalObserver",
    "SimConfig",
    "SimExecutor",
    "SimResult",
    "Simulation",
    "Verdict",
    "from_records",
    "generate",
    "load_calibration",
    "load_params",
    "score",
]
