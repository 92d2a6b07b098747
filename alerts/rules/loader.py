"""Reading Prometheus rule files, with ``file:line:col`` for every problem.

YAML is composed into nodes first so that each field keeps its position; the whole file is
checked (fields, durations, label names, PromQL, templates) before any of it is accepted.
Scalars read as Prometheus' yaml.v3 decoder reads them (:mod:`alerts.rules.goyaml`): strings as
written (``severity: yes`` is "yes"), a null string is "", a null duration or limit is zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from alerts.rules.durations import DurationError, parse_duration_ms
from alerts.rules.errors import RuleFileError, RuleFileErrors
from alerts.rules.goyaml import GoTypeError, compose, is_null, text, to_int
from alerts.rules.model import GroupSpec, RuleKind, RuleSpec
from alerts.rules.templates import TemplateError, parse_template
from promql import PromQLError, parse

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_GROUP_FIELDS = {"name", "interval", "query_offset", "limit", "rules", "labels"}
_RULE_FIELDS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RULE_FILE_SUFFIXES = (".yml", ".yaml")


class _Ctx:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[RuleFileError] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        col = node.start_mark.column + 1 if node is not None else 0
        self.errors.append(RuleFileError(self.path, line, col, message))


def _mapping(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    assert isinstance(node, yaml.MappingNode)
    return {str(k.value): (k, v) for k, v in node.value}


def _scalar(ctx: _Ctx, node: yaml.Node, what: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        ctx.add(node, f"{what}: expected a string")
        return None
    return str(node.value)


def _string(ctx: _Ctx, node: yaml.Node, what: str) -> str | None:
    """A field Prometheus declares a Go ``string``: a null is ""."""
    value = _scalar(ctx, node, what)
    return "" if value is not None and is_null(node) else value


def _duration(ctx: _Ctx, node: yaml.Node, what: str) -> int | None:
    if is_null(node):
        return 0
    value = _scalar(ctx, node, what)
    if value is None:
        return None
    try:
        return parse_duration_ms(value)
    except DurationError as e:
        ctx.add(node, f"{what}: {e}")
        return None


def _labels(ctx: _Ctx, node: yaml.Node, what: str) -> tuple[tuple[str, str], ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return ()
    if not isinstance(node, yaml.MappingNode):
        ctx.add(node, f"{what}: expected a mapping")
        return ()
    out = []
    for k, v in node.value:
        name = text(k) if isinstance(k, yaml.ScalarNode) else str(k.value)
        if not _LABEL_NAME.fullmatch(name):
            ctx.add(k, f"{what}: invalid label name: {name}")
        value = _scalar(ctx, v, f"{what} {name!r}")
        if value is not None:
            out.append((name, "" if v.tag.endswith(":null") else value))
    return tuple(sorted(out))


def load_text(text: str, path: str) -> list[GroupSpec]:
    """Groups of one rule file's text; :class:`RuleFileErrors` lists every problem."""
    ctx = _Ctx(path)
    try:
        root = compose(text, 3)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        raise RuleFileErrors([RuleFileError(path, line, col, f"yaml: {e.problem}")]) from e
    except yaml.reader.ReaderError as e:  # a control character: no mark, only an offset
        before = text[: e.position]
        line, col = before.count("\n") + 1, e.position - before.rfind("\n")
        problem = f"yaml: unacceptable character #x{e.character:04x}: {e.reason}"
        raise RuleFileErrors([RuleFileError(path, line, col, problem)]) from e
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise RuleFileErrors([RuleFileError(path, 1, 1, "expected a mapping with `groups`")])
    top = _mapping(root)
    for name, (k, _) in top.items():
        if name != "groups":
            ctx.add(k, f"field {name} not found in type rulefmt.RuleGroups")
    groups: list[GroupSpec] = []
    if "groups" in top:
        gnode = top["groups"][1]
        if isinstance(gnode, yaml.SequenceNode):
            seen: set[str] = set()
            for item in gnode.value:
                group = _group(ctx, item, seen)
                if group is not None:
                    groups.append(group)
        elif not (isinstance(gnode, yaml.ScalarNode) and gnode.tag.endswith(":null")):
            ctx.add(gnode, "groups: expected a list")
    if ctx.errors:
        raise RuleFileErrors(ctx.errors)
    return groups


def _group(ctx: _Ctx, node: yaml.Node, seen: set[str]) -> GroupSpec | None:
    if not isinstance(node, yaml.MappingNode):
        ctx.add(node, "group: expected a mapping")
        return None
    fields = _mapping(node)
    for fname, (k, _) in fields.items():
        if fname not in _GROUP_FIELDS:
            ctx.add(k, f"field {fname} not found in type rulefmt.RuleGroup")
    name_node = fields.get("name", (None, None))[1]
    name = _string(ctx, name_node, "group name") if name_node is not None else None
    if not name:
        ctx.add(node, "Groupname must not be empty")
        name = ""
    elif name in seen:
        ctx.add(name_node, f'groupname: "{name}" is repeated in the same file')
    seen.add(name)
    interval = offset = None
    limit = 0
    if "interval" in fields:
        interval = _duration(ctx, fields["interval"][1], f'group "{name}": interval')
        if interval == 0:
            interval = None
    if "query_offset" in fields and not is_null(fields["query_offset"][1]):
        offset = _duration(ctx, fields["query_offset"][1], f'group "{name}": query_offset')
    if "limit" in fields:
        try:
            limit = to_int(fields["limit"][1])
        except GoTypeError as e:
            ctx.add(fields["limit"][1], f'group "{name}": limit: {e}')
    labels = (
        _labels(ctx, fields["labels"][1], f'group "{name}": labels') if "labels" in fields else ()
    )
    rules: list[RuleSpec] = []
    rnode = fields.get("rules", (None, None))[1]
    if isinstance(rnode, yaml.SequenceNode):
        for i, item in enumerate(rnode.value, start=1):
            rule = _rule(ctx, item, name, i, labels)
            if rule is not None:
                rules.append(rule)
    elif rnode is not None and not (
        isinstance(rnode, yaml.ScalarNode) and rnode.tag.endswith(":null")
    ):
        ctx.add(rnode, f'group "{name}": rules: expected a list')
    return GroupSpec(name, ctx.path, tuple(rules), interval, offset, limit, labels)


