"""A fault reported about a node, whoever saw it: an Alertmanager alert, a node-problem-detector
event, the node's Ready condition.

Sources turn what they see into :class:`NodeSignal`; the detector (:mod:`kube_detect`) merges the
signals of one node that arrive together into one diagnosis, and keeps the firing ones so that a
job's diagnosis on that node sees them too. ``facts`` are written in the phrasing the signature
catalog matches (``NVRM: Xid ...: 79``, ``condition Ready=False``), so a signal is diagnosed by the
same engine as a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fleetmedic.model.records import Event


@dataclass(frozen=True)
class NodeSignal:
    node: str
    key: str
    """Names the cause: the same fault reported again has the same key; a new one a new key."""
    status: Literal["firing", "resolved"]
    facts: tuple[str, ...] = ()
    event: Event | None = None
    at: datetime | None = None
