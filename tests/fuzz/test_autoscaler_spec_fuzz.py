"""Fuzzing the PredictiveAutoscaler reader: any ``spec`` gives a valid autoscaler or an invalid
one with a message naming the field, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.resource.model import PredictiveAutoscalerSpec
from autoscaler.resource.objects import Autoscaler, InvalidAutoscaler, read_autoscaler

NAMES = {a for n, f in PredictiveAutoscalerSpec.model_fields.items() for a in (n, f.alias) if a}
FIELDS = [*sorted(NAMES), "cpu", "memory", "kind", "name", "apiVersion", "min", "max", "target"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["100m", "1Gi", "1.5", "-1", "Deployment", "apps/v1", "5m", "cpu"])
)
specs = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(specs)
def test_any_spec_reads_as_valid_or_invalid(spec: Any) -> None:
    obj = {"metadata": {"namespace": "ns", "name": "a", "uid": "u", "generation": 3}, "spec": spec}
    got = read_autoscaler(obj)
    assert isinstance(got, Autoscaler | InvalidAutoscaler)
    assert (got.namespace, got.name, got.generation) == ("ns", "a", 3)
    if isinstance(got, InvalidAutoscaler):
        assert got.message.startswith("spec"), got.message
