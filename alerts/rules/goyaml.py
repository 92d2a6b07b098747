"""YAML read as Prometheus reads rule files and rule-test files: with Go's decoders.

Prometheus decodes rule files with gopkg.in/yaml.v3 and ``promtool test rules`` files with
gopkg.in/yaml.v2, into typed structs. A scalar decoded into a Go ``string`` is its source text
whatever it looks like (``true``, ``yes``, ``0x1F``, ``2026-01-01`` stay as written); only the
null spellings (``~``, ``null``, nothing) give ``""``. Numbers, booleans and durations are
resolved as those decoders resolve them (``010`` is eight, ``1_000`` a thousand, ``yes`` a
boolean in v2 but text in v3), and a scalar of the wrong kind is the decoders' error, in their
words (``line 12: cannot unmarshal !!bool `yes` into float64``).

:func:`compose` parses text into nodes tagged as Go resolves plain scalars; :func:`text`,
:func:`to_int` and :func:`to_float` read one scalar node; :func:`decode` reads a whole
document into plain Python values by a schema of Go types (:class:`Struct`, :class:`ListOf`,
:data:`STR`, ...) with yaml.v2's strict checks (unknown and repeated fields, repeated keys).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

__all__ = [
    "BOOL",
    "FLOAT",
    "STR",
    "STR_MAP",
    "GoDecodeError",
    "GoTypeError",
    "ListOf",
    "Scalar",
    "Struct",
    "compose",
    "decode",
    "is_null",
    "text",
    "to_float",
    "to_int",
]

Version = Literal[2, 3]

_TAG = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_V3_TRUE = frozenset({"true", "True", "TRUE"})
_V3_FALSE = frozenset({"false", "False", "FALSE"})
_V2_TRUE = _V3_TRUE | {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}
_V2_FALSE = _V3_FALSE | {"n", "N", "no", "No", "NO", "off", "Off", "OFF"}
_INFINITIES = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT_DIGITS = {16: re.compile(r"[0-9a-fA-F]+"), 10: re.compile(r"[0-9]+")}
_INT_DIGITS |= {8: re.compile(r"[0-7]+"), 2: re.compile(r"[01]+")}
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
# The timestamp layouts both decoders try on plain scalars that start with a 4-digit year.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?: \d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?))?"
)


class GoTypeError(ValueError):
    """A scalar of a kind the Go target type does not take, in the decoder's words."""


class GoDecodeError(ValueError):
    """A document the Go decoder rejects; the message is the decoder's (``yaml: unmarshal
    errors:`` and its lines, or the first error of a field's own parser)."""


def _go_parse_int(s: str) -> int | None:
    """``strconv.ParseInt(s, 0, 64)``, then ``ParseUint``: base from the prefix (``0x``,
    ``0o``, ``0b``, a leading ``0`` is octal); ``None`` if it is not such an integer."""
    sign, body = (-1, s[1:]) if s[:1] == "-" else (1, s[1:] if s[:1] == "+" else s)
    base, digits = 10, body
    if len(body) > 1 and body[0] == "0":
        base, digits = {"x": 16, "o": 8, "b": 2}.get(body[1].lower(), 8), body[2:]
        if base == 8 and body[1].lower() != "o":
            digits = body[1:]
    if not _INT_DIGITS[base].fullmatch(digits):
        return None
    value = sign * int(digits, base)
    unsigned = not s.startswith(("+", "-"))
    if _INT64[0] <= value <= _INT64[1] or (unsigned and 0 <= value <= _UINT64_MAX):
        return value
    return None


def _is_timestamp(s: str) -> bool:
    m = _TIMESTAMP.fullmatch(s)
    if m is None:
        return False
    try:
        dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _resolve(value: str, version: Version) -> str:
    """The tag Go's yaml.v2 or yaml.v3 gives a plain scalar (``null``, ``bool``, ``int``,
    ``float``, ``timestamp``, ``merge`` or ``str``)."""
    if value in _NULLS:
        return "null"
    true, false = (_V2_TRUE, _V2_FALSE) if version == 2 else (_V3_TRUE, _V3_FALSE)
    if value in true or value in false:
        return "bool"
    if value in _INFINITIES:
        return "float"
    if value == "<<":
        return "merge"
    first = value[0]
    if first == ".":
        return "float" if _DOT_FLOAT.fullmatch(value) else "str"
    if first in "+-0123456789":
        if _is_timestamp(value):
            return "timestamp"
        plain = value.replace("_", "")
        if _go_parse_int(plain) is not None:
            return "int"
        if _YAML_FLOAT.fullmatch(plain):
            return "float"
    return "str"


