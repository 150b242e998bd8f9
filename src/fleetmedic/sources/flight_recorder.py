"""PyTorch's NCCL flight recorder dumps, read across ranks to find who is stuck where.

With ``TORCH_NCCL_TRACE_BUFFER_SIZE`` set, each rank keeps a ring buffer of its recent collectives
and dumps it on a timeout (``TORCH_NCCL_DUMP_ON_TIMEOUT``), one file per rank. In JSON form each
dump holds ``entries`` with ``collective_seq_id``, ``profiling_name`` (``nccl:all_reduce``),
``state`` (``scheduled``/``started``/``completed``) and ``pg_id``. A hang shows as most ranks waiting
in collective *S* while one rank never issued *S*: that rank is the one to look at (stuck in
Python, in a data loader, or dead). When every rank entered *S* and none finished, the transport
stalled. The verdict is written as fact lines for the signature catalog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_RANK_IN_NAME = re.compile(r"rank[_-]?(\d+)", re.IGNORECASE)


def is_flight_recorder(obj: Any) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
        return False
    first = obj["entries"][0] if obj["entries"] else {}
    return isinstance(first, dict) and "collective_seq_id" in first and "state" in first


@dataclass(frozen=True, slots=True)
class RankState:
    rank: int
    last_issued: int
    last_completed: int
    pending_seq: int | None
    pending_op: str


def rank_of(name: str, dump: Mapping[str, Any]) -> int | None:
    if isinstance(dump.get("rank"), int):
        return int(dump["rank"])
    found = _RANK_IN_NAME.findall(name)
    return int(found[-1]) if found else None


def _state(rank: int, dump: Mapping[str, Any], pg: str) -> RankState:
    issued, completed = -1, -1
    pending: tuple[int, str] | None = None
    for entry in dump.get("entries", []):
        if not isinstance(entry, dict) or str(entry.get("pg_id", "0")) != pg or entry.get("is_p2p"):
            continue
        seq = int(entry.get("collective_seq_id", -1))
        issued = max(issued, seq)
        if entry.get("state") == "completed":
            completed = max(completed, seq)
        elif pending is None or seq < pending[0]:
            pending = (seq, str(entry.get("profiling_name", "collective")))
    return RankState(
        rank, issued, completed, pending[0] if pending else None, pending[1] if pending else ""
    )


def _ranks(values: list[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def analyze(dumps: Mapping[str, Mapping[str, Any]], pg: str = "0") -> list[str]:
    """Fact lines describing the stall the dumps show (empty when every collective completed)."""
    states = []
    for name, dump in dumps.items():
        rank = rank_of(name, dump)
        if rank is not None:
            states.append(_state(rank, dump, pg))
    waiting = [s for s in states if s.pending_seq is not None]
    if not waiting:
        return []
    stuck_seq = max(s.pending_seq for s in waiting if s.pending_seq is not None)
    in_it = [s for s in waiting if s.pending_seq == stuck_seq]
    op = in_it[0].pending_op
    laggards = [s for s in states if s.last_issued < stuck_seq]
    if laggards:
        last = max(s.last_issued for s in laggards)
        return [
            f"NCCL flight recorder: ranks {_ranks([s.rank for s in in_it])} wait in collective "
            f"#{stuck_seq} ({op}, pg {pg}) that rank(s) {_ranks([s.rank for s in laggards])} never "
            f"entered (their last collective: #{last})"
        ]
    return [
        f"NCCL flight recorder: all {len(states)} ranks entered collective #{stuck_seq} ({op}, pg {pg}) "
        "and none completed it (transport stalled)"
    ]
