"""Executing parsed templates, as Go's ``text/template`` does.

A template is compiled once into nested closures, one per node, so that expanding it for
each of thousands of alerts at every evaluation does not dispatch on node types again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from alerts.rules.gofmt import to_string
from alerts.rules.template_parse import (
    Action,
    Branch,
    Command,
    Field,
    Ident,
    Literal,
    Node,
    Pipe,
    TemplateError,
    Text,
)

NO_VALUE = "<no value>"

Scopes = list[dict[str, Any]]


class _NoValue:
    def __str__(self) -> str:
        return NO_VALUE


MISSING: Any = _NoValue()
"""What a missing map key or unset variable reads as."""


def truth(v: Any) -> bool:
    """Go's notion of a true value in ``if``, ``with``, ``and``, ``or`` and ``not``."""
    if v is None or v is MISSING:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


class Run:
    """One execution: the template's name (for errors), its functions and the output."""

    __slots__ = ("funcs", "name", "out")

    def __init__(self, name: str, funcs: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.funcs = funcs
        self.out: list[str] = []

    def fail(self, line: int, message: str) -> NoReturn:
        raise TemplateError(f'template: {self.name}:{line}: executing "{self.name}": {message}')


Step = Callable[[Run, Any, Scopes], None]
_PipeFn = Callable[[Run, Any, Scopes, bool], Any]
_ValueFn = Callable[[Run, Any, Scopes, Any], Any]


def compile_nodes(nodes: list[Node]) -> Step:
    """A function that writes what ``nodes`` print to ``run.out``."""
    steps = tuple(_node(n) for n in nodes)

    def run_all(run: Run, dot: Any, scopes: Scopes) -> None:
        for step in steps:
            step(run, dot, scopes)

    return run_all


def _node(node: Node) -> Step:
    if isinstance(node, Text):
        text = node.text

        def write(run: Run, dot: Any, scopes: Scopes) -> None:
            run.out.append(text)

        return write
    if isinstance(node, Action):
        pipe = _pipe(node.pipe)
        if node.pipe.decl:

            def declare(run: Run, dot: Any, scopes: Scopes) -> None:
                pipe(run, dot, scopes, True)

            return declare

        def action(run: Run, dot: Any, scopes: Scopes) -> None:
            run.out.append(to_string(pipe(run, dot, scopes, True)))

        return action
    return _branch(node)


def _branch(node: Branch) -> Step:
    pipe = _pipe(node.pipe)
    body = compile_nodes(node.body)
    otherwise = compile_nodes(node.otherwise)
    decl = node.pipe.decl
    line = node.pipe.line
    if node.kind == "range":

        def range_(run: Run, dot: Any, scopes: Scopes) -> None:
            inner = [*scopes, {}]
            items = pipe(run, dot, inner, False)
            pairs: list[tuple[Any, Any]]
            if isinstance(items, Mapping):
                pairs = sorted(items.items())
            elif isinstance(items, (list, tuple)):
                pairs = list(enumerate(items))
            elif isinstance(items, int) and not isinstance(items, bool):
                pairs = [(i, i) for i in range(items)]
            elif items is None or items is MISSING:
                pairs = []
            else:
                run.fail(line, f"range can't iterate over {to_string(items)}")
            if not pairs:
                otherwise(run, dot, inner)
            for key, item in pairs:
                if len(decl) == 1:
                    inner[-1][decl[0]] = item
                elif len(decl) == 2:
                    inner[-1][decl[0]] = key
                    inner[-1][decl[1]] = item
                body(run, item, inner)

        return range_
    with_ = node.kind == "with"

    def if_(run: Run, dot: Any, scopes: Scopes) -> None:
        inner = [*scopes, {}]
        value = pipe(run, dot, inner, True)
        if truth(value):
            body(run, value if with_ else dot, inner)
        else:
            otherwise(run, dot, inner)

    return if_


def _pipe(pipe: Pipe) -> _PipeFn:
    commands = tuple(_command(c, pipe.line) for c in pipe.commands)
    decl, assign = tuple(pipe.decl), pipe.assign

    def run_pipe(run: Run, dot: Any, scopes: Scopes, declare: bool) -> Any:
        value = MISSING
        for command in commands:
            value = command(run, dot, scopes, value)
        if declare:
            for name in decl:
                if assign:
                    for scope in reversed(scopes):
                        if name in scope:
                            scope[name] = value
                            break
                else:
                    scopes[-1][name] = value
        return value

    return run_pipe


def _command(command: Command, line: int) -> _ValueFn:
    head = command.args[0]
    if isinstance(head, Ident):
        name = head.name
        operands = tuple(_operand(a, line) for a in command.args[1:])

        def call(run: Run, dot: Any, scopes: Scopes, piped: Any) -> Any:
            args = [op(run, dot, scopes) for op in operands]
            if piped is not MISSING:
                args.append(piped)
            try:
                return run.funcs[name](*args)
            except TemplateError as e:
                run.fail(line, f"error calling {name}: {e}")
            except (TypeError, ValueError, re.error, KeyError, AttributeError) as e:
                run.fail(line, f"error calling {name}: {e}")

        return call
    alone = len(command.args) == 1
    operand = _operand(head, line)

    def value(run: Run, dot: Any, scopes: Scopes, piped: Any) -> Any:
        if not alone or piped is not MISSING:
            run.fail(line, "can't give argument to non-function")
        return operand(run, dot, scopes)

    return value


def _operand(op: Any, line: int) -> Callable[[Run, Any, Scopes], Any]:
    if isinstance(op, Literal):
        constant = op.value
        return lambda run, dot, scopes: constant
    if isinstance(op, Ident):
        name = op.name
        return lambda run, dot, scopes: run.funcs[name]()
    assert isinstance(op, Field)
    names = tuple(op.names)
    base = op.base
    if isinstance(base, Pipe):
        inner = _pipe(base)

        def start(run: Run, dot: Any, scopes: Scopes) -> Any:
            return inner(run, dot, scopes, True)

    elif base == ".":

        def start(run: Run, dot: Any, scopes: Scopes) -> Any:
            return dot

    else:
        variable = base

        def start(run: Run, dot: Any, scopes: Scopes) -> Any:
            for scope in reversed(scopes):
                if variable in scope:
                    return scope[variable]
            return MISSING

    if not names:
        return start

    def field(run: Run, dot: Any, scopes: Scopes) -> Any:
        value = start(run, dot, scopes)
        for name in names:
            value = _field(run, value, name, line)
        return value

    return field


def _field(run: Run, value: Any, name: str, line: int) -> Any:
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(name, MISSING)
    if value is None or value is MISSING:
        run.fail(line, f"nil pointer evaluating interface {{}}.{name}")
    if hasattr(value, name) and name[:1].isupper():
        return getattr(value, name)
    run.fail(line, f"can't evaluate field {name} in type {type(value).__name__}")