def _loader(version: Version) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit[0]:
                return _TAG + _resolve(value, version)
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    Loader.__name__ = f"GoYAMLv{version}Loader"
    return Loader


_LOADERS: dict[int, type[yaml.SafeLoader]] = {2: _loader(2), 3: _loader(3)}


def compose(source: str, version: Version) -> yaml.Node | None:
    """The document's node tree, plain scalars tagged as Go's yaml.v2 or v3 resolves them;
    raises ``yaml.YAMLError`` on a syntax error."""
    return yaml.compose(source, Loader=_LOADERS[version])


def _kind(node: yaml.Node) -> str:
    return node.tag.removeprefix(_TAG)


def is_null(node: yaml.Node) -> bool:
    """Whether the node is a null (``~``, ``null``, an empty plain scalar)."""
    return isinstance(node, yaml.ScalarNode) and _kind(node) == "null"


def _short(node: yaml.Node) -> str:
    kind = _kind(node)
    return f"!!{kind}" if node.tag.startswith(_TAG) else node.tag


def _type_error(node: yaml.Node, into: str) -> GoTypeError:
    if isinstance(node, yaml.ScalarNode):
        value = node.value if len(node.value) <= 10 else node.value[:7] + "..."
        return GoTypeError(f"cannot unmarshal {_short(node)} `{value}` into {into}")
    return GoTypeError(f"cannot unmarshal {_short(node)} into {into}")


def text(node: yaml.Node) -> str:
    """A scalar decoded into a Go ``string``: its source text, ``""`` for a null."""
    if not isinstance(node, yaml.ScalarNode):
        raise _type_error(node, "string")
    return "" if _kind(node) == "null" else str(node.value)


def _number(node: yaml.Node) -> int | float | None:
    """The int or float a scalar resolves to (``None``: null); raises for other kinds."""
    kind = _kind(node) if isinstance(node, yaml.ScalarNode) else ""
    if kind == "null":
        return None
    if kind == "int":
        value = _go_parse_int(node.value.replace("_", ""))
        if value is not None:
            return value
    elif kind == "float":
        if node.value in _INFINITIES:
            return _INFINITIES[node.value]
        try:
            return float(node.value.replace("_", ""))
        except ValueError:
            pass
    raise GoTypeError("")


def to_float(node: yaml.Node) -> float:
    """A scalar decoded into a Go ``float64`` (null: 0)."""
    try:
        value = _number(node)
    except GoTypeError:
        raise _type_error(node, "float64") from None
    return 0.0 if value is None else float(value)


def to_int(node: yaml.Node) -> int:
    """A scalar decoded into a Go ``int`` (null: 0; a float is truncated, as yaml.v3 does)."""
    try:
        value = _number(node)
    except GoTypeError:
        raise _type_error(node, "int") from None
    if value is None:
        return 0
    if isinstance(value, float):
        if math.isnan(value) or not _INT64[0] <= value <= _INT64[1]:
            raise _type_error(node, "int")
        return int(value)
    if not _INT64[0] <= value <= _INT64[1]:
        raise _type_error(node, "int")
    return value


def _to_bool(node: yaml.Node) -> bool:
    if isinstance(node, yaml.ScalarNode):
        kind = _kind(node)
        if kind == "null":
            return False
        if kind == "bool":
            return node.value in _V2_TRUE
    raise _type_error(node, "bool")


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Scalar:
    """A Go scalar type: its name in errors, its zero value and how a non-null node reads.
    ``convert`` raises :class:`GoTypeError` (a type error, collected) or any other
    ``ValueError`` (the field's own parser failing, which ends the decoding)."""

    go: str
    zero: Any
    convert: Callable[[yaml.Node], Any]


@dataclass(frozen=True)
class ListOf:
    """A Go slice ``[]item``."""

    item: Schema

    @property
    def go(self) -> str:
        return f"[]{self.item.go}"


@dataclass(frozen=True)
class Struct:
    """A Go struct: ``go`` is its name in errors (``main.testGroup``), ``fields`` its YAML
    field names and types."""

    go: str
    fields: Mapping[str, Schema]


