"""Label matchers' regular expressions are RE2's: linear time, Go's rejections, PromQL's and
Alertmanager's anchoring, and shortcuts for simple patterns that agree with RE2."""

from __future__ import annotations

import time

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdb.go_regex import RegexError, compile_matcher
from tsdb.labels import Matcher, MatchType


def _reference(pattern: str, value: str, dot_nl: bool) -> bool:
    """RE2 through its public API, anchored as Prometheus / Alertmanager anchor."""
    options = re2.Options()
    options.log_errors = False
    anchored = f"^(?s:{pattern})$" if dot_nl else f"^(?:{pattern})$"
    return re2.compile(anchored, options).search(value) is not None


@pytest.mark.parametrize("dot_nl", [True, False])
def test_pathological_pattern_is_linear(dot_nl: bool) -> None:
    regex = compile_matcher("(.*.*)*Z", dot_nl=dot_nl)
    started = time.perf_counter()
    assert not regex.fullmatch("a" * 10_000)
    assert regex.fullmatch("a" * 10_000 + "Z")
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("(?=x)", "invalid perl operator: (?="),
        ("(?<=a)b", "(?<"),
        ("(?<n>a)", "(?<"),
        (r"\C", r"\C"),
        (r"\Z", r"invalid escape sequence: \Z"),
        ("a{1001}", "invalid repetition size"),
        ("a++", "bad repetition operator"),
        ("a)|(b", "unexpected )"),
        ("(", "missing )"),
    ],
)
def test_go_rejects_what_re2_rejects(pattern: str, message: str) -> None:
    for dot_nl in (True, False):
        with pytest.raises(RegexError, match=re2.escape(message)) as caught:
            compile_matcher(pattern, dot_nl=dot_nl)
        assert str(caught.value).startswith(f"invalid regular expression {pattern!r}: ")


def test_dot_and_newline_as_each_project() -> None:
    promql = Matcher(MatchType.REGEX, "a", "x.y")
    assert promql.matches("x\ny")  # Prometheus: ^(?s:...)$
    assert not compile_matcher("x.y", dot_nl=False).fullmatch("x\ny")  # Alertmanager
    assert compile_matcher("(?s)x.y", dot_nl=False).fullmatch("x\ny")
    assert not compile_matcher("web-.*", dot_nl=False).fullmatch("web-1\n2")
    assert compile_matcher("web-.*", dot_nl=True).fullmatch("web-1\n2")


def test_mid_pattern_flags_and_classes() -> None:
    assert Matcher(MatchType.REGEX, "a", "((?i)PRO).*").matches("production")
    assert not Matcher(MatchType.REGEX, "a", r"\d").matches("٣")  # \d is ASCII in Go
    assert Matcher(MatchType.REGEX, "a", r"\pL+").matches("éa")
    assert Matcher(MatchType.REGEX, "a", "[[:alpha:]]+").matches("abc")


_ALPHABET = st.sampled_from(["a", "b", "-", ".", "\n", "é", "ab", ""])
_LITERAL = st.lists(st.sampled_from(["a", "b", "-", r"\.", "é", r"\*"]), max_size=3).map("".join)


@st.composite
def _simple_patterns(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["alt", "affix", "dots", "plus"]))
    if kind == "alt":
        return "|".join(draw(st.lists(_LITERAL, min_size=1, max_size=4)))
    if kind == "affix":
        alts = "|".join(draw(st.lists(_LITERAL, min_size=1, max_size=3)))
        return f"{draw(_LITERAL)}({alts}){draw(_LITERAL)}"
    if kind == "plus":
        return ".+"
    lead, trail = draw(st.booleans()), draw(st.booleans())
    return f"{'.*' if lead else ''}{draw(_LITERAL)}{'.*' if trail else ''}"


@settings(max_examples=400, deadline=None)
@given(
    _simple_patterns(),
    st.lists(_ALPHABET, max_size=6).map("".join),
    st.booleans(),
)
def test_shortcuts_agree_with_re2(pattern: str, value: str, dot_nl: bool) -> None:
    assert compile_matcher(pattern, dot_nl=dot_nl).fullmatch(value) == _reference(
        pattern, value, dot_nl
    )
