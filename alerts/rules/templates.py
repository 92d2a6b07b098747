"""Expanding rule labels and annotations: Prometheus' template data and functions.

Templates see ``$labels``, ``$externalLabels``, ``$externalURL`` and ``$value`` (and the same
as ``.Labels``, ``.ExternalLabels``, ``.ExternalURL``, ``.Value``). A template that fails to
expand yields ``<error expanding template: ...>`` in place of its text, as in Prometheus.
"""

from __future__ import annotations

import functools
import html
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from alerts.rules import humanize as hz
from alerts.rules.durations import DurationError, parse_duration_ms
from alerts.rules.gofmt import sprintf, to_string
from alerts.rules.template_exec import MISSING as _MISSING
from alerts.rules.template_exec import Run, Step, compile_nodes
from alerts.rules.template_exec import truth as _truth
from alerts.rules.template_parse import (
    Action,
    Command,
    Field,
    Ident,
    Literal,
    Node,
    Parser,
    TemplateError,
    Text,
)

__all__ = ["Expander", "QuerySample", "TemplateError", "expand", "parse_template"]

_VARIABLES = ["$labels", "$externalLabels", "$externalURL", "$value"]


@dataclass(frozen=True)
class QuerySample:
    """One element of what ``query`` returns; templates read ``.Labels`` and ``.Value``."""

    Labels: Mapping[str, str]
    Value: float


QueryFunc = Callable[[str], list[QuerySample]]


def _float(v: Any) -> float:
    if type(v) is float:
        # $value, what the humanize functions mostly read.
        return v
    if isinstance(v, bool):
        raise TemplateError(f"can't convert {to_string(v)} to float")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            if v.lower() in ("inf", "+inf"):
                return math.inf
            raise TemplateError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    raise TemplateError(f"can't convert {to_string(v)} to float")


def _compare(op: str, a: Any, b: Any) -> bool:
    x: Any
    y: Any
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        x, y = float(a), float(b)
    elif type(a) is type(b) and isinstance(a, (str, bool)):
        x, y = a, b
    elif op in ("eq", "ne"):
        return bool(a == b) == (op == "eq")
    else:
        raise TemplateError(f"error calling {op}: incompatible types for comparison")
    results: dict[str, bool] = {
        "eq": x == y,
        "ne": x != y,
        "lt": x < y,
        "le": x <= y,
        "gt": x > y,
        "ge": x >= y,
    }
    return results[op]


def _first(v: Sequence[QuerySample]) -> QuerySample:
    if not v:
        raise TemplateError("first() called on vector with no elements")
    return v[0]


def _label(name: str, s: QuerySample) -> str:
    return s.Labels.get(name, "")


def _strip_port(host: str) -> str:
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")]
    if host.count(":") == 1:
        return host.split(":", maxsplit=1)[0]
    return host


def _strip_domain(host: str) -> str:
    port = ""
    if host.count(":") == 1 or (host.startswith("[") and "]:" in host):
        host, port = host.rsplit(":", 1)
        port = ":" + port
    if host.startswith("["):
        return host + port
    if re.fullmatch(r"[\d.]+", host):
        return host + port
    return host.split(".")[0] + port


def _to_time(v: Any) -> str:
    return hz.humanize_timestamp(_float(v))


def _parse_duration(text: str) -> float:
    try:
        return parse_duration_ms(text) / 1000
    except DurationError as e:
        raise TemplateError(str(e)) from e


