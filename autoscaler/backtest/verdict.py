"""Whether a policy meets foresight's goal against the autoscalers it competes with.

The goal: fewer violating steps than every competitor's best setting (each one's setting with
the fewest violations), at a lower cost than the cheapest of those best settings; read more
strictly, also cheaper than the cheapest competitor setting of all. The competitors are the
HPA and the predictive peers (``hpa``, ``ehpa``, ``phpa-hw``, ``phpa-lin`` at any target);
``hpa-on-forecast`` is not one of them, since its metric is foresight's own forecast.
``foresight backtest`` and ``bench.scaling`` print these verdicts under their figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autoscaler.backtest.policies import is_foresight, split_target
from autoscaler.backtest.scoring import Aggregate

__all__ = ["COMPETITORS", "Verdict", "verdicts"]

COMPETITORS = frozenset({"hpa", "ehpa", "phpa-hw", "phpa-lin"})


@dataclass(frozen=True)
class Verdict:
    """One policy against the competitor settings it was replayed beside."""

    policy: str
    ours: Aggregate
    fewest: str  # the competitors' best setting with the fewest violations
    cheapest_best: str  # the cheapest of the competitors' best settings
    cheapest: str  # the cheapest competitor setting of all
    settings: Mapping[str, Aggregate]  # every competitor setting replayed, "family@T"

    @property
    def competitors(self) -> tuple[str, ...]:
        """The competitors replayed (families, e.g. ``hpa``)."""
        return tuple(sorted({name.partition("@")[0] for name in self.settings}))

    @property
    def fewer(self) -> bool:
        """Fewer violations than every competitor's best setting."""
        return self.ours.violation_pct < self.settings[self.fewest].violation_pct

    def cheaper(self, setting: str) -> bool:
        """Costs less than ``setting``."""
        return self.ours.cost_vs_oracle < self.settings[setting].cost_vs_oracle

    @property
    def met(self) -> bool:
        """The goal as worded: fewer violations, cheaper than the cheapest best setting."""
        return self.fewer and self.cheaper(self.cheapest_best)

    def line(self) -> str:
        """The verdict in one line; WORSE marks each half that fails."""

        def versus(what: str, name: str) -> str:
            mark = "better" if self.cheaper(name) else "WORSE"
            return f"vs {what} {name} {self.settings[name].cost_vs_oracle:.3f} ({mark})"

        few = self.settings[self.fewest]
        return (
            f"{self.policy}: viol {self.ours.violation_pct:.3f}% vs fewest of the competitors "
            f"{self.fewest} {few.violation_pct:.3f}% ({'better' if self.fewer else 'WORSE'}); "
            f"cost {self.ours.cost_vs_oracle:.3f} "
            f"{versus('the cheapest best setting', self.cheapest_best)}, "
            f"{versus('the cheapest setting of any', self.cheapest)}"
        )

    def as_dict(self) -> dict[str, object]:
        """The verdict for JSON output."""
        return {
            "policy": self.policy,
            "competitors": list(self.competitors),
            "met": self.met,
            "fewer_violations": self.fewer,
            "fewest": self.fewest,
            "cheaper_than_cheapest_best": self.cheaper(self.cheapest_best),
            "cheapest_best": self.cheapest_best,
            "cheaper_than_cheapest": self.cheaper(self.cheapest),
            "cheapest": self.cheapest,
        }


def verdicts(aggregates: Mapping[str, Aggregate], candidates: Sequence[str]) -> list[Verdict]:
    """A verdict per name in ``candidates`` on the competitor settings among ``aggregates``
    (named ``family@T``); none when no competitor was replayed."""
    settings: dict[str, Aggregate] = {}
    best: dict[str, str] = {}
    for name, a in aggregates.items():
        split = None if is_foresight(name) else split_target(name)
        if split is None or split[0] not in COMPETITORS:
            continue
        settings[name] = a
        known = best.get(split[0])
        if known is None or _safer(a) < _safer(settings[known]):
            best[split[0]] = name
    if not settings:
        return []
    fewest = min(best.values(), key=lambda n: _safer(settings[n]))
    cheapest_best = min(best.values(), key=lambda n: _cheaper(settings[n]))
    cheapest = min(settings, key=lambda n: _cheaper(settings[n]))
    return [
        Verdict(name, aggregates[name], fewest, cheapest_best, cheapest, settings)
        for name in candidates
    ]


# Ties (two settings at 0 % on a short trace, say) go to the cheaper setting, then to the one
# with fewer violations, so that the order the policies were named in decides nothing.
def _safer(a: Aggregate) -> tuple[float, float]:
    return a.violation_pct, a.cost_vs_oracle


def _cheaper(a: Aggregate) -> tuple[float, float]:
    return a.cost_vs_oracle, a.violation_pct
