"""deploy/: the Helm chart rendered by Helm's engine, the kustomize base, the Dockerfile.

Every manifest is validated against the Kubernetes 1.30 schemas (kubernetes-validate, strict:
unknown fields fail). The chart is rendered by helm-python-sdk, which runs Helm v4's Go SDK (the
same template engine as `helm template`), since the helm CLI is not packaged for Debian bookworm.
"""

from __future__ import annotations

import re
import runpy
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.heal.policy import parse_policies
from fleetmedic.sources.prometheus_catalog import parse_catalog

ROOT = Path(__file__).parents[2]
CHART = ROOT / "deploy" / "helm" / "fleetmedic"
KUSTOMIZE = ROOT / "deploy" / "kustomize"
K8S = "1.30"
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "nats-replicas": {"nats": {"url": "nats://nats.nats:4222"}, "controller": {"replicas": 3}},
    "prometheus-mimir": {
        "prometheus": {
            "url": "http://mimir:8080/prometheus",
            "orgId": "gpu",
            "tokenSecret": {"name": "mimir-token"},
        },
        "nats": {"url": "nats://nats:4222"},
    },
    "live-no-persistence": {
        "mode": "live",
        "persistence": {"enabled": False},
        "networkPolicy": {"enabled": False},
    },
    "one-namespace": {
        "watcher": {"namespace": "ml-team", "alertmanagerPort": 0},
        "podDisruptionBudget": {"enabled": False},
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="fleetmedic", namespace="fleetmedic")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def kind(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == name]


def containers(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for deployment in kind(docs, "Deployment"):
        yield from deployment["spec"]["template"]["spec"]["containers"]


def test_helm_lint_finds_no_error() -> None:
    report = helm.lint(str(CHART))
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] > 1]


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=list(VALUE_SETS))
def test_every_rendered_manifest_is_valid_for_kubernetes_1_30(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_the_defaults_change_nothing_in_the_cluster() -> None:
    docs = render({})
    args = " ".join(" ".join(c.get("args", [])) for c in containers(docs))
    assert "--executor=dry-run" in args and "kubernetes" not in args
    policies = kind(docs, "ConfigMap")[0]["data"]["policies.yaml"]
    assert {p.mode for p in parse_policies(policies).policies} == {"dry-run"}
    assert [d["metadata"]["name"] for d in kind(docs, "Deployment")] == ["fleetmedic"], (
        "no replicas without NATS"
    )


def test_live_mode_uses_the_kubernetes_executor_and_a_bad_mode_fails() -> None:
    args = " ".join(" ".join(c.get("args", [])) for c in containers(render({"mode": "live"})))
    assert "--executor=kubernetes" in args
    with pytest.raises(helm.HelmError, match="mode must be dry-run or live"):
        render({"mode": "yolo"})


def test_nats_mode_runs_replicas_that_lease_their_targets() -> None:
    docs = render(VALUE_SETS["nats-replicas"])
    controller = next(
        d for d in kind(docs, "Deployment") if d["metadata"]["name"].endswith("-controller")
    )
    assert controller["spec"]["replicas"] == 3
    command = controller["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert '--nats "$FLEETMEDIC_NATS_URL"' in command and '--replica-id "$POD_NAME"' in command
    budgets = {d["metadata"]["name"]: d["spec"] for d in kind(docs, "PodDisruptionBudget")}
    assert budgets["fleetmedic-controller"] == {
        "minAvailable": 1,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "fleetmedic",
                "app.kubernetes.io/instance": "fleetmedic",
                "app.kubernetes.io/component": "controller",
            }
        },
    }