def _functions(query: QueryFunc | None, external_url: str) -> dict[str, Callable[..., Any]]:
    def run_query(q: str) -> list[QuerySample]:
        if query is None:
            raise TemplateError("query is not available here")
        return query(q)

    def sort_by_label(name: str, v: Sequence[QuerySample]) -> list[QuerySample]:
        return sorted(v, key=lambda s: s.Labels.get(name, ""))

    return {
        "humanize": lambda v: hz.humanize(_float(v)),
        "humanize1024": lambda v: hz.humanize1024(_float(v)),
        "humanizeDuration": lambda v: hz.humanize_duration(_float(v)),
        "humanizePercentage": lambda v: hz.humanize_percentage(_float(v)),
        "humanizeTimestamp": lambda v: hz.humanize_timestamp(_float(v)),
        "toTime": _to_time,
        "toDuration": lambda v: hz.humanize_duration(_float(v)),
        "parseDuration": _parse_duration,
        "printf": sprintf,
        "print": lambda *a: "".join(to_string(x) for x in a),
        "println": lambda *a: " ".join(to_string(x) for x in a) + "\n",
        "query": run_query,
        "first": _first,
        "label": _label,
        "value": lambda s: s.Value,
        "strvalue": lambda s: s.Labels.get("__value__", ""),
        "sortByLabel": sort_by_label,
        "args": lambda *a: {f"arg{i}": x for i, x in enumerate(a)},
        "match": lambda pattern, text: re.search(pattern, text) is not None,
        "reReplaceAll": lambda pattern, repl, text: re.sub(
            pattern, re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", repl), text
        ),
        "title": lambda s: re.sub(r"\b(\w)", lambda m: m.group(1).upper(), s),
        "toUpper": lambda s: s.upper(),
        "toLower": lambda s: s.lower(),
        "safeHtml": lambda s: s,
        "stripPort": _strip_port,
        "stripDomain": _strip_domain,
        "externalURL": lambda: external_url,
        "pathPrefix": lambda: urllib.parse.urlparse(external_url).path,
        "graphLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(expr) + "&g0.tab=0",
        "tableLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(expr) + "&g0.tab=1",
        "urlQueryEscape": urllib.parse.quote_plus,
        "urlquery": lambda *a: urllib.parse.quote_plus("".join(to_string(x) for x in a)),
        "html": lambda *a: html.escape("".join(to_string(x) for x in a)),
        "js": lambda *a: "".join(to_string(x) for x in a).replace("'", "\\'"),
        "len": len,
        "index": _index,
        "slice": lambda v, *i: v[slice(*i)],
        "not": lambda v: not _truth(v),
        "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
        "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
        **{op: _comparison(op) for op in _COMPARISONS},
    }


_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")


def _comparison(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        return _compare(op, a, b)

    return compare


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, Mapping):
            v = v.get(k, _MISSING)
        else:
            try:
                v = v[k]
            except (IndexError, TypeError) as e:
                raise TemplateError(f"error calling index: {e}") from e
    return v


FUNCTION_NAMES = frozenset(_functions(None, ""))


def parse_template(text: str, name: str) -> list[Node]:
    """Parse ``text``; :class:`TemplateError` reads like Go's (``template: name:1: ...``)."""
    parsed = _parsed(text, name)
    if isinstance(parsed, str):
        raise TemplateError(parsed)
    return list(parsed)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str, name: str) -> tuple[Node, ...] | str:
    # Rules expand the same few templates for every alert at every evaluation; executing
    # never changes the nodes, so one parse serves them all. Errors are kept as messages.
    try:
        return tuple(Parser(name, set(FUNCTION_NAMES), list(_VARIABLES)).parse(text))
    except TemplateError as e:
        return str(e)


class _Label(NamedTuple):
    """A piece of a plain template that prints one label of the series."""

    name: str


class ValueOp(NamedTuple):
    """What a piece of a plain template prints of the value: the value itself
    (``fn="value"``), one of the ``humanize`` functions of it, or ``printf`` of ``form``
    with it. Plain data, so that a partial expansion can be written to a file and finished
    after a restart."""

    fn: str
    form: str = ""


# A piece of a plain template: literal text, a label, or what is printed of the value.
_Piece = str | _Label | ValueOp
Partial = tuple[str | ValueOp, ...]
"""A plain template with one series' labels filled in: text, and what is printed of the
value."""
_VALUE_FUNCTIONS = {
    "humanize": hz.humanize,
    "humanize1024": hz.humanize1024,
    "humanizeDuration": hz.humanize_duration,
    "humanizePercentage": hz.humanize_percentage,
    "humanizeTimestamp": hz.humanize_timestamp,
}
# Ops that print every float without an error (humanizeTimestamp fails beyond the years a
# datetime holds); printf is total when its widths and precisions are small numbers.
_TOTAL_FUNCTIONS = frozenset(_VALUE_FUNCTIONS) - {"humanizeTimestamp"}
_SMALL_VERB = re.compile(r"%[-+# 0]*\d{0,3}(?:\.\d{0,3})?[a-zA-Z%]")


