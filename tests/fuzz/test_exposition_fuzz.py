"""Fuzzing the exposition readers: malformed text only ever raises ExpositionError (the full
parser) or gives None (the fast kubelet decoder), never another exception."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors.usage import decode_resource_metrics, decode_resource_text
from tests.fuzz.mutations import texts_near
from tests.support.payloads import kubelet_resource_metrics
from tsdb.exposition import ExpositionError, parse_exposition

KUBELET = kubelet_resource_metrics()
SMALL = """\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400",path="a\\"b\\\\c\\n"} 3 1395066363000
# TYPE latency histogram
latency_bucket{le="0.5"} +Inf
latency_bucket{le="+Inf"} NaN
latency_sum -1.5e-3
"""
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _parse(text: str) -> None:
    try:
        parse_exposition(text, max_samples=1_000)
    except ExpositionError as e:
        assert e.line >= 1 and e.reason


# A timestamp beyond int64 (or beyond int()'s digit limit) once escaped as a bare ValueError.
LONG_TIMESTAMP = "node_cpu_usage_seconds_total 1 " + "9" * 5000


@FUZZ
@given(texts_near(SMALL))
@example(LONG_TIMESTAMP)
@example("a 1 9223372036854775808")
def test_parse_exposition_raises_only_its_own_error(text: str) -> None:
    _parse(text)


@FUZZ
@given(st.text(st.characters(codec="utf-8") | st.sampled_from('{}="\\ #\n'), max_size=300))
def test_parse_exposition_on_random_text(text: str) -> None:
    _parse(text)


@FUZZ
@given(texts_near(KUBELET))
@example(LONG_TIMESTAMP)
@example(KUBELET.replace(" 1", " 1 -9223372036854775809", 1))
def test_decode_resource_text_gives_none_or_the_full_readings(text: str) -> None:
    try:
        fast = decode_resource_text(text, 1_700_000_000_000, {})
    except Exception as e:  # pragma: no cover - what the test is looking for
        raise AssertionError(f"the fast decoder raised {type(e).__name__}: {e}") from e
    if fast is None:
        return
    try:
        full = decode_resource_metrics(parse_exposition(text), 1_700_000_000_000)
    except ExpositionError as e:
        raise AssertionError(f"the fast decoder accepted text the parser rejects: {e}") from e
    assert not full.rejected
    assert (fast.node, fast.pods, fast.containers) == (full.node, full.pods, full.containers)
