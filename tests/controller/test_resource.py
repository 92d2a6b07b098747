"""The PredictiveAutoscaler resource: model, generated CRD, examples, kubectl."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from autoscaler.forecast.registry import forecaster_names, model_names
from autoscaler.resource.crd import crd_manifest, crd_yaml
from autoscaler.resource.model import (
    ForecastSpec,
    PredictiveAutoscalerSpec,
    PredictiveAutoscalerStatus,
)
from autoscaler.resource.objects import Autoscaler, InvalidAutoscaler, read_autoscaler
from simulator.schema import apply_schema
from tests.controller.conftest import Rig, horizontal, pas
from tests.support.external import require_binary

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CRD = REPO / "helm" / "foresight" / "crds" / "predictiveautoscalers.foresight.dev.yaml"
# The PredictiveAutoscaler examples; the RBAC ones are applied in tests/access.
EXAMPLES = sorted(
    p
    for p in (REPO / "examples").glob("*.yaml")
    if "kind: PredictiveAutoscaler" in p.read_text(encoding="utf-8")
)


def test_the_shipped_crd_is_the_generated_one() -> None:
    assert SHIPPED_CRD.read_text(encoding="utf-8") == crd_yaml(), (
        "the CRD drifted from the model: run `foresight crd > " + str(SHIPPED_CRD) + "`"
    )


def test_the_crd_is_a_valid_kubernetes_object_with_a_structural_schema() -> None:
    kubernetes_validate.validate(crd_manifest(), "1.33", strict=True)
    version = crd_manifest()["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Target", "Mode", "Min", "Max", "Current", "Desired", "Forecast", "Age"]
    assert version["subresources"] == {"status": {}}
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = spec["properties"]["horizontal"]["x-kubernetes-validations"]
    assert rules[0]["rule"] == "self.minReplicas <= self.maxReplicas"

    def walk(node: object, path: str) -> None:
        # Structural: no references, every node typed (or int-or-string), no JSON Schema only
        # keywords.
        if isinstance(node, dict):
            assert "$ref" not in node and "const" not in node and "title" not in node, path
            if "properties" in node:
                assert node.get("type") == "object", path
                for name, child in node["properties"].items():
                    assert "type" in child or child.get("x-kubernetes-int-or-string"), (
                        f"{path}.{name}"
                    )
                    walk(child, f"{path}.{name}")
            if "items" in node:
                walk(node["items"], f"{path}[]")

    walk(version["schema"]["openAPIV3Schema"], "")


def test_the_model_offers_every_forecaster() -> None:
    offered = ForecastSpec.model_json_schema()["properties"]["model"]["enum"]
    assert set(offered) == {*forecaster_names(), "auto"}
    shipped = yaml.safe_load(SHIPPED_CRD.read_text(encoding="utf-8"))
    schema = shipped["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    model = schema["properties"]["spec"]["properties"]["forecast"]["properties"]["model"]
    assert model["enum"] == model_names() and model["default"] == ForecastSpec().model


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        assert isinstance(read_autoscaler(doc), Autoscaler), path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"targetRef": {"kind": "Deployment", "name": "w"}},
            "spec: set horizontal, vertical or both",
        ),
        (
            {"targetRef": {"kind": "CronJob", "name": "w"}, "horizontal": {"maxReplicas": 3}},
            "spec.targetRef.kind: Input should be 'Deployment' or 'StatefulSet'",
        ),
        (
            {
                "targetRef": {"kind": "Deployment", "name": "w"},
                "horizontal": {"minReplicas": 4, "maxReplicas": 3},
            },
            "spec.horizontal: minReplicas (4) must be <= maxReplicas (3)",
        ),
        (
            {
                "targetRef": {"kind": "Deployment", "name": "w"},
                "horizontal": {"maxReplicas": 3, "metric": {"type": "Query"}},
            },
            "spec.horizontal.metric: type Query needs query and targetPerReplica",
        ),
        (
            {
                "targetRef": {"kind": "Deployment", "name": "w"},
                "vertical": {"containerPolicies": [{"maxAllowed": {"memory": "lots"}}]},
            },
            "spec.vertical.containerPolicies.0.maxAllowed.memory: 'lots' is not a quantity",
        ),
        (
            {
                "targetRef": {"kind": "Deployment", "name": "w"},
                "horizontal": {"maxReplicas": 3},
                "forecast": {"model": "prophet"},
            },
            "spec.forecast.model: unknown forecast model 'prophet'; valid: "
            "conformal, holt_winters, naive, quantile_gbm, seasonal_naive, auto",
        ),
        (
            {"targetRef": {"kind": "Deployment", "name": "w"}, "horizontl": {}},
            "spec.horizontl: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, object], message: str) -> None:
    parsed = read_autoscaler({"metadata": {"name": "x", "namespace": "y"}, "spec": spec})
    assert isinstance(parsed, InvalidAutoscaler)
    assert message in parsed.message


def test_defaults() -> None:
    spec = PredictiveAutoscalerSpec.model_validate(
        {"targetRef": {"kind": "Deployment", "name": "w"}, "horizontal": {"maxReplicas": 5}}
    )
    assert spec.mode.value == "Auto"
    assert spec.horizontal is not None
    assert spec.horizontal.min_replicas == 1
    assert spec.horizontal.metric.target_utilization == 80
    assert spec.forecast.quantile == 0.9995


async def test_the_api_server_applies_the_crd_defaults(rig: Rig) -> None:
    await rig.create(
        pas(
            "web",
            {"targetRef": {"kind": "Deployment", "name": "web"}, "horizontal": {"maxReplicas": 5}},
        )
    )
    obj = await asyncio.to_thread(
        rig.custom.get_namespaced_custom_object,
        "foresight.dev",
        "v1alpha1",
        "shop",
        "predictiveautoscalers",
        "web",
    )
    assert obj["spec"]["mode"] == "Auto"
    assert obj["spec"]["horizontal"]["minReplicas"] == 1


async def test_the_status_the_controller_writes_is_the_crds(rig: Rig) -> None:
    spec = {**horizontal(), "vertical": {"updateMode": "Off"}}
    await rig.create(pas("web", spec))
    status: dict[str, object] = {}
    for _ in range(20):
        await rig.step(120)
        status = await rig.status("web")
        if {"lastDecision", "recommendations", "forecast"} <= status.keys():
            break
    assert {"lastDecision", "recommendations", "forecast", "conditions"} <= status.keys()
    assert rig.service.controller.reconcile_errors == 0
    version = crd_manifest()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    causes: list[tuple[str, str]] = []
    # Valid, and nothing pruned: every field written is one the schema has.
    assert apply_schema(status, schema, "status", causes) == status
    assert causes == []
    assert PredictiveAutoscalerStatus.model_validate(status).to_api() == status


async def test_kubectl_get_pas_shows_live_status(rig: Rig, tmp_path: Path) -> None:
    binary = require_binary("kubectl")
    kubeconfig = tmp_path / "kubectl.kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    await rig.create(pas("web", horizontal()))
    for _ in range(6):
        await rig.step(120)

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = await asyncio.to_thread(kubectl, "get", "pas", "-A")
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "TARGET",
        "MODE",
        "MIN",
        "MAX",
        "CURRENT",
        "DESIRED",
        "FORECAST",
        "AGE",
    ]
    cells = row.split()
    assert cells[:6] == ["shop", "web", "web", "Auto", "2", "30"]
    assert int(cells[6]) >= 2 and int(cells[7]) >= 2 and float(cells[8]) > 0
    applied = await asyncio.to_thread(
        kubectl, "apply", "-f", str(REPO / "examples" / "database-recommend.yaml")
    )
    assert "created" in applied
