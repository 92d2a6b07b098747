"""Alert templates made only of label and value actions are expanded without the template
runner; what they print is what the runner prints, for any labels and value (missing
labels, NaN, infinities, errors included). The runner's output is had by wrapping the same
text in ``{{ if true }}...{{ end }}``, which the plain path does not take."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules.templates import Expander

TEMPLATES = [
    "{{ $value | humanizePercentage }} throttling of CPU in {{ $labels.namespace }}.",
    'Pod {{$labels.namespace}}/{{$labels.pod}} restarted {{ printf "%.2f" $value }} times.',
    "{{ $value }} of {{ .Labels.job }} down ({{ .Value }}).",
    '{{ printf "%.0f" $value }}% {{ $labels.instance }} {{ $value | humanize }}',
    "{{ $value | humanizeDuration }} {{ $value | humanize1024 }} {{ $value | humanizeTimestamp }}",
    '{{ printf "%.4g" $value  }} {{ printf "%d" $value }} {{ printf "%s %s" $value }}',
    "{{ $labels.missing }} and {{ .Labels.pod}}",
    "no actions at all",
]

labels_st = st.dictionaries(
    st.sampled_from(["namespace", "pod", "job", "instance", "other"]),
    st.text(max_size=8),
)
value_st = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e21, 1e-7, 0.123456789, 2.5, -3.0]),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEMPLATES), labels_st, value_st)
def test_plain_templates_print_what_the_runner_prints(
    text: str, labels: dict[str, str], value: float
) -> None:
    expander = Expander("__alert_Test")
    assert _outcome(expander, text, labels, value) == _outcome(
        expander, "{{ if true }}" + text + "{{ end }}", labels, value
    )


def _outcome(expander: Expander, text: str, labels: dict[str, str], value: float) -> str:
    # Both ways must fail alike where a function fails outside the template's errors.
    try:
        return expander.expand(text, labels, value)
    except Exception as e:  # compared, not handled
        return f"raised {type(e).__name__}"


def test_a_timestamp_beyond_any_date_is_an_error_of_the_template_only() -> None:
    expander = Expander("__alert_Test")
    for text in (
        "{{ $value | humanizeTimestamp }}",
        "{{ if true }}{{ humanizeTimestamp $value }}{{ end }}",
    ):
        out = expander.expand(text, {}, 1e300)
        assert "humanizeTimestamp" in out and "out of range" in out
