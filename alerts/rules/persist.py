"""Alert state on disk: every group's pending, firing and recently resolved alerts.

Written atomically after each evaluation (after its notifications were queued), read at
start, so a restart keeps ``activeAt`` (no ``for`` clock restarts) and what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts.rules.group import GroupState, _rule_key
from alerts.rules.state import Alert, AlertState
from tsdb.recordlog import frame, read_records, write_atomically

_SNAPSHOT = 1
FILE = "rules.state"


def _alert(a: Alert) -> list[Any]:
    return [
        list(map(list, a.labels)),
        list(map(list, a.annotations)),
        a.state.value,
        a.value,
        a.active_at,
        a.fired_at,
        a.resolved_at,
        a.last_sent_at,
        a.valid_until,
        a.keep_firing_since,
    ]


def _unalert(x: list[Any]) -> Alert:
    return Alert(
        tuple(map(tuple, x[0])), tuple(map(tuple, x[1])), AlertState(x[2]), float(x[3]), *x[4:]
    )


def save(path: Path, groups: Sequence[GroupState]) -> None:
    """Write every group's alert state."""
    state = {
        g.spec.key: {
            "last": g.last_evaluation_ms,
            "rules": [
                [list(_rule_key(r)), [_alert(a) for a in alerts.values()]]
                for r, alerts in zip(g.spec.rules, g.alerts, strict=True)
                if r.kind == "alert"
            ],
        }
        for g in groups
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, frame(_SNAPSHOT, json.dumps(state).encode()))


def restore(path: Path, groups: Sequence[GroupState]) -> int:
    """Put saved alerts back into matching groups and rules; returns how many."""
    if not path.exists():
        return 0
    records = read_records(path.read_bytes()).records
    if not records:
        return 0
    state = json.loads(records[-1].payload)
    restored = 0
    for g in groups:
        saved = state.get(g.spec.key)
        if saved is None:
            continue
        g.last_evaluation_ms = saved["last"]
        by_key = {tuple(k): v for k, v in saved["rules"]}
        for i, r in enumerate(g.spec.rules):
            items = by_key.get(_rule_key(r))
            if items:
                g.alerts[i] = {a.labels: a for a in map(_unalert, items)}
                restored += len(items)
    return restored