def _rules(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_is_deploy_rbac_yaml_plus_read_only_watch_verbs() -> None:
    executor = next(
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    )
    chart = kind(render({}), "ClusterRole")[0]
    granted, needed = _rules(chart), _rules(executor)
    assert needed <= granted, f"the executor needs {sorted(needed - granted)}"
    extra = granted - needed
    assert {verb for _, _, verb in extra} <= {"get", "list", "watch"}
    for resource in ("pods", "nodes", "events"):
        assert {("", resource, "list"), ("", resource, "watch")} <= granted
    assert ("batch", "jobs", "watch") in granted and ("", "pods/log", "get") in granted
    assert ("kubeflow.org", "pytorchjobs", "watch") in granted
    assert not any(resource == "secrets" for _, resource, _ in granted)
    assert not any(verb in ("update", "*") for _, _, verb in granted)


def test_containers_run_unprivileged_with_a_read_only_root() -> None:
    for container in containers(render(VALUE_SETS["prometheus-mimir"])):
        context = container["securityContext"]
        assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"]
        assert (
            context["capabilities"]["drop"] == ["ALL"] and not context["allowPrivilegeEscalation"]
        )


def test_network_policy_opens_only_metrics_and_alerts() -> None:
    policy = kind(render({}), "NetworkPolicy")[0]["spec"]
    ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ports == {9108, 9093}


def test_the_charts_copies_of_the_catalogs_are_the_packaged_ones() -> None:
    src = ROOT / "src" / "fleetmedic"
    assert (CHART / "files" / "policies.yaml").read_text() == (
        src / "heal" / "policies" / "default.yaml"
    ).read_text()
    assert (CHART / "files" / "signals.yaml").read_text() == (
        src / "sources" / "prometheus_signals.yaml"
    ).read_text()
    parse_catalog((CHART / "files" / "signals.yaml").read_text())


_COMMAND = re.compile(r"fleetmedic\s+((?:heal|prometheus)\s+\w+|\w+)(.*?)(?=\||$)", re.S)


def _invocations(docs: list[dict[str, Any]]) -> Iterator[tuple[list[str], list[str]]]:
    """(sub-command, options) of every fleetmedic call the manifests make."""
    for container in containers(docs):
        if container.get("command"):
            for match in _COMMAND.finditer(" ".join(container["args"])):
                words = shlex.split(match.group(2).replace('"$', "$"))
                yield match.group(1).split(), [w.split("=")[0] for w in words if w.startswith("--")]
        else:
            args = container["args"]
            yield [args[0]], [a.split("=")[0] for a in args[1:] if a.startswith("--")]


@pytest.mark.parametrize("values", ["defaults", "prometheus-mimir"])
def test_every_option_the_manifests_pass_exists(values: str) -> None:
    runner = CliRunner()
    for command, options in _invocations(render(VALUE_SETS[values])):
        help_text = runner.invoke(app, [*command, "--help"], terminal_width=400).stdout
        assert "Usage" in help_text, command
        missing = [o for o in options if o not in help_text]
        assert not missing, f"fleetmedic {' '.join(command)} has no {missing}"


def test_the_kustomize_base_is_the_chart_rendered_with_its_defaults() -> None:
    generator = runpy.run_path(str(KUSTOMIZE / "regenerate.py"))
    expected = generator["base"]()
    found = {p.name: p.read_text() for p in KUSTOMIZE.glob("*.yaml")}
    assert found == expected, (
        "deploy/kustomize is stale: run .venv/bin/python deploy/kustomize/regenerate.py"
    )
    for name, text in found.items():
        if name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                kubernetes_validate.validate(doc, K8S, strict=True)


def test_the_kustomization_lists_exactly_the_base_and_builds_it() -> None:
    """What `kubectl kustomize` would build from this plain base (no patches, generators or
    overlays), checked here because kubectl is not in Debian: every resource it names exists,
    every manifest is named, and the result holds the objects a deployment needs."""
    kustomization = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources"}
    listed = kustomization["resources"]
    manifests = sorted(p.name for p in KUSTOMIZE.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == manifests
    built = [d for name in listed for d in yaml.safe_load_all((KUSTOMIZE / name).read_text()) if d]
    kinds = [d["kind"] for d in built]
    assert {
        "Namespace",
        "Deployment",
        "ClusterRole",
        "NetworkPolicy",
        "PodDisruptionBudget",
    } <= set(kinds)


def test_the_dockerfile_builds_a_non_root_image_with_a_healthcheck() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages and all(s == "python:3.11-slim" for s in stages)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*CMD", text, re.M | re.S)
    assert "pip wheel" in text and "pip install --no-cache-dir /wheels/*.whl" in text
    assert re.search(r'^ENTRYPOINT \["fleetmedic"\]', text, re.M)
    assert "curl" not in text and "wget" not in text, "nothing fetched outside the package index"
