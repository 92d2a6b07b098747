"""Parsing the Go ``text/template`` subset that Prometheus rule templates use.

Actions ``{{ }}`` with ``{{-``/``-}}`` trimming and comments; pipelines with ``|``,
variables (``$x := ...``), fields (``.Labels.job``, ``$labels.job``), literals and
parenthesised pipelines; ``if``/``else if``/``else``, ``range`` (with ``$i, $x :=``),
``with`` and ``end``. Undefined variables and unknown functions are parse errors, as in Go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class TemplateError(ValueError):
    """A template that does not parse or fails to execute; the message follows Go's."""


@dataclass
class Field:
    """``.A.B``, ``$x.A`` or ``(pipe).A``: a base and the names read from it."""

    base: str | Pipe  # "." for dot, "$name" for a variable, or a parenthesised pipe
    names: list[str] = field(default_factory=list)


@dataclass
class Literal:
    value: Any


@dataclass
class Ident:
    name: str


Operand = Field | Literal | Ident


@dataclass
class Command:
    args: list[Operand]


@dataclass
class Pipe:
    line: int
    decl: list[str]
    assign: bool  # ``=`` rather than ``:=``
    commands: list[Command]


@dataclass
class Text:
    text: str


@dataclass
class Action:
    pipe: Pipe


@dataclass
class Branch:
    kind: str  # if, with, range
    pipe: Pipe
    body: list[Node]
    otherwise: list[Node]


Node = Text | Action | Branch

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<char>'(?:[^'\\]|\\.)+')
    | (?P<num>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))
    | (?P<decl>:=)
    | (?P<op>[|(),=])
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "0": "\0"}
_KEYWORDS = {
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
}


