"""Go (RE2) regular expressions that Python's ``re`` reads differently.

RE2 allows a flag group such as ``(?i)`` anywhere, applying to the rest of the enclosing
group; Python accepts global flags only at the very start of a pattern.
``((?i)PRO).*`` becomes ``((?i:PRO)).*``, which means the same.
"""

from __future__ import annotations

import re

_FLAGS = re.compile(r"\(\?([imsU-]+)\)")


def to_python(pattern: str) -> str:
    """Rewrite mid-pattern flag groups as scoped groups."""
    out: list[str] = []
    closers: list[int] = []  # per open group: how many scoped groups to close with it
    pending = 0
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < len(pattern) and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        m = _FLAGS.match(pattern, i)
        if m:
            out.append(f"(?{m.group(1).replace('U', '')}:")
            pending += 1
            i = m.end()
            continue
        if c == "(":
            closers.append(pending)
            pending = 0
        elif c == ")":
            out.append(")" * pending)
            pending = closers.pop() if closers else 0
        out.append(c)
        i += 1
    out.append(")" * pending)
    return "".join(out)
