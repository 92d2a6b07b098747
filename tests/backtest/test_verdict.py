"""The goal's verdict: each competitor's best setting, the cheapest of those, of all."""

from __future__ import annotations

from autoscaler.backtest.scoring import Aggregate
from autoscaler.backtest.verdict import verdicts


def _a(viol: float, cost: float) -> Aggregate:
    return Aggregate(traces=1, violation_pct=viol, unserved_pct=0.0, cost_vs_oracle=cost, actions=0)


AGGREGATES = {
    "foresight": _a(0.1, 1.6),
    "hpa@0.5": _a(0.3, 2.3),  # hpa's best: its fewest violations
    "hpa@0.9": _a(2.5, 1.15),  # the cheapest setting of any
    "ehpa@0.5": _a(0.2, 2.5),  # the fewest of all the competitors
    "ehpa@0.9": _a(1.0, 1.3),
    "hpa-on-forecast@0.9": _a(0.05, 1.0),  # foresight's own forecast: not a competitor
    "oracle": _a(0.0, 1.0),
}


def test_each_competitors_best_setting_is_its_fewest_violations() -> None:
    [v] = verdicts(AGGREGATES, ["foresight"])
    assert (v.fewest, v.cheapest_best, v.cheapest) == ("ehpa@0.5", "hpa@0.5", "hpa@0.9")
    assert v.fewer and v.cheaper("hpa@0.5") and not v.cheaper("hpa@0.9")
    assert v.met
    assert v.line() == (
        "foresight: viol 0.100% vs fewest of the competitors ehpa@0.5 0.200% (better); "
        "cost 1.600 vs the cheapest best setting hpa@0.5 2.300 (better), "
        "vs the cheapest setting of any hpa@0.9 1.150 (WORSE)"
    )


def test_either_half_failing_fails_the_goal() -> None:
    more = verdicts({**AGGREGATES, "foresight": _a(0.2, 1.6)}, ["foresight"])[0]
    assert not more.fewer and not more.met  # a tie is not fewer
    dearer = verdicts({**AGGREGATES, "foresight": _a(0.1, 2.4)}, ["foresight"])[0]
    assert dearer.fewer and not dearer.met
    assert "2.300 (WORSE)" in dearer.line()
    assert dearer.as_dict()["cheaper_than_cheapest_best"] is False


def test_no_competitor_no_verdict() -> None:
    only = {k: v for k, v in AGGREGATES.items() if not k.startswith(("hpa@", "ehpa@"))}
    assert verdicts(only, ["foresight"]) == []


def test_ties_go_to_the_cheaper_setting_whatever_the_order() -> None:
    tied = {"hpa@0.5": _a(0.0, 3.0), "hpa@0.7": _a(0.0, 2.0), "ehpa@0.5": _a(0.0, 2.2)}
    ours = {"foresight": _a(0.0, 2.1)}
    for order in (list(tied), list(reversed(tied))):
        [v] = verdicts({**ours, **{k: tied[k] for k in order}}, ["foresight"])
        # hpa's best is hpa@0.7 (cheaper at the same 0 %); the fewest, a tie, is also hpa@0.7.
        assert (v.fewest, v.cheapest_best, v.cheapest) == ("hpa@0.7", "hpa@0.7", "hpa@0.7")
        assert not v.fewer and not v.met


def test_the_verdict_names_the_competitors_replayed() -> None:
    [v] = verdicts(AGGREGATES, ["foresight"])
    assert v.competitors == ("ehpa", "hpa")
    assert v.as_dict()["competitors"] == ["ehpa", "hpa"]
