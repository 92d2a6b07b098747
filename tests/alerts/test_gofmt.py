"""Go's ``%v`` of a float, against a model that reads the shortest digits with Decimal."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.gofmt import format_float


def _model(value: float) -> str:
    """Shortest digits and exponent as Decimal reads them from repr, spelt as Go's %v."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    raw = "".join(map(str, digit_tuple))
    digits = raw.rstrip("0")
    dp = len(digits) + exponent + len(raw) - len(digits)
    prefix = "-" if sign else ""
    if dp - 1 < -4 or dp - 1 >= 6:
        x = dp - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return prefix + digits + "0" * (dp - len(digits))
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"


@given(
    st.one_of(
        st.floats(),
        st.sampled_from([1e-4, 1e-5, 999999.0, 1e6, 123456789.0, 1e21, 5e-324, 0.1]),
        st.integers(-(10**9), 10**9).map(float),
    )
)
def test_a_float_prints_as_the_model_says(value: float) -> None:
    assert format_float(value) == _model(value)
