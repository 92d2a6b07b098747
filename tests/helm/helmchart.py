"""Render the chart with the real Helm library (helm-python-sdk) and read what it produced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "foresight"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "foresight"
NAMESPACE = "monitoring-system"
MONITORING_API = ["monitoring.coreos.com/v1"]
# Kinds no schema of kubernetes-validate knows: the Prometheus Operator's custom resources.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def ci_values(name: str) -> dict[str, Any]:
    """A values file of ``helm/foresight/ci`` (e.g. ``all-on``)."""
    data = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text(encoding="utf-8"))
    return data or {}


def render(
    values: dict[str, Any] | None = None,
    *,
    api_versions: list[str] | None = None,
    name: str = RELEASE,
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """Template path → rendered text, as `helm template --api-versions ...` gives it.

    ``Chart.render`` has no parameter for the cluster's API versions, which the
    ServiceMonitor and PrometheusRule templates test for; the native render call behind it
    takes them in its options, so it is called directly.
    """
    options: dict[str, Any] = {"name": name, "namespace": namespace, "is_install": True}
    if api_versions:
        options["api_versions"] = api_versions
    with helm.Chart.load(CHART) as chart:
        text = _native.call_string(
            "helm_render",
            chart._raw(),
            json.dumps(values or {}),
            json.dumps(options),
        )
    rendered: dict[str, str] = json.loads(text)
    return rendered


@dataclass
class Manifests:
    """The objects of one rendering, and the NOTES."""

    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
        return found[0]

    def workload(self) -> dict[str, Any]:
        found = self.of_kind("Deployment") + self.of_kind("StatefulSet")
        assert len(found) == 1, [o["kind"] for o in found]
        return found[0]

    def container(self) -> dict[str, Any]:
        containers = self.workload()["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        container: dict[str, Any] = containers[0]
        return container

    def settings_text(self) -> str:
        config = self.one("ConfigMap", f"{fullname(self)}-config")
        text: str = config["data"]["foresight.yaml"]
        return text


def fullname(manifests: Manifests) -> str:
    name: str = manifests.workload()["metadata"]["name"]
    return name


def parse(rendered: dict[str, str]) -> Manifests:
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Manifests(objects, rendered.get(f"{RELEASE}/templates/NOTES.txt", ""))


def manifests(values: dict[str, Any] | None = None, **kwargs: Any) -> Manifests:
    return parse(render(values, **kwargs))


def crds() -> list[dict[str, Any]]:
    """The objects under ``crds/``, as Helm installs them."""
    with helm.Chart.load(CHART) as chart:
        return [doc for crd in chart.crds for doc in yaml.safe_load_all(crd["data"]) if doc]


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) below ``node``."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