def _unquote(text: str) -> str:
    out = []
    i = 1
    while i < len(text) - 1:
        c = text[i]
        if c == "\\":
            n = text[i + 1]
            if n in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[n]
                out.append(chr(int(text[i + 2 : i + 2 + width], 16)))
                i += 2 + width
                continue
            out.append(_ESC.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


class _Tokens:
    def __init__(self, text: str, line: int, error: Any) -> None:
        self.items: list[tuple[str, str]] = []
        self.error = error
        self.line = line
        at = 0
        while at < len(text):
            if not text[at:].strip():
                break
            m = _TOKEN.match(text, at)
            if m is None or m.end() == at:
                error(line, f"unexpected {text[at:].strip()[:1]!r} in command")
            assert m is not None and m.lastgroup is not None
            self.items.append((m.lastgroup, m.group(m.lastgroup)))
            at = m.end()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            self.error(self.line, "unexpected end of action")
        assert tok is not None
        self.pos += 1
        return tok


class Parser:
    """Turns template text into nodes, checking variables and function names as Go does."""

    def __init__(self, name: str, functions: set[str], variables: list[str]) -> None:
        self.name = name
        self.functions = functions
        self.scopes: list[list[str]] = [["$", *variables]]

    def error(self, line: int, message: str) -> None:
        raise TemplateError(f"template: {self.name}:{line}: {message}")

    def parse(self, text: str) -> list[Node]:
        actions = self._split(text)
        nodes, stop, _ = self._list(actions, 0, top=True)
        if stop < len(actions):
            self.error(actions[stop][0], f"unexpected {{{{{(actions[stop][1] or '').strip()}}}}}")
        return nodes

    def _split(self, text: str) -> list[tuple[int, str | None, str]]:
        """``(line, action or None, text)`` pieces, with trim markers applied."""
        pieces: list[tuple[int, str | None, str]] = []
        at = 0
        trim_next = False
        while True:
            start = text.find("{{", at)
            chunk = text[at:] if start < 0 else text[at:start]
            trim_prev = start >= 0 and text.startswith("{{- ", start)
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if trim_prev:
                chunk = chunk.rstrip(" \t\r\n")
            if chunk:
                pieces.append((text.count("\n", 0, at) + 1, None, chunk))
            if start < 0:
                return pieces
            line = text.count("\n", 0, start) + 1
            body_start = start + (3 if trim_prev else 2)
            if text.startswith("/*", body_start):
                close = text.find("*/", body_start)
                end = -1 if close < 0 else text.find("}}", close)
            else:
                end = self._action_end(text, body_start)
            if end < 0:
                self.error(line, "unclosed action")
            trim_next = end >= 1 and text[end - 2 : end] == " -"
            body = text[body_start : end - 2 if trim_next else end]
            if not body.strip().startswith("/*"):
                pieces.append((line, body, ""))
            at = end + 2

    def _action_end(self, text: str, at: int) -> int:
        quote = ""
        i = at
        while i < len(text):
            c = text[i]
            if quote:
                if c == "\\" and quote != "`":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "\"`'":
                quote = c
            elif text.startswith("}}", i):
                return i
            i += 1
        return -1

    def _list(
        self, pieces: list[tuple[int, str | None, str]], at: int, top: bool = False
    ) -> tuple[list[Node], int, str]:
        """Nodes up to an ``else``/``end`` (returned as the stop word)."""
        nodes: list[Node] = []
        while at < len(pieces):
            line, body, text = pieces[at]
            if body is None:
                nodes.append(Text(text))
                at += 1
                continue
            words = body.split(None, 1)
            word = words[0] if words else ""
            rest = words[1] if len(words) > 1 else ""
            if word in ("else", "end"):
                if top:
                    self.error(line, f"unexpected {{{{{word}}}}}")
                return nodes, at, body.strip()
            if word in ("if", "with", "range"):
                node, at = self._branch(pieces, at, word, rest, line)
                nodes.append(node)
                continue
            if word in ("define", "template", "block", "break", "continue"):
                self.error(line, f"{{{{{word}}}}} is not supported in rule templates")
            nodes.append(Action(self._pipe(body, line, declare=True)))
            at += 1
        return nodes, at, ""

    def _branch(
        self, pieces: list[tuple[int, str | None, str]], at: int, kind: str, rest: str, line: int
    ) -> tuple[Branch, int]:
        self.scopes.append([])
        pipe = self._pipe(rest, line, declare=True, allow_two=kind == "range")
        body, at, stop = self._list(pieces, at + 1)
        otherwise: list[Node] = []
        if stop.startswith("else"):
            after = stop[4:].strip()
            if after:
                chained_kind, _, chained_rest = after.partition(" ")
                if chained_kind not in ("if", "with"):
                    self.error(line, f"unexpected {after!r} after else")
                node, at = self._branch(pieces, at, chained_kind, chained_rest, line)
                otherwise = [node]
                self.scopes.pop()
                return Branch(kind, pipe, body, otherwise), at
            otherwise, at, stop = self._list(pieces, at + 1)
        if stop != "end":
            self.error(line, f"unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}")
        self.scopes.pop()
        return Branch(kind, pipe, body, otherwise), at + 1

    def _pipe(self, text: str, line: int, declare: bool, allow_two: bool = False) -> Pipe:
        toks = _Tokens(text, line, self.error)
        decl: list[str] = []
        assign = False
        if declare:
            save = toks.pos
            names: list[str] = []
            while (tok := toks.peek()) is not None and tok[0] == "var":
                names.append(toks.take()[1])
                nxt = toks.peek()
                if nxt == ("op", ",") and allow_two and len(names) == 1:
                    toks.take()
                    continue
                break
            nxt = toks.peek()
            if names and nxt is not None and (nxt[0] == "decl" or nxt == ("op", "=")):
                assign = nxt[0] == "op"
                toks.take()
                decl = names
            else:
                toks.pos = save
        pipe = Pipe(line, decl, assign, self._commands(toks, line, end=None))
        for name in decl:
            if assign:
                self._check_var(name, line)
            else:
                self.scopes[-1].append(name)
        if not pipe.commands:
            self.error(line, "missing value for command")
        return pipe

    def _commands(self, toks: _Tokens, line: int, end: str | None) -> list[Command]:
        commands: list[Command] = []
        args: list[Operand] = []
        while True:
            tok = toks.peek()
            if tok is None or tok == ("op", ")"):
                if end == ")" and tok is None:
                    self.error(line, "unclosed left paren")
                if end is None and tok is not None:
                    self.error(line, "unexpected right paren")
                break
            kind, value = toks.take()
            if (kind, value) == ("op", "|"):
                if not args:
                    self.error(line, "missing command")
                commands.append(Command(args))
                args = []
                continue
            args.append(self._operand(kind, value, toks, line))
        if args:
            commands.append(Command(args))
        elif commands:
            self.error(line, "missing command")
        return commands

    def _operand(self, kind: str, value: str, toks: _Tokens, line: int) -> Operand:
        if kind == "str":
            return Literal(_unquote(value))
        if kind == "raw":
            return Literal(value[1:-1])
        if kind == "char":
            return Literal(ord(_unquote(value)))
        if kind == "num":
            clean = value.replace("_", "")
            try:
                return Literal(int(clean, 0))
            except ValueError:
                return Literal(float(clean))
        if kind == "var":
            head, *chain = value.split(".")
            self._check_var(head, line)
            return Field(head, chain)
        if kind == "field":
            return Field(".", [n for n in value.split(".") if n])
        if kind == "ident":
            if value in ("true", "false"):
                return Literal(value == "true")
            if value == "nil":
                return Literal(None)
            if value in _KEYWORDS:
                self.error(line, f"unexpected <{value}> in command")
            if value not in self.functions:
                self.error(line, f'function "{value}" not defined')
            return Ident(value)
        if (kind, value) == ("op", "("):
            inner = self._commands(toks, line, end=")")
            toks.take()
            names: list[str] = []
            nxt = toks.peek()
            if nxt is not None and nxt[0] == "field" and nxt[1] != ".":
                names = [n for n in toks.take()[1].split(".") if n]
            return Field(Pipe(line, [], False, inner), names)
        self.error(line, f"unexpected {value!r} in operand")
        raise AssertionError  # unreachable: error() raises

    def _check_var(self, name: str, line: int) -> None:
        if not any(name in scope for scope in self.scopes):
            self.error(line, f'undefined variable "{name}"')
