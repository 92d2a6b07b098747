"""The resource types the API server knows: built-in ones and those CRDs add at run time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTIN_TYPES", "PrinterColumn", "ResourceType", "ScalePaths", "TypeRegistry"]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """An ``additionalPrinterColumns`` entry of a CRD version."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ScalePaths:
    """Where a custom resource keeps its replica counts (the CRD's ``subresources.scale``)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None


@dataclass(frozen=True)
class ResourceType:
    """One resource of one group/version, e.g. ``apps/v1 deployments``."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    # What custom resources add: the version's OpenAPI schema, columns and scale paths.
    schema: dict[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    scale: ScalePaths | None = None
    custom: bool = False
    storage_key: tuple[str, str] = field(default=("", ""), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage_key", (self.group, self.plural))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` or ``pods``, as error messages name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _t(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: Sequence[str] = (),
    subresources: Sequence[str] = (),
    categories: Sequence[str] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=tuple(short),
        categories=tuple(categories),
        subresources=frozenset(subresources),
        verbs=verbs,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("", "v1", "Namespace", "namespaces", False, ["ns"], ["status"]),
    _t("", "v1", "Node", "nodes", False, ["no"], ["status", "proxy"]),
    _t("", "v1", "Pod", "pods", True, ["po"], ["status", "resize", "proxy"], ["all"]),
    _t("", "v1", "Event", "events", True, ["ev"]),
    _t("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    _t("", "v1", "Secret", "secrets", True),
    _t("", "v1", "Service", "services", True, ["svc"], ["status"], ["all"]),
    _t("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    _t("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"]),
    _t("apps", "v1", "Deployment", "deployments", True, ["deploy"], ["status", "scale"], ["all"]),
    _t("apps", "v1", "StatefulSet", "statefulsets", True, ["sts"], ["status", "scale"], ["all"]),
    _t("apps", "v1", "DaemonSet", "daemonsets", True, ["ds"], ["status"], ["all"]),
    _t("apps", "v1", "ReplicaSet", "replicasets", True, ["rs"], ["status", "scale"], ["all"]),
    _t("batch", "v1", "Job", "jobs", True, [], ["status"], ["all"]),
    _t("batch", "v1", "CronJob", "cronjobs", True, ["cj"], ["status"], ["all"]),
    _t(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ["hpa"],
        ["status"],
        ["all"],
    ),
    _t("coordination.k8s.io", "v1", "Lease", "leases", True),
    # What the aggregator routes by (simulator.aggregation).
    _t("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, [], ["status"]),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ["crd", "crds"],
        ["status"],
        ["api-extensions"],
    ),
    _t("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list")),
    _t("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=("get", "list")),
)

# Groups whose objects are computed on request rather than stored.
COMPUTED_GROUPS = frozenset({"metrics.k8s.io"})


class TypeRegistry:
    """Lookup of resource types by group/version/plural, kept in discovery order."""

    def __init__(self, types: Sequence[ResourceType] = BUILTIN_TYPES) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._groups: dict[str, list[str]] = {}
        for t in types:
            self.add(t)

    def add(self, t: ResourceType) -> None:
        self._types[(t.group, t.version, t.plural)] = t
        versions = self._groups.setdefault(t.group, [])
        if t.version not in versions:
            versions.append(t.version)

    def remove_group_resource(self, group: str, plural: str) -> None:
        """Forget every version of a custom resource (its CRD was deleted)."""
        for key in [k for k in self._types if k[0] == group and k[2] == plural]:
            del self._types[key]
        for g in list(self._groups):
            self._groups[g] = [
                v for v in self._groups[g] if any(k[:2] == (g, v) for k in self._types)
            ]
            if not self._groups[g]:
                del self._groups[g]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def groups(self) -> dict[str, list[str]]:
        """Group name to served versions, preferred version first."""
        return {g: list(v) for g, v in self._groups.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for (g, v, _), t in self._types.items() if g == group and v == version]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for t in self._types.values():
            if t.api_version == api_version and t.kind == kind:
                return t
        return None
