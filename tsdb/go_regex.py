r"""Go (RE2) regular expressions: the one compile of user-supplied matcher patterns, and a
rewrite of Go patterns for Python's ``re`` where groups must be substituted.

:func:`compile_matcher` compiles a label matcher's pattern with RE2 (the ``google-re2``
binding), as Go's ``regexp`` does for Prometheus and Alertmanager: matching is linear in the
value whatever the pattern (``(.*.*)*Z`` cannot stall anything), and what Go rejects
(backreferences, lookarounds, ``\C``, and ``(?<name>...)`` before Go 1.22, as in
Alertmanager 0.25) is rejected. The pattern must compile alone (Alertmanager validates a
silence's so; ``a)|(b`` is an error), then is anchored as each project anchors it: PromQL's
``^(?s:...)$`` (``.`` matches a newline) and Alertmanager's ``^(?:...)$`` (it does not).

Each call into RE2 costs about 1 µs against 0.2 µs for ``re``, and the store matches every
value of a label; so literal alternations (``api|web``, ``pod-(1|2|3)``), ``.+`` and literals
with ``.*`` before or after (``web-.*``) are matched in Python, as Prometheus'
``FastRegexMatcher`` does, with RE2 still compiling them (errors, and the values with a
newline that a shortcut leaves to it).

RE2 allows a flag group such as ``(?i)`` anywhere, applying to the rest of the enclosing
group; Python accepts global flags only at the very start of a pattern. :func:`to_python`
rewrites ``((?i)PRO).*`` as ``((?i:PRO)).*``, which means the same, for ``label_replace``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import re2  # type: ignore[import-untyped]

__all__ = ["GoRegex", "RegexError", "compile_matcher", "to_python"]


class RegexError(ValueError):
    """A pattern Go's ``regexp`` would not compile; the message says why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    return options


_OPTIONS = _options()
_ANCHOR = re2._re2.RE2.Anchor.UNANCHORED
_NO_MATCH = (-1, -1)
# Go rejects what RE2 accepts: the any-byte escape \C, and (before Go 1.22) (?<name>...).
_GO_REJECTS = re.compile(r"(?<!\\)(?:\\\\)*(\\C|\(\?<(?![=!]))")
# A literal: no metacharacter, or an escaped punctuation character.
_LITERAL = r"(?:[^\\.+*?()|\[\]{}^$]|\\[!-/:-@\[-`{-~])*"
_SIMPLE = re.compile(rf"(\.\*)?({_LITERAL})(\.\*)?")
_ALTERNATION = re.compile(rf"{_LITERAL}(?:\|{_LITERAL})+")
# prefix(a|b|c)suffix, the shape of a selector built from a list of names.
_AFFIXED = re.compile(rf"({_LITERAL})\((?:\?:)?({_LITERAL}(?:\|{_LITERAL})*)\)({_LITERAL})")
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(literal: str) -> str:
    return _UNESCAPE.sub(r"\1", literal)


class GoRegex:
    """A compiled matcher pattern; :meth:`fullmatch` says whether a whole value matches."""

    __slots__ = ("_fast", "_re2", "pattern")

    def __init__(self, pattern: str, *, dot_nl: bool) -> None:
        self.pattern = pattern
        go_only = _GO_REJECTS.search(pattern)
        if go_only:
            raise RegexError(
                f"invalid regular expression {pattern!r}: "
                f"invalid or unsupported syntax: {go_only.group(1)}"
            )
        _re2_compile(pattern, pattern)
        anchored = f"^(?s:{pattern})$" if dot_nl else f"^(?:{pattern})$"
        self._re2 = _re2_compile(anchored, pattern)
        self._fast = _shortcut(pattern, dot_nl)

    def fullmatch(self, value: str) -> bool:
        """Whether ``value`` matches the anchored pattern."""
        if self._fast is not None:
            hit = self._fast(value)
            if hit is not None:
                return hit
        text = value.encode("utf-8", "surrogatepass")
        return bool(self._re2.Match(_ANCHOR, text, 0, len(text))[0] != _NO_MATCH)

    def __repr__(self) -> str:
        return f"GoRegex({self.pattern!r})"


def _re2_compile(text: str, pattern: str) -> re2._re2.RE2:
    compiled = re2._re2.RE2(text.encode("utf-8", "surrogatepass"), _OPTIONS)
    if not compiled.ok():
        error = compiled.error()
        message = error.decode() if isinstance(error, bytes) else str(error)
        raise RegexError(f"invalid regular expression {pattern!r}: {message}")
    return compiled


def _shortcut(pattern: str, dot_nl: bool) -> Callable[[str], bool | None] | None:
    """A Python test for the common simple shapes; None (for a value) defers to RE2."""
    if _ALTERNATION.fullmatch(pattern):
        choices = frozenset(_unescape(x) for x in pattern.split("|"))
        return lambda v: v in choices
    affixed = _AFFIXED.fullmatch(pattern)
    if affixed is not None:
        prefix, suffix = _unescape(affixed.group(1)), _unescape(affixed.group(3))
        middle = frozenset(_unescape(x) for x in affixed.group(2).split("|"))
        short = len(prefix) + len(suffix)
        return lambda v: (
            len(v) >= short
            and v.startswith(prefix)
            and v.endswith(suffix)
            and v[len(prefix) : len(v) - len(suffix)] in middle
        )
    if pattern == ".+":
        return lambda v: None if "\n" in v and not dot_nl else v != ""
    m = _SIMPLE.fullmatch(pattern)
    if m is None:
        return None
    lead, literal, trail = bool(m.group(1)), _unescape(m.group(2)), bool(m.group(3))
    if lead and trail:
        test: Callable[[str], bool] = lambda v: literal in v  # noqa: E731
    elif lead:
        test = lambda v: v.endswith(literal)  # noqa: E731
    elif trail:
        test = lambda v: v.startswith(literal)  # noqa: E731
    else:
        return lambda v: v == literal
    if dot_nl:
        return test
    # Where `.` must not match a newline, a value holding one is left to RE2.
    return lambda v: None if "\n" in v else test(v)


def compile_matcher(pattern: str, *, dot_nl: bool) -> GoRegex:
    """``pattern`` compiled as a label matcher: PromQL's (``dot_nl=True``) or
    Alertmanager's (``dot_nl=False``); :class:`RegexError` when Go would reject it."""
    return GoRegex(pattern, dot_nl=dot_nl)


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
