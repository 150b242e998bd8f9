"""The actions a healer can take on a cluster: one contract for every executor.

The simulator's executor, the Kubernetes executor and the test fakes implement it; the healing
controller calls it. Targets are node names and job ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Executor(Protocol):
    def cordon(self, node: str) -> None: ...
    def uncordon(self, node: str) -> None: ...
    def drain(self, node: str) -> None: ...
    def restart_from_checkpoint(self, job: str) -> None: ...
    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None: ...
