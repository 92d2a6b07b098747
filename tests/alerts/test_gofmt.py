"""Go's ``%v`` of a float, against a model that reads the shortest digits from numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from alerts.rules.gofmt import format_float


def _model(value: float) -> str:
    """A finite value other than zero: its shortest digits and exponent as numpy's
    scientific spelling gives them, spelt as Go's %v."""
    mantissa, exponent = np.format_float_scientific(abs(value), unique=True, trim="-").split("e")
    digits = mantissa.replace(".", "").rstrip("0")
    x = int(exponent)  # the power of ten of the first digit
    prefix = "-" if value < 0 else ""
    if x < -4 or x >= 6:
        return f"{prefix}{digits[0]}{'.' + digits[1:] if digits[1:] else ''}e{x:+03d}"
    dp = x + 1
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return prefix + digits + "0" * (dp - len(digits))
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"


@pytest.mark.parametrize(
    ("value", "text"),
    [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (0.0, "0"), (-0.0, "-0")],
)
def test_values_without_digits(value: float, text: str) -> None:
    assert format_float(value) == text


@given(
    st.one_of(
        st.floats(),
        st.sampled_from([1e-4, 1e-5, 999999.0, 1e6, 123456789.0, 1e21, 5e-324, 0.1]),
        st.integers(-(10**9), 10**9).map(float),
    )
)
def test_a_float_prints_as_the_model_says(value: float) -> None:
    assume(math.isfinite(value) and value != 0)
    assert format_float(value) == _model(value)
