"""Go's ``fmt`` formatting of the values templates print: ``%v`` of floats and ``printf``."""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from typing import Any

_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?([a-zA-Z%])")


def format_float(value: float) -> str:
    """A float as Go's ``%v`` prints it: shortest digits, exponent form below 1e-4 or from 1e+06."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    # repr gives the shortest digits that read back as the value, as Go's does: "123.4",
    # "1e-05", "1.5e+16". Its digits and where the point falls in them:
    text = repr(value)
    prefix = ""
    if text[0] == "-":
        prefix, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = whole + fraction
    stripped = raw.lstrip("0")
    digits = stripped.rstrip("0")
    nd = len(digits)
    dp = len(whole) + (int(exp) if exp else 0) - (len(raw) - len(stripped))
    x = dp - 1
    if x < -4 or x >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return prefix + digits + "0" * (dp - nd)
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"


def format_g(value: float, precision: int | None = None, upper: bool = False) -> str:
    """Go's ``%g``/``%.Ng`` (shortest digits when no precision is given)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format_float(value) if precision is None else f"%.{max(precision, 1)}g" % value
    return text.upper() if upper else text


def to_string(value: Any) -> str:
    """How Go's template engine prints a value."""
    if type(value) is str:
        # Label values, most of what alert templates print.
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{to_string(v)}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(to_string(v) for v in value) + "]"
    return str(value)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _bad(verb: str, arg: Any) -> str:
    """What Go prints for a verb that does not fit its argument."""
    return f"%!{verb}({_go_type(arg)}={to_string(arg)})"


def _one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    spec_w = width or ""
    p = None if prec is None else int(prec or "0")
    if verb == "v":
        text = to_string(arg)
    elif verb in "sq":
        if not isinstance(arg, str):
            if verb == "s" and isinstance(arg, (int, float, bool)):
                return _bad(verb, arg)
            text = to_string(arg)
        else:
            text = arg
        if p is not None:
            text = text[:p]
        if verb == "q":
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif verb == "t":
        if not isinstance(arg, bool):
            return _bad(verb, arg)
        text = to_string(arg)
    elif verb in "dxXob":
        if isinstance(arg, bool) or not isinstance(arg, int):
            if verb in "xX" and isinstance(arg, str):
                text = arg.encode().hex()
                return text.upper() if verb == "X" else text
            return _bad(verb, arg)
        text = format(arg, {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
    elif verb in "feEgGF":
        if isinstance(arg, bool) or not isinstance(arg, (int, float)):
            return _bad(verb, arg)
        if isinstance(arg, int):
            return _bad(verb, arg)
        v = float(arg)
        if math.isnan(v) or math.isinf(v):
            text = "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
        elif verb in "gG":
            text = format_g(v, p, verb == "G")
        else:
            py = "f" if verb == "F" else verb
            text = f"%{'+' if '+' in flags else ''}.{6 if p is None else p}{py}" % v
            return _pad(text, flags, spec_w)
        if "+" in flags and not text.startswith("-"):
            text = "+" + text
    else:
        return _bad(verb, arg)
    return _pad(text, flags, spec_w)


def _pad(text: str, flags: str, width: str) -> str:
    if not width or width == "*":
        return text
    w = int(width)
    if "-" in flags:
        return text.ljust(w)
    if "0" in flags and text[:1] in "+-" and text[1:2].isdigit():
        return text[0] + text[1:].rjust(w - 1, "0")
    if "0" in flags:
        return text.rjust(w, "0")
    return text.rjust(w)


_Spec = tuple[str, str | None, str | None, str]


@functools.lru_cache(maxsize=1024)
def _parts(fmt: str) -> tuple[tuple[str, _Spec | None], ...]:
    """``fmt`` as text, each piece followed by the verb after it (None after the last):
    a rule's template prints with the same format for each of its alerts."""
    out: list[tuple[str, _Spec | None]] = []
    i = 0
    for m in _VERB.finditer(fmt):
        flags, width, prec, verb = m.groups()
        out.append((fmt[i : m.start()], (flags, width, prec, verb)))
        i = m.end()
    out.append((fmt[i:], None))
    return tuple(out)


def sprintf(fmt: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use (v s q d x f e g t and widths)."""
    out: list[str] = []
    used = 0
    for text, spec in _parts(fmt):
        out.append(text)
        if spec is None:
            continue
        flags, width, prec, verb = spec
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_one(flags, width, prec, verb, args[used]))
        used += 1
    if used < len(args):
        extra = ", ".join(f"{_go_type(a)}={to_string(a)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def format_e(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)``: shortest digits, always an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0e+00" if math.copysign(1, value) < 0 else "0e+00"
    sign, digits_t, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    raw = "".join(map(str, digits_t))
    digits = raw.rstrip("0") or "0"
    x = exponent + len(raw) - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
