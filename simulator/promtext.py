"""Prometheus text exposition as Go's client writes it (the kubelet's format)."""

from __future__ import annotations

import math

__all__ = ["go_float", "label_text"]


def go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)``: shortest digits, exponent from 1e+06 up."""
    # Most values a kubelet writes: Python's repr has the same shortest digits in fixed
    # notation there, only with a ".0" that Go leaves out.
    if 1e-4 <= abs(value) < 1e6:
        text = repr(float(value))
        return text[:-2] if text.endswith(".0") else text
    return _go_float_slow(value)


def _go_float_slow(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    text = repr(float(value))
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    if "e" in text:
        mantissa, exp_text = text.split("e")
        digits = mantissa.replace(".", "")
        x = int(exp_text) + (mantissa.index(".") - 1 if "." in mantissa else len(mantissa) - 1)
    else:
        whole, _, frac = text.partition(".")
        if whole != "0":
            x = len(whole) - 1
            digits = whole + frac
        else:
            stripped = frac.lstrip("0")
            x = -(len(frac) - len(stripped)) - 1
            digits = stripped
    digits = digits.lstrip("0").rstrip("0") or "0"
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    point = x + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def label_text(labels: dict[str, str]) -> str:
    """``{a="1",b="x\\"y"}`` with the exposition format's escaping, in the given order."""
    if not labels:
        return ""
    parts = []
    for k, v in labels.items():
        escaped = v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{k}="{escaped}"')
    return "{" + ",".join(parts) + "}"
