"""Hypothesis strategies shared by the fuzz tests: texts near a valid one.

A random string is rejected on its first character by most readers; a valid file with a few
characters inserted, deleted or replaced, or cut short, reaches the deeper branches.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that matter to the formats read here (YAML, exposition, promqltest), so that a
# replacement often changes the structure rather than only a word.
_SYNTAX = " \t\n#:{}[]\"'\\,=-+.0123456789eEnN_|>&*!%@`~"


def _edit(text: str, kind: int, at: int, piece: str) -> str:
    at %= len(text) + 1
    if kind == 0:  # insert
        return text[:at] + piece + text[at:]
    if kind == 1:  # delete
        return text[:at] + text[at + len(piece) :]
    if kind == 2:  # replace
        return text[:at] + piece + text[at + len(piece) :]
    return text[:at]  # truncate


@st.composite
def mutated(draw: st.DrawFn, text: str, max_edits: int = 4) -> str:
    """``text`` after one to ``max_edits`` random insertions, deletions, replacements or cuts."""
    pieces = st.text(st.sampled_from(_SYNTAX) | st.characters(), min_size=1, max_size=4)
    for _ in range(draw(st.integers(1, max_edits))):
        kind = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(text)))
        text = _edit(text, kind, at, draw(pieces))
    return text


def texts_near(text: str) -> st.SearchStrategy[str]:
    """Mutations of ``text`` and, less often, arbitrary text."""
    return mutated(text) | st.text(max_size=200)
