"""Kubernetes objects become fact lines in kubectl's words, so one catalog reads JSON and text."""

from __future__ import annotations

import json

import yaml

from fleetmedic.sources.kubernetes_objects import looks_like_kubernetes, to_fact_lines

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "w-1", "namespace": "ml"},
    "spec": {"nodeName": "gpu-7"},
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "trainer",
                "state": {"running": {"startedAt": "2024-01-01T00:10:00Z"}},
                "lastState": {
                    "terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2024-01-01T00:09:00Z"}
                },
            }
        ],
    },
}


def test_pod_last_state_oomkilled() -> None:
    text = json.dumps(POD, indent=2)
    facts = to_fact_lines(POD, text)
    assert len(facts) == 1
    fact = facts[0]
    assert "Last State: Terminated" in fact.text and "Reason: OOMKilled" in fact.text
    assert "Exit Code: 137" in fact.text
    assert fact.ts is not None and fact.ts.minute == 9
    assert "OOMKilled" in text.splitlines()[fact.line - 1]


def test_event_list_in_kubectl_words() -> None:
    events = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "kind": "Event",
                "type": "Warning",
                "reason": "FailedScheduling",
                "message": "0/16 nodes are available: 16 Insufficient nvidia.com/gpu.",
                "involvedObject": {"kind": "Pod", "name": "llm-0"},
                "lastTimestamp": "2024-01-01T00:00:00Z",
            }
        ],
    }
    (fact,) = to_fact_lines(events, json.dumps(events))
    assert fact.text.startswith("Warning FailedScheduling pod/llm-0 0/16 nodes are available")


def test_healthy_objects_yield_nothing() -> None:
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "MemoryPressure", "status": "False"}]}}
    assert to_fact_lines(node, "") == []


def test_node_not_ready_and_cordon() -> None:
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "gpu-3"}, "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                       "message": "Kubelet stopped posting node status."}]}}
    texts = [f.text for f in to_fact_lines(node, "")]
    assert "node/gpu-3 condition Ready=Unknown Reason: NodeStatusUnknown Message: Kubelet stopped posting node status." in texts
    assert any("cordoned" in t for t in texts)


def test_training_operator_job_conditions_from_yaml() -> None:
    text = """
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: bert, namespace: nlp}
status:
  conditions:
  - {type: Created, status: "True", reason: PyTorchJobCreated}
  - {type: Failed, status: "True", reason: PyTorchJobFailed, message: "PyTorchJob nlp/bert is failed because 1 Worker replica(s) failed."}
"""
    obj = yaml.safe_load(text)
    assert looks_like_kubernetes(obj)
    texts = [f.text for f in to_fact_lines(obj, text)]
    assert any("condition Failed=True Reason: PyTorchJobFailed" in t for t in texts)


def test_not_kubernetes() -> None:
    assert not looks_like_kubernetes({"loss": 0.3})
    assert not looks_like_kubernetes([1, 2])
