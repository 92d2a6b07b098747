"""Label selectors of the query string, against the Kubernetes grammar's examples."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.metricsapi.documents import ForecastView, metric_value_list
from autoscaler.metricsapi.selector import SelectorError, parse_selector

LABELS = {"workload": "web", "resource": "cpu", "quantile": "0.99"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("workload=web", True),
        ("workload==web", True),
        ("workload!=web", False),
        ("workload=api", False),
        ("workload in (web, api)", True),
        ("workload notin (web)", False),
        ("resource,quantile", True),
        ("!resource", False),
        ("!tier", True),
        ("workload=web,resource in (memory)", False),
        ("example.com/tier!=front", True),
        ("workload=", False),
    ],
)
def test_terms_hold_as_kubernetes_reads_them(text: str, matches: bool) -> None:
    assert parse_selector(text).matches(LABELS) is matches


@pytest.mark.parametrize(
    "text", ["workload===web", "workload in ()", "workload in (web", "=web", "a,,b", "a b"]
)
def test_malformed_selectors_name_the_term(text: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_selector(text)


def test_resource_and_horizon_label_the_items_when_known() -> None:
    view = ForecastView("shop", "web", "Deployment", "web", "Recommend", 0.9, 2.0, 1.0, 8)
    assert "resource" not in view.labels()
    known = replace(view, resource="cpu", horizon_seconds=600.0)
    listed = metric_value_list(
        "foresight_autoscaler_forecast", "shop", parse_selector("resource=cpu"), [known], 0.0
    )
    assert listed["items"][0]["metricLabels"]["horizon_seconds"] == "600"
    assert (
        metric_value_list(
            "foresight_autoscaler_forecast", "shop", parse_selector("resource=cpu"), [view], 0.0
        )["items"]
        == []
    )
