"""The routing tree, as Alertmanager walks it; pure.

An alert enters at the root. Each child whose matchers accept it takes it (and its own
children are tried first); the walk stops at the first child that took it unless that child
says ``continue``. A route no child took keeps the alert itself. Children inherit the
receiver, ``group_by`` and timers they do not set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.notify.matchers import Matchers, format_matchers, matches, parse_all
from alerts.notify.model import Labels
from alerts.settings import ChildRoute, RouteSettings

ALL_LABELS = "..."


@dataclass(frozen=True)
class Route:
    """A compiled route; ``group_by`` is ``None`` for ``...`` (group by every label)."""

    key: str
    receiver: str
    matchers: Matchers
    continue_: bool
    group_by: frozenset[str] | None
    group_wait_ms: int
    group_interval_ms: int
    repeat_interval_ms: int
    routes: tuple[Route, ...] = ()

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with these labels (Alertmanager's ``Route.Match``)."""
        if not matches(self.matchers, labels):
            return []
        taken: list[Route] = []
        for child in self.routes:
            found = child.match(labels)
            taken.extend(found)
            if found and not child.continue_:
                break
        return taken or [self]

    def group_labels(self, labels: Labels) -> Labels:
        """The labels that name the alert's aggregation group on this route."""
        if self.group_by is None:
            return labels
        return tuple(p for p in labels if p[0] in self.group_by)

    def walk(self) -> list[Route]:
        """This route and every route below it."""
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _group_by(names: list[str]) -> frozenset[str] | None:
    return None if ALL_LABELS in names else frozenset(names)


def build_route(settings: RouteSettings) -> Route:
    """The compiled tree of the ``route`` settings (already validated)."""
    root = Route(
        key="{}",
        receiver=settings.receiver,
        matchers=(),
        continue_=False,
        group_by=_group_by(settings.group_by),
        group_wait_ms=_ms(settings.group_wait),
        group_interval_ms=_ms(settings.group_interval),
        repeat_interval_ms=_ms(settings.repeat_interval),
    )
    return _with_children(root, settings.routes)


def _with_children(parent: Route, children: list[ChildRoute]) -> Route:
    built = []
    for c in children:
        matchers = parse_all(c.matchers)
        route = Route(
            key=f"{parent.key}/{format_matchers(matchers)}",
            receiver=c.receiver if c.receiver is not None else parent.receiver,
            matchers=matchers,
            continue_=c.continue_,
            group_by=_group_by(c.group_by) if c.group_by is not None else parent.group_by,
            group_wait_ms=_ms(c.group_wait) if c.group_wait is not None else parent.group_wait_ms,
            group_interval_ms=(
                _ms(c.group_interval) if c.group_interval is not None else parent.group_interval_ms
            ),
            repeat_interval_ms=(
                _ms(c.repeat_interval)
                if c.repeat_interval is not None
                else parent.repeat_interval_ms
            ),
        )
        built.append(_with_children(route, c.routes))
    return Route(
        parent.key,
        parent.receiver,
        parent.matchers,
        parent.continue_,
        parent.group_by,
        parent.group_wait_ms,
        parent.group_interval_ms,
        parent.repeat_interval_ms,
        tuple(built),
    )