def _rule(
    ctx: _Ctx, node: yaml.Node, group: str, index: int, group_labels: tuple[tuple[str, str], ...]
) -> RuleSpec | None:
    if not isinstance(node, yaml.MappingNode):
        ctx.add(node, f'group "{group}", rule {index}: expected a mapping')
        return None
    fields = _mapping(node)
    # Prometheus reads these as yaml.Node and tests their text: an empty one is unset.
    record, alert = (
        n if n is not None and n.value != "" else None
        for n in (fields.get(f, (None, None))[1] for f in ("record", "alert"))
    )
    named = record if record is not None else alert
    rname = _scalar(ctx, named, "name") if named is not None else ""
    where = f'group "{group}", rule {index}, "{rname}"'
    before = len(ctx.errors)
    for fname, (k, _) in fields.items():
        if fname not in _RULE_FIELDS:
            ctx.add(k, f"{where}: field {fname} not found in type rulefmt.Rule")
    if record is not None and alert is not None:
        ctx.add(node, f"{where}: only one of 'record' and 'alert' must be set")
    if record is None and alert is None:
        ctx.add(node, f"{where}: one of 'record' or 'alert' must be set")
    if not rname and (record or alert) is not None:
        ctx.add(record or alert, f"{where}: {'record' if record else 'alert'} name must be set")
    if record is not None and rname and not _METRIC_NAME.fullmatch(rname):
        ctx.add(record, f"{where}: invalid recording rule name: {rname}")
    expr_node = fields.get("expr", (None, None))[1]
    expr = _scalar(ctx, expr_node, f"{where}: expr") if expr_node is not None else None
    if not expr:
        ctx.add(expr_node or node, f"{where}: field 'expr' must be set in rule")
    else:
        try:
            parse(expr)
        except PromQLError as e:
            message = str(e).replace(f"parse error in {expr!r}: ", "")
            ctx.add(expr_node, f"{where}: could not parse expression: {message}")
    kind: RuleKind = "record" if record is not None else "alert"
    for_ms = keep_ms = 0
    if record is not None:
        for bad in ("for", "keep_firing_for", "annotations"):
            if bad in fields:
                ctx.add(fields[bad][0], f"{where}: invalid field '{bad}' in recording rule")
    if "for" in fields:
        for_ms = _duration(ctx, fields["for"][1], f"{where}: for") or 0
    if "keep_firing_for" in fields:
        keep_ms = _duration(ctx, fields["keep_firing_for"][1], f"{where}: keep_firing_for") or 0
    labels = _labels(ctx, fields["labels"][1], f"{where}: labels") if "labels" in fields else ()
    if any(n == "__name__" for n, _ in labels):
        ctx.add(fields["labels"][1], f"{where}: invalid label name: __name__")
    merged = dict(group_labels)
    merged.update(labels)
    annotations = (
        _labels(ctx, fields["annotations"][1], f"{where}: annotations")
        if "annotations" in fields
        else ()
    )
    if kind == "alert":
        texts = [
            ("label", n, v, fields["labels"][1] if "labels" in fields else node) for n, v in labels
        ]
        texts += [("annotation", n, v, fields["annotations"][1]) for n, v in annotations]
        for what, n, v, at in texts:
            try:
                parse_template(v, f"__alert_{rname}")
            except TemplateError as e:
                ctx.add(at, f'{where}: {what} "{n}": {e}')
    if len(ctx.errors) > before or not expr or rname is None:
        return None
    return RuleSpec(
        kind,
        rname,
        expr,
        for_ms,
        keep_ms,
        tuple(sorted(merged.items())),
        annotations,
        ctx.path,
        node.start_mark.line + 1,
    )


def load_file(path: Path) -> list[GroupSpec]:
    """Groups of one file; unreadable files are reported like parse errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileErrors([RuleFileError(str(path), 0, 0, f"cannot read: {e}")]) from e
    return load_text(text, str(path))


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named by ``paths``: files as given, directories' ``*.yml``/``*.yaml`` sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.iterdir()
                    if f.suffix in RULE_FILE_SUFFIXES and f.is_file() and not f.name.startswith(".")
                )
            )
        elif any(ch in str(p) for ch in "*?["):
            out.extend(sorted(Path(p.anchor or ".").glob(str(p).lstrip("/"))))
        else:
            out.append(p)
    return out


def load_files(paths: Iterable[Path]) -> list[GroupSpec]:
    """Groups of every file, in order; any error rejects them all (errors of all files)."""
    groups: list[GroupSpec] = []
    errors = []
    for path in expand_paths(paths):
        try:
            groups.extend(load_file(path))
        except RuleFileErrors as e:
            errors.extend(e.errors)
    if errors:
        raise RuleFileErrors(errors)
    return groups
