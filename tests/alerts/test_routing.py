"""Matchers, the routing tree, inhibition and the notifier's settings, as Alertmanager has them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.notify.inhibit import Inhibitor, build_inhibitions
from alerts.notify.matchers import MatcherError, format_matchers, parse_matchers
from alerts.notify.route import build_route
from alerts.settings import InhibitRule, NotifySettings
from autoscaler.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('severity="page"', ['severity="page"']),
        ("severity = page", ['severity="page"']),
        ('{a="1", b!="2"}', ['a="1"', 'b!="2"']),
        ('job=~"api|web", instance!~"db.*"', ['job=~"api|web"', 'instance!~"db.*"']),
        (r'msg="say \"hi\", ok"', [r'msg="say \"hi\", ok"']),
        ("foo=", ['foo=""']),
    ],
)
def test_matchers_parse_like_alertmanager(text: str, want: list[str]) -> None:
    assert [str(m) for m in parse_matchers(text)] == want


@pytest.mark.parametrize("text", ['a="x', "1a=b", 'a=~"("', "novalue"])
def test_bad_matchers_are_rejected(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matchers(text)


def test_regex_matchers_are_anchored() -> None:
    (m,) = parse_matchers('job=~"api"')
    assert m.matches("api")
    assert not m.matches("api-2")


def _notify(
    route: dict[str, Any], receivers: tuple[str, ...] = ("default", "db", "ops")
) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "receivers": [
                {"name": n, "webhook_configs": [{"url": f"http://127.0.0.1/{n}"}]}
                for n in receivers
            ],
            "route": route,
        }
    )


ROUTE = {
    "receiver": "default",
    "group_by": ["alertname"],
    "group_wait": "10s",
    "routes": [
        {
            "matchers": ['service=~"db|cache"'],
            "receiver": "db",
            "group_by": ["alertname", "cluster"],
            "routes": [{"matchers": ["severity=page"], "receiver": "ops", "group_wait": "1s"}],
        },
        {"matchers": ["team=frontend"], "continue": True, "receiver": "ops"},
        {"matchers": ["severity=page"], "group_by": ["..."]},
    ],
}


@pytest.mark.parametrize(
    ("labels", "want"),
    [
        ({"alertname": "A"}, [("{}", "default")]),
        ({"service": "db"}, [('{}/{service=~"db|cache"}', "db")]),
        (
            {"service": "db", "severity": "page"},
            [('{}/{service=~"db|cache"}/{severity="page"}', "ops")],
        ),
        (
            {"team": "frontend", "severity": "page"},
            [('{}/{team="frontend"}', "ops"), ('{}/{severity="page"}', "default")],
        ),
        ({"team": "frontend"}, [('{}/{team="frontend"}', "ops")]),
    ],
)
def test_route_tree_matches_like_alertmanager(
    labels: dict[str, str], want: list[tuple[str, str]]
) -> None:
    root = build_route(_notify(ROUTE).route)
    assert [(r.key, r.receiver) for r in root.match(labels)] == want


def test_children_inherit_group_by_and_timers() -> None:
    root = build_route(_notify(ROUTE).route)
    db = root.routes[0]
    page = db.routes[0]
    assert page.group_by == frozenset({"alertname", "cluster"})
    assert (page.group_wait_ms, page.group_interval_ms, page.repeat_interval_ms) == (
        1_000,
        300_000,
        14_400_000,
    )
    assert root.routes[2].group_by is None  # `...`
    labels = (("alertname", "A"), ("cluster", "c1"), ("instance", "i"))
    assert page.group_labels(labels) == (("alertname", "A"), ("cluster", "c1"))
    assert root.routes[2].group_labels(labels) == labels


def test_route_key_sorts_matchers() -> None:
    assert format_matchers(parse_matchers('b="1", a=~"x", a="x"')) == '{a="x",a=~"x",b="1"}'


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            {"receiver": "nobody"},
            "route.receiver: unknown receiver 'nobody' (valid: db, default, ops)",
        ),
        (
            {"receiver": "default", "routes": [{"routes": [{"receiver": "x"}]}]},
            "route.routes[0].routes[0].receiver: unknown receiver 'x'",
        ),
    ],
)
def test_route_errors_name_the_field(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        _notify(route)


def test_settings_file_errors_name_the_position(tmp_path: Any) -> None:
    path = tmp_path / "foresight.yaml"
    path.write_text(
        "notify:\n"
        "  receivers: [{name: a, webhook_configs: [{url: 'http://127.0.0.1/'}]}]\n"
        "  route:\n"
        "    receiver: a\n"
        "    group_wait: 5x\n"
        "    routes:\n"
        "    - matchers: ['severity=~\"(\"']\n"
    )
    with pytest.raises(SettingsError) as e:
        load_settings(path)
    text = str(e.value)
    assert "notify.route.group_wait" in text and "5x" in text
    assert "notify.route.routes.0.matchers" in text and "invalid regular expression" in text
    assert f"{path}:5:" in text


def test_inhibition_equal_counts_missing_labels_as_equal() -> None:
    rules = build_inhibitions(
        [
            InhibitRule(
                source_matchers=["severity=critical"],
                target_matchers=["severity=warning"],
                equal=["cluster", "zone"],
            )
        ]
    )
    firing = [{"alertname": "Down", "severity": "critical", "cluster": "c1"}]
    inhibitor = Inhibitor(rules, firing)
    assert inhibitor.muted({"alertname": "Slow", "severity": "warning", "cluster": "c1"})
    assert not inhibitor.muted({"alertname": "Slow", "severity": "warning", "cluster": "c2"})
    assert not inhibitor.muted(
        {"alertname": "Slow", "severity": "warning", "cluster": "c1", "zone": "a"}
    )
    assert not inhibitor.muted({"alertname": "Other", "severity": "critical", "cluster": "c1"})


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    rules = build_inhibitions(
        [InhibitRule(source_matchers=["alertname=A"], target_matchers=["alertname=A"])]
    )
    both = {"alertname": "A", "x": "1"}
    assert not Inhibitor(rules, [both]).muted(both)
    assert not Inhibitor(rules, [both, {"alertname": "A", "x": "2"}]).muted(both)
