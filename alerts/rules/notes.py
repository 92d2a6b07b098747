"""Annotations expanded when they are read, not at every evaluation.

A firing alert's value moves at nearly every evaluation (rates do), and Prometheus expands
its annotations each time; tens of thousands of alerts then cost more in templates than the
rules cost in queries, while the texts are read only when an alert is sent or shown. An
alert whose templates are plain (see :meth:`alerts.rules.templates.Expander.partial`) keeps
:class:`Notes` instead, the templates with its series' labels filled in, and prints them
with its value when read: the same texts, since a plain template's expansion depends on
nothing else.

Notes are made only of pieces that print every float without an error, so that they finish
alike wherever they are read, after a restart too (the state file keeps them as data, see
:func:`notes_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.rules.templates import Partial, ValueOp, finish_partial, total_op

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, eq=True)
class Notes:
    """An alert's annotations, each a text or a :data:`Partial` to finish with the value."""

    pieces: tuple[tuple[str, str | Partial], ...]

    def texts(self, value: float) -> Labels:
        """The annotations as expanded with ``value``."""
        out = []
        for name, piece in self.pieces:
            if type(piece) is str:
                out.append((name, piece))
                continue
            done = finish_partial(piece, value)  # type: ignore[arg-type]
            # Of total_op pieces only (see notes_of): never None.
            assert done is not None
            out.append((name, done))
        return tuple(out)


def notes_of(pieces: tuple[tuple[str, str | Partial | None], ...]) -> Notes | None:
    """Notes of partial expansions, or None if one of them is not plain or may fail to
    print some value (expand those eagerly, with the template runner)."""
    for _, piece in pieces:
        if piece is None:
            return None
        if type(piece) is not str and not all(
            type(p) is str or total_op(p)  # type: ignore[arg-type]
            for p in piece
        ):
            return None
    return Notes(pieces)  # type: ignore[arg-type]


def notes_json(notes: Labels | Notes) -> Any:
    """Annotations as the state file writes them: texts as ``[[name, text], ...]``, notes
    as ``{"notes": [[name, text or [piece, ...]], ...]}`` where a piece is a text or
    ``[fn, form]``."""
    if type(notes) is not Notes:
        return notes
    # Tuples (ValueOp too) are written as JSON arrays: the pieces as they are.
    return {"notes": notes.pieces}


def notes_from_json(data: Any) -> Labels | Notes:
    """What :func:`notes_json` wrote (or texts, as every format wrote them)."""
    if isinstance(data, dict):
        return Notes(
            tuple(
                (
                    name,
                    piece
                    if isinstance(piece, str)
                    else tuple(p if isinstance(p, str) else ValueOp(*p) for p in piece),
                )
                for name, piece in data["notes"]
            )
        )
    return tuple(map(tuple, data))
