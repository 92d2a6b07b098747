"""The small JSONPath subset CRDs use for printer columns and scale paths.

``.spec.replicas``, ``.items[0].name``, ``.status.conditions[?(@.type=="Ready")].status``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["get_path", "set_path"]

_TOKEN = re.compile(
    r"""\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_]+)\s*==\s*["']([^"']*)["']\)\]"""
)


def _tokens(path: str) -> list[tuple[str, str | int | tuple[str, str]]]:
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    out: list[tuple[str, str | int | tuple[str, str]]] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {path[pos:]!r}")
        key, index, fkey, fvalue = match.groups()
        if key is not None:
            out.append(("key", key))
        elif index is not None:
            out.append(("index", int(index)))
        else:
            out.append(("filter", (fkey, fvalue)))
        pos = match.end()
    return out


def get_path(obj: Any, path: str) -> Any:
    """The value at ``path``, or None when any step is missing."""
    node = obj
    for kind, arg in _tokens(path):
        if kind == "key":
            node = node.get(arg) if isinstance(node, dict) else None
        elif kind == "index":
            node = (
                node[arg]
                if isinstance(node, list) and isinstance(arg, int) and arg < len(node)
                else None
            )
        else:
            assert isinstance(arg, tuple)
            fkey, fvalue = arg
            node = (
                next(
                    (
                        item
                        for item in node
                        if isinstance(item, dict) and str(item.get(fkey)) == fvalue
                    ),
                    None,
                )
                if isinstance(node, list)
                else None
            )
        if node is None:
            return None
    return node


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a path of plain keys, creating objects on the way."""
    tokens = _tokens(path)
    node = obj
    for kind, arg in tokens[:-1]:
        if kind != "key" or not isinstance(arg, str):
            raise ValueError(f"cannot set through {path!r}")
        node = node.setdefault(arg, {})
    kind, arg = tokens[-1]
    if kind != "key" or not isinstance(arg, str):
        raise ValueError(f"cannot set through {path!r}")
    node[arg] = value
