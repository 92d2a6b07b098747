"""Annotations printed when read: the same texts as expanding them at every evaluation,
across value moves, reads by the API and the notifier, and restarts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.api import alert_json
from alerts.rules.group import EvalContext, GroupState
from alerts.rules.loader import load_text
from alerts.rules.manager import RuleManager, alerts_for_notifier
from alerts.rules.notes import Notes, notes_from_json, notes_json, notes_of
from alerts.rules.state import Alert, AlertState
from alerts.rules.templates import Expander, ValueOp, total_op
from alerts.settings import RuleSettings
from promql import Engine
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

MINUTE = 60_000
LABELS = {"__name__": "m", "pod": "p-1", "namespace": "ns"}

PLAIN = [
    "{{ $value }}",
    "{{ .Value }}",
    "{{ $value | humanize }}",
    "{{ $value | humanize1024 }}",
    "{{ $value | humanizeDuration }}",
    "{{ $value | humanizePercentage }}",
    '{{ printf "%.2f" $value }}',
    '{{ printf "%5.1f%%" $value }}',
    '{{ printf "%d" $value }}',
    '{{ printf "%s %q %t %x %v %e %G" $value }}',
    "pod {{ $labels.pod }} of {{ .Labels.namespace }} at {{ $value | humanize }}"
    " ({{ $labels.nope }})",
    "no template at all",
]
SPECIAL = [0.0, -0.0, 1.0, -1.5, 1e-320, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan]


def _notes(expander: Expander, texts: list[str]) -> Notes | None:
    lmap = dict(LABELS)
    return notes_of(tuple((f"a{i}", expander.partial(t, lmap)) for i, t in enumerate(texts)))


def _eager(expander: Expander, texts: list[str], value: float) -> tuple[tuple[str, str], ...]:
    return tuple((f"a{i}", expander.expand(t, LABELS, value)) for i, t in enumerate(texts))


@pytest.mark.parametrize("value", SPECIAL)
def test_notes_print_what_the_templates_expand_to(value: float) -> None:
    expander = Expander("__alert_A")
    notes = _notes(expander, PLAIN)
    assert notes is not None
    assert notes.texts(value) == _eager(expander, PLAIN, value)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_notes_print_any_value_as_the_templates_do(value: float) -> None:
    expander = Expander("__alert_A")
    notes = _notes(expander, PLAIN)
    assert notes is not None
    assert notes.texts(value) == _eager(expander, PLAIN, value)
    # As the state file keeps them.
    again = notes_from_json(json.loads(json.dumps(notes_json(notes))))
    assert again == notes
    assert isinstance(again, Notes)
    assert again.texts(value) == notes.texts(value)


@pytest.mark.parametrize(
    "text",
    [
        # Fails for values beyond the years a datetime holds.
        "{{ $value | humanizeTimestamp }}",
        # Widths and precisions that are not small numbers.
        '{{ printf "%*d" $value }}',
        '{{ printf "%.9999f" $value }}',
        '{{ printf "100%" $value }}',
        # Not plain: expanded by the template runner.
        "{{ if gt $value 1.0 }}high{{ end }}",
        "{{ $externalLabels.cluster }}",
    ],
)
def test_templates_that_may_fail_or_read_more_are_expanded_eagerly(text: str) -> None:
    assert _notes(Expander("__alert_A"), ["{{ $value }}", text]) is None


def test_notes_are_written_as_plain_json() -> None:
    notes = Notes((("a", "text"), ("b", ("at ", ValueOp("printf", "%.1f"), "!"))))
    want = '{"notes": [["a", "text"], ["b", ["at ", ["printf", "%.1f"], "!"]]]}'
    assert json.dumps(notes_json(notes)) == want
    assert notes_from_json(json.loads(want)) == notes
    assert notes_from_json([["a", "text"]]) == (("a", "text"),)


def test_total_ops() -> None:
    assert total_op(ValueOp("humanize"))
    assert total_op(ValueOp("printf", "%-10.3f and %%"))
    assert not total_op(ValueOp("humanizeTimestamp"))
    assert not total_op(ValueOp("printf", "%1000d"))


def test_texts_of_the_same_notes_are_the_same_tuple_while_they_print_alike() -> None:
    notes = Notes((("summary", ("at ", ValueOp("humanize"))),))
    alert = Alert((("alertname", "A"),), notes, AlertState.FIRING, 1.0001, 0)
    first = alert.annotations
    assert first == (("summary", "at 1"),)
    assert alert.annotations is first
    moved = alert.__copy__()
    moved.move(1.00002, notes)  # prints as 1 too
    assert moved.annotations is first
    moved.move(2.0, notes)
    assert moved.annotations == (("summary", "at 2"),)
    assert alert.annotations is first  # the original is untouched


def test_texts_follow_a_value_moved_in_place() -> None:
    notes = Notes((("summary", ("at ", ValueOp("humanize"))),))
    alert = Alert((("alertname", "A"),), notes, AlertState.FIRING, 1.0, 0)
    assert alert.annotations == (("summary", "at 1"),)
    alert.move(2.0, notes)
    assert alert.annotations == (("summary", "at 2"),)
    other = Notes((("summary", ("now ", ValueOp("humanize"))),))
    alert.move(2.0, other)
    assert alert.annotations == (("summary", "now 2"),)


RULES = """groups:
- name: g
  interval: 1m
  rules:
  - alert: High
    expr: m > 0
    for: 2m
    labels:
      severity: warning
    annotations:
      summary: "{{ $labels.pod }} at {{ $value | humanizePercentage }}"
      value: '{{ printf "%.3f" $value }}'
      fixed: "always the same"
      when: "{{ $value | humanizeTimestamp }}"
