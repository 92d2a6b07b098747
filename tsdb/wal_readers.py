"""Readers of the write-ahead log beside the store: where each stands, durably, and the
segments the store keeps for them.

A reader (remote write, one per receiver) follows ``wal/N.seg`` as the store appends to it and
saves its state in ``wal_readers/<name>.json``: the oldest segment it still needs, the most
log bytes it may hold back (its bound), and whatever else it keeps (its own positions). The
store deletes a segment that sealed blocks cover only once no reader needs it
(:func:`drop_covered_segments`), so a reader that falls behind (a receiver down for an hour)
loses nothing; a reader that falls further behind than its bound is let go: the oldest
segments it holds are deleted anyway, with a warning, and it skips to what is left.

Invariants: a state file is replaced atomically (old or new, never half); a reader's segment
is never held once it is past the bound; a segment the store has not sealed is never deleted
here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tsdb.recordlog import iter_files, write_atomically

log = logging.getLogger(__name__)

__all__ = [
    "ReaderState",
    "drop_covered_segments",
    "forget_reader",
    "held_segments",
    "load_reader_state",
    "reader_names",
    "readers_dir",
    "save_reader_state",
    "segment_path",
    "wal_dir",
]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SEGMENT_SUFFIX = ".seg"

ReaderState = dict[str, Any]


def wal_dir(data_dir: Path) -> Path:
    """The store's write-ahead log directory."""
    return data_dir / "wal"


def readers_dir(data_dir: Path) -> Path:
    """Where readers of the log keep their state."""
    return data_dir / "wal_readers"


def segment_path(data_dir: Path, number: int) -> Path:
    """The file of log segment ``number``."""
    return wal_dir(data_dir) / f"{number:08d}{SEGMENT_SUFFIX}"


def _state_path(data_dir: Path, name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise ValueError(f"log reader name {name!r}: use letters, digits, '_', '.', '-'")
    return readers_dir(data_dir) / f"{name}.json"


def save_reader_state(
    data_dir: Path,
    name: str,
    segment: int,
    max_held_bytes: int,
    extra: Mapping[str, Any],
    fsync: bool = False,
) -> None:
    """Record that reader ``name`` needs segments from ``segment`` on (at most
    ``max_held_bytes`` of them held back), with its own ``extra`` state."""
    path = _state_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**extra, "segment": int(segment), "max_held_bytes": int(max_held_bytes)}
    write_atomically(path, json.dumps(body, separators=(",", ":")).encode(), fsync)


def load_reader_state(data_dir: Path, name: str) -> ReaderState | None:
    """What reader ``name`` saved last, or None (never saved, or unreadable: logged)."""
    path = _state_path(data_dir, name)
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s: cannot read the log reader's state (%s); starting afresh", path, e)
        return None
    if not isinstance(state, dict) or not isinstance(state.get("segment"), int):
        log.warning("%s: not a log reader's state; starting afresh", path)
        return None
    return state


def reader_names(data_dir: Path) -> list[str]:
    """Names of the readers with a saved state."""
    directory = readers_dir(data_dir)
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def forget_reader(data_dir: Path, name: str) -> None:
    """Remove reader ``name``'s state: the store keeps no segment for it any more."""
    _state_path(data_dir, name).unlink(missing_ok=True)


def _holds(data_dir: Path) -> list[tuple[str, int, int]]:
    """(name, oldest segment needed, max held bytes) of every reader."""
    found = []
    for name in reader_names(data_dir):
        state = load_reader_state(data_dir, name)
        if state is None:
            continue
        found.append((name, int(state["segment"]), int(state.get("max_held_bytes", 0))))
    return found


def held_segments(data_dir: Path, upto: int) -> set[int]:
    """Of the segments numbered ``<= upto`` (covered by blocks), those a reader still needs
    and may hold: for each reader, its segments from the one it needs on, newest first, as
    long as together they fit in its ``max_held_bytes``."""
    covered = [(n, p) for n, p in iter_files(wal_dir(data_dir), SEGMENT_SUFFIX) if n <= upto]
    held: set[int] = set()
    for name, needed, budget in _holds(data_dir):
        used = 0
        let_go: list[int] = []
        for number, path in reversed(covered):
            if number < needed:
                break
            with contextlib.suppress(OSError):
                used += path.stat().st_size
            if used > budget:
                let_go.append(number)
            else:
                held.add(number)
        if let_go:
            log.warning(
                "log reader %s needs segments from %d on but is past its bound of %d bytes; "
                "deleting segments %d..%d it has not read",
                name,
                needed,
                budget,
                min(let_go),
                max(let_go),
            )
    return held


def drop_covered_segments(data_dir: Path, upto: int) -> None:
    """Delete the log segments numbered ``<= upto`` (sealed blocks cover them) that no reader
    holds (see :func:`held_segments`)."""
    held = held_segments(data_dir, upto)
    for number, path in iter_files(wal_dir(data_dir), SEGMENT_SUFFIX):
        if number <= upto and number not in held:
            path.unlink(missing_ok=True)
