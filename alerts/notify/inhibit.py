"""Inhibition, as Alertmanager does it; pure.

An alert matching a rule's target matchers is muted while another alert that matches the
source matchers is firing and has the same value of every ``equal`` label (a label absent
on both sides counts as equal: both are the empty string). An alert that matches both
sides cannot be muted by a source that also matches both sides, so no alert mutes itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts.notify.matchers import Matchers, matches, parse_all
from alerts.settings import InhibitRule


@dataclass(frozen=True)
class Inhibition:
    """A compiled inhibit rule."""

    source: Matchers
    target: Matchers
    equal: tuple[str, ...]

    def _equal(self, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
        return all(a.get(n, "") == b.get(n, "") for n in self.equal)

    def sources(self, firing: Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
        """The firing alerts that match the source side."""
        return [a for a in firing if matches(self.source, a)]

    def mutes(self, labels: Mapping[str, str], sources: Sequence[Mapping[str, str]]) -> bool:
        """Whether one of the source alerts mutes an alert with ``labels``."""
        if not matches(self.target, labels):
            return False
        two_sided = matches(self.source, labels)
        for src in sources:
            if two_sided and matches(self.target, src):
                continue
            if self._equal(src, labels):
                return True
        return False


def build_inhibitions(rules: Iterable[InhibitRule]) -> list[Inhibition]:
    """Compiled inhibit rules from the settings."""
    return [
        Inhibition(parse_all(r.source_matchers), parse_all(r.target_matchers), tuple(r.equal))
        for r in rules
    ]


class Inhibitor:
    """The rules against one snapshot of firing alerts (sources are filtered once)."""

    def __init__(self, rules: Sequence[Inhibition], firing: Sequence[Mapping[str, str]]) -> None:
        self._rules = [(r, r.sources(firing)) for r in rules]

    @property
    def idle(self) -> bool:
        """Whether no rule has a firing source, so that nothing is muted."""
        return not any(src for _, src in self._rules)

    def muted(self, labels: Mapping[str, str]) -> bool:
        """Whether any rule mutes an alert with ``labels``."""
        return any(src and r.mutes(labels, src) for r, src in self._rules)