"""


WHEN = '      when: "{{ $value | humanizeTimestamp }}"\n'


@pytest.mark.parametrize(
    ("rules", "kinds"),
    [
        # Printed from notes from the first evaluation on.
        (RULES.replace(WHEN, ""), {Notes}),
        # Not every template can be printed from notes: all expanded at each evaluation.
        (RULES, {tuple}),
    ],
)
def test_an_evaluated_alert_reads_as_if_expanded_at_every_evaluation(
    rules: str, kinds: set[type]
) -> None:
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    (spec,) = load_text(rules, "r.yml")
    group = GroupState(spec, MINUTE)
    ctx = EvalContext(Engine(store), store)
    rule = spec.rules[0]
    expander = Expander("__alert_High")
    seen = set()
    for minute in range(1, 7):
        value = 0.5 + minute / 7
        store.append(LABELS, minute * MINUTE, value)
        group.evaluate(ctx, minute * MINUTE)
        (alert,) = group.alerts[0].values()
        seen.add(type(alert.notes))
        want = tuple((k, expander.expand(v, LABELS, value)) for k, v in rule.annotations)
        assert alert.annotations == want
        assert alert_json(alert)["annotations"] == dict(want)
        (sent,) = alerts_for_notifier(rule, [alert], {}, "")
        assert sent.annotations == want
    assert seen == kinds
    store.close()


def test_notes_survive_a_restart(tmp_path: Path) -> None:
    rules = RULES.replace(WHEN, "")
    (tmp_path / "r.yml").write_text(rules)
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)

    def manager() -> RuleManager:
        settings = RuleSettings(
            files=[tmp_path / "r.yml"], state_dir=tmp_path / "state", builtin=False
        )
        m = RuleManager(settings, EvalContext(Engine(store), store))
        assert m.reload()
        return m

    m = manager()
    for minute in range(1, 5):
        store.append(LABELS, minute * MINUTE, 0.5 + minute / 7)
        m.evaluate_due(minute * MINUTE + 1)
    (alert,) = m.groups[0].alerts[0].values()
    assert isinstance(alert.notes, Notes)
    m.close()
    (restored,) = manager().groups[0].alerts[0].values()
    assert restored.notes == alert.notes
    assert restored.annotations == alert.annotations
    assert dict(restored.annotations)["value"] == f"{alert.value:.3f}"
    store.close()
