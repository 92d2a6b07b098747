"""An alert's labels and notes as a series first makes them: the series' labels without its
name, the rule's labels over them (a label set to "" removed), ``alertname``; notes made for
every series of a rule whose annotations print every value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.group import _prepare
from alerts.rules.loader import load_text
from alerts.rules.model import RuleSpec
from alerts.rules.notes import notes_of
from alerts.rules.templates import Expander

NAMES = st.sampled_from(["__name__", "job", "pod", "severity", "team", "alertname"])
VALUES = st.sampled_from(["", "a", "b c", "{{ $labels.pod }}-x", "{{ $value }}"])


def _rule(labels: dict[str, str], annotations: dict[str, str]) -> RuleSpec:
    def block(items: dict[str, str]) -> str:
        return "".join(f"      {k}: {v!r}\n" for k, v in items.items()) or "      {}\n"

    text = (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
        f"    labels:\n{block(labels)}    annotations:\n{block(annotations)}"
    )
    (spec,) = load_text(text, "r.yml")
    return spec.rules[0]


def _model(series: dict[str, str], rule: RuleSpec) -> tuple[tuple[str, str], ...]:
    out = {k: v for k, v in series.items() if k != "__name__"}
    for k, v in rule.labels:
        text = v.replace("{{ $labels.pod }}", series.get("pod", "<no value>"))
        if text:
            out[k] = text
        else:
            out.pop(k, None)
    out["alertname"] = rule.name
    return tuple(sorted(out.items()))


@given(
    st.dictionaries(NAMES, st.sampled_from(["x", "y"]), max_size=4),
    st.dictionaries(NAMES.filter(lambda n: n not in ("__name__", "alertname")), VALUES, max_size=3),
    st.dictionaries(st.sampled_from(["summary", "description"]), VALUES, max_size=2),
)
def test_prepared_alert_labels_and_notes(
    series: dict[str, str], labels: dict[str, str], annotations: dict[str, str]
) -> None:
    rule = _rule(labels, annotations)
    expander = Expander(f"__alert_{rule.name}")
    key, partials, notes = _prepare(expander, rule, tuple(sorted(series.items())))
    if any("$value" in v for v in labels.values()):
        assert key is None
    else:
        assert key == _model(series, rule)
    assert notes == notes_of(partials)
