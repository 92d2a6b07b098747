"""Label and field selectors: the query-string syntax and ``LabelSelector`` objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.errors import ApiError
from simulator.objects import KubeObject

__all__ = ["FieldSelector", "LabelSelector", "selector_to_string"]

_SET_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_OP_TERM = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``in (...)`` parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


class LabelSelector:
    """A parsed label selector; matches a labels mapping."""

    def __init__(self, requirements: list[_Requirement]) -> None:
        self._requirements = requirements

    @property
    def empty(self) -> bool:
        return not self._requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """From the ``labelSelector`` query syntax; 400 BadRequest if malformed."""
        reqs: list[_Requirement] = []
        for term in _split_terms(text or ""):
            op_match = _OP_TERM.match(term)
            if op_match:
                key, op, value = op_match.groups()
                reqs.append(_Requirement(key, "notin" if op == "!=" else "in", frozenset([value])))
                continue
            set_match = _SET_TERM.match(term)
            if set_match:
                bang, key, op, values = set_match.groups()
                if op:
                    if bang:
                        raise ApiError.bad_request(f"unable to parse requirement: {term!r}")
                    vals = frozenset(v.strip() for v in values.split(",") if v.strip())
                    reqs.append(_Requirement(key, op, vals))
                else:
                    reqs.append(_Requirement(key, "!" if bang else "exists", frozenset()))
                continue
            raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")
        return cls(reqs)

    @classmethod
    def from_object(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """From a ``metav1.LabelSelector`` (matchLabels and matchExpressions)."""
        reqs: list[_Requirement] = []
        if not selector:
            return cls(reqs)
        for key, value in (selector.get("matchLabels") or {}).items():
            reqs.append(_Requirement(key, "in", frozenset([str(value)])))
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for expr in selector.get("matchExpressions") or []:
            op = ops.get(str(expr.get("operator")))
            if op is None:
                raise ValueError(f"unknown selector operator {expr.get('operator')!r}")
            reqs.append(_Requirement(str(expr["key"]), op, frozenset(expr.get("values") or [])))
        return cls(reqs)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self._requirements)


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The query-string form of a ``metav1.LabelSelector`` (as Scale.status.selector)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _path_getter(path: str) -> Callable[[KubeObject], str]:
    parts = path.split(".")

    def get(obj: KubeObject) -> str:
        node: Any = obj
        for part in parts:
            if not isinstance(node, dict):
                return ""
            node = node.get(part)
        if node is None:
            return ""
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)

    return get


# Fields each kind can be selected on, beyond metadata.name and metadata.namespace.
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}


class FieldSelector:
    """A parsed field selector (``=``, ``==``, ``!=`` terms joined by commas)."""

    def __init__(self, terms: list[tuple[Callable[[KubeObject], str], bool, str]]) -> None:
        self._terms = terms

    @classmethod
    def parse(cls, text: str | None, kind: str) -> FieldSelector:
        allowed = ("metadata.name", "metadata.namespace", *_EXTRA_FIELDS.get(kind, ()))
        terms = []
        for raw in (text or "").split(","):
            if not raw.strip():
                continue
            match = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", raw)
            if match is None:
                raise ApiError.bad_request(f"invalid selector: {raw!r}")
            path, op, value = match.groups()
            if path not in allowed:
                raise ApiError.bad_request(
                    f"field label not supported: {path} (for {kind}: {', '.join(allowed)})"
                )
            terms.append((_path_getter(path), op != "!=", value))
        return cls(terms)

    @property
    def empty(self) -> bool:
        return not self._terms

    def matches(self, obj: KubeObject) -> bool:
        return all((get(obj) == value) == equal for get, equal, value in self._terms)