def apply_op(op: ValueOp, value: float) -> str:
    """What ``op`` prints of a float value (raises as the template function would)."""
    fn = op.fn
    if fn == "value":
        return to_string(value)
    if fn == "printf":
        return sprintf(op.form, value)
    return _VALUE_FUNCTIONS[fn](_float(value))


def total_op(op: ValueOp) -> bool:
    """Whether :func:`apply_op` prints every float (NaN, infinities, any magnitude)
    without an error."""
    if op.fn == "printf":
        # Every % of the form begins a verb of small width and precision.
        return op.form.count("%") == sum(
            m.group().count("%") for m in _SMALL_VERB.finditer(op.form)
        )
    return op.fn == "value" or op.fn in _TOTAL_FUNCTIONS


def finish_partial(partial: Partial, value: float) -> str | None:
    """A partial expansion finished with ``value``; None where the value cannot be
    printed as the template asks (the template runner words that error)."""
    try:
        return "".join(p if type(p) is str else apply_op(p, value) for p in partial)  # type: ignore[arg-type]
    except (TemplateError, TypeError, ValueError, ArithmeticError):
        return None


@functools.lru_cache(maxsize=4096)
def _plain(text: str, name: str) -> tuple[_Piece, ...] | None:
    """The pieces of a template made only of text and the actions alert templates mostly
    are (``$labels.x``, ``.Labels.x``, ``$value``, ``$value | humanize...``, ``printf "..."
    $value``); None for any other. Expanding those needs no scopes, data maps or runner."""
    parsed = _parsed(text, name)
    if isinstance(parsed, str):
        return None
    pieces: list[_Piece] = []
    for node in parsed:
        if isinstance(node, Text):
            pieces.append(node.text)
            continue
        if not isinstance(node, Action) or node.pipe.decl:
            return None
        piece = _plain_pipe(node.pipe.commands)
        if piece is None:
            return None
        pieces.append(piece)
    return tuple(pieces)


def _plain_pipe(commands: list[Command]) -> _Piece | None:
    first = commands[0].args
    if len(commands) == 1 and len(first) == 1:
        return _plain_operand(first[0])
    if len(commands) == 2 and len(first) == 1 and _is_value(first[0]):
        then = commands[1].args
        if len(then) == 1 and isinstance(then[0], Ident) and then[0].name in _VALUE_FUNCTIONS:
            return ValueOp(then[0].name)
        return None
    if (
        len(commands) == 1
        and len(first) == 3
        and isinstance(first[0], Ident)
        and first[0].name == "printf"
        and isinstance(first[1], Literal)
        and isinstance(first[1].value, str)
        and _is_value(first[2])
    ):
        return ValueOp("printf", first[1].value)
    return None


def _plain_operand(op: object) -> _Piece | None:
    if _is_value(op):
        return ValueOp("value")
    if isinstance(op, Field) and (
        (op.base == "$labels" and len(op.names) == 1)
        or (op.base == "." and len(op.names) == 2 and op.names[0] == "Labels")
    ):
        return _Label(op.names[-1])
    return None


def _is_value(op: object) -> bool:
    return isinstance(op, Field) and (
        (op.base == "$value" and not op.names) or (op.base == "." and op.names == ["Value"])
    )


@functools.lru_cache(maxsize=4096)
def _segments(text: str, name: str) -> tuple[ValueOp | tuple[str | _Label, ...], ...] | None:
    """The pieces of a plain template (see :func:`_plain`) with the texts and labels
    between two values together: what :meth:`Expander.partial` joins for each series."""
    plain = _plain(text, name)
    if plain is None:
        return None
    out: list[ValueOp | list[str | _Label]] = []
    for piece in plain:
        if isinstance(piece, ValueOp):
            out.append(piece)
        elif out and type(out[-1]) is list:
            out[-1].append(piece)
        else:
            out.append([piece])
    return tuple(p if isinstance(p, ValueOp) else tuple(p) for p in out)


