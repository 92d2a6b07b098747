"""Expanding rule labels and annotations: Prometheus' template data and functions.

Templates see ``$labels``, ``$externalLabels``, ``$externalURL`` and ``$value`` (and the same
as ``.Labels``, ``.ExternalLabels``, ``.ExternalURL``, ``.Value``). A template that fails to
expand yields ``<error expanding template: ...>`` in place of its text, as in Prometheus.
"""

from __future__ import annotations

import html
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.rules import humanize as hz
from alerts.rules.durations import DurationError, parse_duration_ms
from alerts.rules.gofmt import sprintf, to_string
from alerts.rules.template_parse import (
    Action,
    Branch,
    Command,
    Field,
    Ident,
    Literal,
    Node,
    Parser,
    Pipe,
    TemplateError,
    Text,
)

__all__ = ["QuerySample", "TemplateError", "expand", "parse_template"]

NO_VALUE = "<no value>"
_VARIABLES = ["$labels", "$externalLabels", "$externalURL", "$value"]


@dataclass(frozen=True)
class QuerySample:
    """One element of what ``query`` returns; templates read ``.Labels`` and ``.Value``."""

    Labels: Mapping[str, str]
    Value: float


QueryFunc = Callable[[str], list[QuerySample]]


class _NoValue:
    def __str__(self) -> str:
        return NO_VALUE


_MISSING = _NoValue()


def _float(v: Any) -> float:
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


def _truth(v: Any) -> bool:
    if v is None or v is _MISSING:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


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
    return Parser(name, set(FUNCTION_NAMES), list(_VARIABLES)).parse(text)


class _Exec:
    def __init__(self, name: str, funcs: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.funcs = funcs
        self.out: list[str] = []

    def run(self, nodes: list[Node], dot: Any, scopes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot, scopes)
                if not node.pipe.decl:
                    self.out.append(to_string(value))
            else:
                self.branch(node, dot, scopes)

    def branch(self, node: Branch, dot: Any, scopes: list[dict[str, Any]]) -> None:
        inner = [*scopes, {}]
        if node.kind == "range":
            items = self.pipe(node.pipe, dot, inner, declare=False)
            pairs: list[tuple[Any, Any]]
            if isinstance(items, Mapping):
                pairs = sorted(items.items())
            elif isinstance(items, (list, tuple)):
                pairs = list(enumerate(items))
            elif isinstance(items, int) and not isinstance(items, bool):
                pairs = [(i, i) for i in range(items)]
            elif items is None or items is _MISSING:
                pairs = []
            else:
                self.fail(node.pipe.line, f"range can't iterate over {to_string(items)}")
            if not pairs:
                self.run(node.otherwise, dot, inner)
            for key, item in pairs:
                if len(node.pipe.decl) == 1:
                    inner[-1][node.pipe.decl[0]] = item
                elif len(node.pipe.decl) == 2:
                    inner[-1][node.pipe.decl[0]] = key
                    inner[-1][node.pipe.decl[1]] = item
                self.run(node.body, item, inner)
            return
        value = self.pipe(node.pipe, dot, inner)
        if _truth(value):
            self.run(node.body, value if node.kind == "with" else dot, inner)
        else:
            self.run(node.otherwise, dot, inner)

    def fail(self, line: int, message: str) -> Any:
        raise TemplateError(f'template: {self.name}:{line}: executing "{self.name}": {message}')

    def pipe(self, pipe: Pipe, dot: Any, scopes: list[dict[str, Any]], declare: bool = True) -> Any:
        value: Any = _MISSING
        for i, command in enumerate(pipe.commands):
            value = self.command(command, dot, scopes, value if i else _MISSING, pipe.line)
        if declare:
            for name in pipe.decl:
                if pipe.assign:
                    for scope in reversed(scopes):
                        if name in scope:
                            scope[name] = value
                            break
                else:
                    scopes[-1][name] = value
        return value

    def command(
        self, command: Command, dot: Any, scopes: list[dict[str, Any]], piped: Any, line: int
    ) -> Any:
        head = command.args[0]
        if isinstance(head, Ident):
            args = [self.operand(a, dot, scopes, line) for a in command.args[1:]]
            if piped is not _MISSING:
                args.append(piped)
            try:
                return self.funcs[head.name](*args)
            except TemplateError as e:
                return self.fail(line, f"error calling {head.name}: {e}")
            except (TypeError, ValueError, re.error, KeyError, AttributeError) as e:
                return self.fail(line, f"error calling {head.name}: {e}")
        if len(command.args) > 1 or piped is not _MISSING:
            return self.fail(line, "can't give argument to non-function")
        return self.operand(head, dot, scopes, line)

    def operand(self, op: Any, dot: Any, scopes: list[dict[str, Any]], line: int) -> Any:
        if isinstance(op, Literal):
            return op.value
        if isinstance(op, Ident):
            return self.funcs[op.name]()
        assert isinstance(op, Field)
        if isinstance(op.base, Pipe):
            value = self.pipe(op.base, dot, scopes)
        elif op.base == ".":
            value = dot
        else:
            value = next((s[op.base] for s in reversed(scopes) if op.base in s), _MISSING)
        for name in op.names:
            value = self.field(value, name, line)
        return value

    def field(self, value: Any, name: str, line: int) -> Any:
        if isinstance(value, Mapping):
            return value.get(name, _MISSING)
        if value is None or value is _MISSING:
            return self.fail(line, f"nil pointer evaluating interface {{}}.{name}")
        if hasattr(value, name) and name[:1].isupper():
            return getattr(value, name)
        return self.fail(line, f"can't evaluate field {name} in type {type(value).__name__}")


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
    try:
        return expand_strict(text, name, labels, value, external_labels, external_url, query)
    except TemplateError as e:
        return f"<error expanding template: {e}>"


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
    nodes = parse_template(text, name)
    ext = dict(external_labels or {})
    data = {
        "Labels": dict(labels),
        "ExternalLabels": ext,
        "ExternalURL": external_url,
        "Value": value,
    }
    variables: dict[str, Any] = {
        "$": data,
        "$labels": data["Labels"],
        "$externalLabels": ext,
        "$externalURL": external_url,
        "$value": value,
    }
    ex = _Exec(name, _functions(query, external_url))
    ex.run(nodes, data, [variables])
    return "".join(ex.out)