@dataclass(frozen=True)
class _StrMap:
    go: str = "map[string]string"


Schema = Scalar | ListOf | Struct | _StrMap

STR = Scalar("string", "", text)
FLOAT = Scalar("float64", 0.0, to_float)
BOOL = Scalar("bool", False, _to_bool)
STR_MAP = _StrMap()
"""A Go ``map[string]string``: keys and values as source text."""


class _Fail(Exception):
    pass


def _zero(schema: Schema) -> Any:
    if isinstance(schema, Scalar):
        return schema.zero
    if isinstance(schema, ListOf):
        return []
    if isinstance(schema, Struct):
        return {name: _zero(s) for name, s in schema.fields.items()}
    return {}


class _Decoder:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(f"line {node.start_mark.line + 1}: {message}")

    def value(self, node: yaml.Node, schema: Schema) -> Any:
        if is_null(node):
            return _zero(schema)
        if isinstance(schema, Scalar):
            return self.scalar(node, schema)
        if isinstance(schema, ListOf):
            if not isinstance(node, yaml.SequenceNode):
                self.error(node, str(_type_error(node, schema.go)))
                return []
            return [self.value(item, schema.item) for item in node.value]
        if not isinstance(node, yaml.MappingNode):
            self.error(node, str(_type_error(node, schema.go)))
            return _zero(schema)
        if isinstance(schema, Struct):
            out = _zero(schema)
            self.struct(node, schema, out, set())
            return out
        mapping: dict[str, str] = {}
        self.str_map(node, mapping)
        return mapping

    def scalar(self, node: yaml.Node, schema: Scalar) -> Any:
        try:
            return schema.convert(node)
        except GoTypeError as e:
            self.error(node, str(e))
            return schema.zero
        except ValueError as e:
            raise _Fail(str(e)) from e

    def merged(self, node: yaml.Node) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` key merges, in the order yaml.v2 applies them (a list of
        mappings from its end, so that earlier ones win)."""
        items = list(reversed(node.value)) if isinstance(node, yaml.SequenceNode) else [node]
        mappings = [m for m in items if isinstance(m, yaml.MappingNode)]
        if len(mappings) != len(items):
            raise _Fail("yaml: map merge requires map or sequence of maps as the value")
        return mappings

    def struct(
        self, node: yaml.MappingNode, schema: Struct, out: dict[str, Any], seen: set[str]
    ) -> None:
        for key, value in node.value:
            if _kind(key) == "merge":
                # A merged mapping is decoded on its own: its fields are not "already set".
                for m in self.merged(value):
                    self.struct(m, schema, out, set())
                continue
            name = self.key(key)
            if name not in schema.fields:
                self.error(key, f"field {name} not found in type {schema.go}")
                continue
            if name in seen:
                self.error(key, f"field {name} already set in type {schema.go}")
                continue
            seen.add(name)
            out[name] = self.value(value, schema.fields[name])

    def str_map(self, node: yaml.MappingNode, out: dict[str, str]) -> None:
        for key, value in node.value:
            if _kind(key) == "merge":
                for m in self.merged(value):
                    self.str_map(m, out)
                continue
            name = self.key(key)
            item = self.value(value, STR)
            if name in out:
                self.error(value, f"key {_go_quote(name)} already set in map")
                continue
            out[name] = item

    def key(self, node: yaml.Node) -> str:
        try:
            return text(node)
        except GoTypeError as e:
            self.error(node, str(e))
            return ""


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def decode(source: str, schema: Struct) -> dict[str, Any]:
    """A document decoded as ``yaml.UnmarshalStrict`` (yaml.v2) decodes it into ``schema``:
    every field present (zero values for those absent), strings as source text. Raises
    ``yaml.YAMLError`` on a syntax error and :class:`GoDecodeError` as the decoder fails."""
    root = compose(source, 2)
    if root is None:
        return dict(_zero(schema))
    decoder = _Decoder()
    try:
        out = decoder.value(root, schema)
    except _Fail as e:
        raise GoDecodeError(str(e)) from None
    if decoder.errors:
        raise GoDecodeError(
            "yaml: unmarshal errors:\n" + "\n".join(f"  {e}" for e in decoder.errors)
        )
    assert isinstance(out, dict)
    return out