@functools.lru_cache(maxsize=4096)
def _compiled(text: str, name: str) -> Step | str:
    parsed = _parsed(text, name)
    return parsed if isinstance(parsed, str) else compile_nodes(list(parsed))


class Expander:
    """Expands the templates of one rule at one evaluation: the functions and external
    data are made once for all its alerts."""

    def __init__(
        self,
        name: str,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        query: QueryFunc | None = None,
    ) -> None:
        self.name = name
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.funcs = _functions(query, external_url)

    def expand(self, text: str, labels: Mapping[str, str], value: float) -> str:
        """One label or annotation; errors become ``<error expanding template: ...>``."""
        if "{{" not in text:
            return text
        try:
            return self.expand_strict(text, labels, value)
        except TemplateError as e:
            return f"<error expanding template: {e}>"

    def partial(self, text: str, labels: Mapping[str, str]) -> str | Partial | None:
        """``text`` with the labels of one series filled in, for :meth:`complete` to finish
        with each value: the expansion itself if the template does not read the value,
        None if it is not plain (expand it whole, with :meth:`expand`)."""
        if "{{" not in text:
            return text
        segments = _segments(text, self.name)
        if segments is None:
            return None
        out: list[str | ValueOp] = []
        for segment in segments:
            if type(segment) is ValueOp:
                out.append(segment)
                continue
            texts = []
            for p in segment:
                if type(p) is str:
                    texts.append(p)
                else:
                    got = labels.get(p.name, _MISSING)  # type: ignore[union-attr]
                    texts.append(got if type(got) is str else to_string(got))
            out.append("".join(texts))
        if len(out) == 1 and type(out[0]) is str:
            return out[0]
        return tuple(out) if out else ""

    def complete(self, text: str, partial: Partial, labels: Mapping[str, str], value: float) -> str:
        """:meth:`expand` of ``text``, from its :meth:`partial` for the same labels."""
        done = self.finish(partial, value)
        return self.expand(text, labels, value) if done is None else done

    def finish(self, partial: Partial, value: float) -> str | None:
        """:meth:`complete` without the labels: None where it would need them (the value
        cannot be shown as the template asks, and :meth:`expand` words the error)."""
        return finish_partial(partial, value)

    def expand_strict(self, text: str, labels: Mapping[str, str], value: float) -> str:
        """One template; raises :class:`TemplateError`."""
        plain = _plain(text, self.name)
        if plain is not None:
            out: list[str] = []
            try:
                for p in plain:
                    if type(p) is str:
                        out.append(p)
                    elif type(p) is _Label:
                        got = labels.get(p.name, _MISSING)
                        out.append(got if type(got) is str else to_string(got))
                    else:
                        out.append(apply_op(p, value))  # type: ignore[arg-type]
                return "".join(out)
            except (TemplateError, TypeError, ValueError, ArithmeticError):
                pass  # the runner below gives the error as Go words it
        compiled = _compiled(text, self.name)
        if isinstance(compiled, str):
            raise TemplateError(compiled)
        ext = self.external_labels
        data = {
            "Labels": dict(labels),
            "ExternalLabels": ext,
            "ExternalURL": self.external_url,
            "Value": value,
        }
        variables: dict[str, Any] = {
            "$": data,
            "$labels": data["Labels"],
            "$externalLabels": ext,
            "$externalURL": self.external_url,
            "$value": value,
        }
        run = Run(self.name, self.funcs)
        compiled(run, data, [variables])
        return "".join(run.out)


def expand(
    text: str,
    name: str,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    query: QueryFunc | None = None,
) -> str:
    """Expand one label or annotation template; errors become ``<error expanding ...>``."""
    if "{{" not in text:
        return text
    return Expander(name, external_labels, external_url, query).expand(text, labels, value)


def expand_strict(
    text: str,
    name: str,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    query: QueryFunc | None = None,
) -> str:
    """Expand one template; raises :class:`TemplateError`."""
    return Expander(name, external_labels, external_url, query).expand_strict(text, labels, value)
