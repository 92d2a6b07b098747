"""The account of a chaos run: what should have happened, what did, and what was lost.

Pure functions over what the run observed (virtual seconds throughout):

- **notifications**: each episode of a chaos rule (:data:`bench.chaos_plan.CHAOS_RULES`)
  that the service fired (``/api/v1/alerts`` showed it firing, or a notification for it
  arrived) must reach the receiver once firing and once resolved. *Lost*: expected and never
  accepted. Episodes the service was up long enough to fire but did not are counted apart
  (*missed*): evaluations that fell behind accelerated time, not a loss of the pipeline.
  *Duplicated*: the same content accepted under two idempotency keys (a receiver cannot drop
  those). A redelivery with the same key is at-least-once delivery working as documented,
  counted apart.
- **``for`` clocks restarted**: an episode seen with two ``activeAt`` times, or delivered with
  two ``startsAt`` (the alert state was lost across a restart).
- **scaling**: a replica count written outside the autoscaler's bounds, or while every
  kubelet failed for longer than ``stale_after_seconds``.
- **samples**: collection cycles (seen as requests to one kubelet) whose sample of a series
  written every cycle is not in the store afterwards, beyond the unflushed
  ``flush_interval_seconds`` before a kill.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.chaos_plan import CHAOS_RULES, RuleShape, Window
from bench.chaos_receiver import Arrival

__all__ = ["Account", "Incarnation", "Observed", "ScaleWrite", "Timing", "account"]


@dataclass(frozen=True)
class Timing:
    """The service's timers, which bound what counts as late or lost."""

    scrape_s: float
    flush_s: float
    eval_s: float
    group_wait_s: float
    group_interval_s: float
    stale_after_s: float
    slack_s: float  # scheduling slack of accelerated time on a shared machine


@dataclass
class Incarnation:
    """One foresight process: started, ready (``/readyz`` 200), ended and how."""

    started: float
    ready: float | None = None
    ended: float | None = None
    how: str = ""  # "kill", "exit N", "stop"
    started_real: float = 0.0
    ready_real: float | None = None
    ended_real: float | None = None

    def describe(self, start: float) -> dict[str, Any]:
        """Offsets from ``start`` in virtual seconds."""

        def off(t: float | None) -> float | None:
            return None if t is None else round(t - start, 1)

        return {
            "started_s": off(self.started),
            "ready_s": off(self.ready),
            "ended_s": off(self.ended),
            "how": self.how,
        }


@dataclass(frozen=True)
class ScaleWrite:
    """A change of a Deployment's ``spec.replicas``."""

    at: float
    name: str
    old: int
    new: int


@dataclass
class Observed:
    """Everything the run saw."""

    start: float
    end: float
    incarnations: list[Incarnation]
    arrivals: list[Arrival]
    active_at: dict[tuple[str, int], set[float]]
    seen_firing: set[tuple[str, int]]
    scale_writes: list[ScaleWrite]
    bounds: dict[str, tuple[int, int]]
    stale: list[Window]
    samples: list[float]  # timestamps of the reference series
    scrapes: list[float]  # requests to the reference kubelet
    pending_at_end: int = 0
    dead_lettered: int = 0


@dataclass
class Account:
    """The figures, in the order of the table."""

    lines: dict[str, float | int] = field(default_factory=dict)
    loss_lines: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def losses(self) -> dict[str, float | int]:
        return {k: self.lines[k] for k in self.loss_lines}


def _episode(rule: RuleShape, t: float) -> int:
    return math.floor(t / rule.period)


def _parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _up(incarnations: Sequence[Incarnation], t: float, end: float) -> bool:
    for inc in incarnations:
        if inc.ready is not None and inc.ready <= t < (inc.ended if inc.ended is not None else end):
            return True
    return False


def _grid_after(t: float, step: float, phase: float = 0.0) -> float:
    return math.ceil((t - phase) / step) * step + phase


def _phase(obs: Observed, step: float) -> float:
    """Where the chaos group's evaluation grid sits (groups are staggered in their interval),
    from the ``activeAt`` times seen."""
    seen = [t % step for times in obs.active_at.values() for t in times]
    return statistics.median(seen) if seen else 0.0


def expected_episodes(
    obs: Observed, timing: Timing, margin: float
) -> dict[tuple[str, int], tuple[float, float]]:
    """Episodes the service must notify: ``(rule, k) -> (first evaluation, firing time)``.

    The first evaluation is the first grid time in the episode at which the service was up;
    it fires at the first grid time ``for`` later at which it was up, before the episode ends.
    ``margin`` keeps the judgement off the edges of up-windows and of the run.
    """
    out: dict[tuple[str, int], tuple[float, float]] = {}
    step = timing.eval_s
    phase = _phase(obs, step)
    for rule in CHAOS_RULES:
        for k in range(_episode(rule, obs.start), _episode(rule, obs.end) + 1):
            begin, finish = max(k * rule.period, obs.start), k * rule.period + rule.window
            t = _grid_after(begin, step, phase)
            first = None
            while t < finish - margin:
                if _up(obs.incarnations, t - margin, obs.end) and _up(
                    obs.incarnations, t + margin, obs.end
                ):
                    first = t
                    break
                t += step
            if first is None:
                continue
            t = _grid_after(first + rule.for_s, step, phase)
            while t < finish - margin:
                if _up(obs.incarnations, t - margin, obs.end) and _up(
                    obs.incarnations, t + margin, obs.end
                ):
                    out[(rule.name, k)] = (first, t)
                    break
                t += step
    return out


def account(obs: Observed, timing: Timing) -> Account:
    """Every line of the account."""
    acc = Account()
    margin = timing.eval_s + timing.slack_s
    rules = {r.name: r for r in CHAOS_RULES}
    expected = expected_episodes(obs, timing, margin)
    # What was delivered, by chaos episode and status, and by content for every alert.
    keys_by_episode: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    keys_by_content: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    fired_at: dict[tuple[str, int], set[float]] = defaultdict(set)
    seen_keys: set[str] = set()
    redelivered = 0
    for a in obs.arrivals:
        if a.key in seen_keys:
            redelivered += 1
            continue
        seen_keys.add(a.key)
        keys_by_content[(a.status, tuple(sorted(a.alerts)))].add(a.key)
        for name, status, starts, _ in a.alerts:
            rule = rules.get(name)
            if rule is None:
                continue
            t = _parse(starts)
            k = _episode(rule, t)
            keys_by_episode[(name, k, status)].add(a.key)
            fired_at[(name, k)].add(t)
    deadline = obs.end - timing.group_interval_s - timing.group_wait_s - 4 * margin
    fired = obs.seen_firing | set(fired_at)
    want: set[tuple[str, int, str]] = set()
    for name, k in fired:
        rule = rules[name]
        want.add((name, k, "firing"))
        if k * rule.period + rule.window <= deadline:
            want.add((name, k, "resolved"))
    missed = sorted(
        ep
        for ep, (_, fires) in expected.items()
        if ep not in fired and fires + timing.group_wait_s <= deadline
    )
    delivered = {w for w in want if keys_by_episode.get(w)}
    lost = sorted(want - delivered)
    duplicated = sum(len(keys) - 1 for keys in keys_by_content.values())
    arrival_at = {a.key: a.at for a in obs.arrivals}
    duplicates = [
        {
            "status": content[0],
            "alerts": [list(x) for x in content[1]],
            "accepted_at_s": sorted(round(arrival_at[k] - obs.start, 1) for k in keys),
        }
        for content, keys in keys_by_content.items()
        if len(keys) > 1
    ]
    restarted = _restarted_clocks(obs, fired_at)
    outside, stale = _scaling(obs, timing)
    lost_samples, cycles, gaps = _lost_samples(obs, timing)
    kills = [i for i in obs.incarnations if i.how == "kill"]
    recover_v, recover_r = _recoveries(obs.incarnations)
    crashes = [i.how for i in obs.incarnations if i.how.startswith("exit")]
    acc.lines = {
        "kills (kill -9)": len(kills),
        "unplanned exits of foresight": len(crashes),
        "notifications expected": len(want),
        "notifications delivered": len(delivered),
        "notifications lost": len(lost),
        "notifications duplicated (new key)": duplicated,
        "redeliveries with the same key": redelivered,
        "notifications accepted in all": len(seen_keys),
        "left in the outbox at the end": obs.pending_at_end,
        "dead-lettered": obs.dead_lettered,
        "`for` clocks restarted": len(restarted),
        "episodes fired later than due (evaluation lag)": _late_firings(expected, fired_at, margin),
        "episodes not fired though up (evaluation lag)": len(missed),
        "scale writes": len(obs.scale_writes),
        "scale writes outside min/max": outside,
        "scale writes during stale data": stale,
        "samples lost beyond one flush interval": lost_samples,
        "collection cycles checked": cycles,
        "recovery after a kill, median s (virtual)": _median(recover_v),
        "recovery after a kill, max s (virtual)": round(max(recover_v, default=0.0), 1),
        "recovery after a kill, median s (real)": _median(recover_r),
        "recovery after a kill, max s (real)": round(max(recover_r, default=0.0), 2),
    }
    acc.loss_lines = (
        "notifications lost",
        "notifications duplicated (new key)",
        "left in the outbox at the end",
        "dead-lettered",
        "`for` clocks restarted",
        "scale writes outside min/max",
        "scale writes during stale data",
        "samples lost beyond one flush interval",
    )
    acc.details = {
        "lost": [list(x) for x in lost],
        "for_restarted": [
            {
                "episode": list(ep),
                "expected_active_s": _off(expected.get(ep, (None,))[0], obs.start),
                "expected_firing_s": _off(expected.get(ep, (None, None))[1], obs.start),
                "active_at_seen_s": sorted(_off(t, obs.start) for t in obs.active_at.get(ep, ())),
                "fired_at_delivered_s": sorted(_off(t, obs.start) for t in fired_at.get(ep, ())),
            }
            for ep in restarted
        ],
        "unplanned_exits": crashes,
        "duplicates": duplicates,
        "missed": [list(x) for x in missed],
        "recovery_virtual_s": [round(x, 1) for x in recover_v],
        "recovery_real_s": [round(x, 2) for x in recover_r],
        "sample_gaps": gaps,
        "incarnations": [i.describe(obs.start) for i in obs.incarnations],
    }
    return acc


def _off(t: float | None, start: float) -> float | None:
    return None if t is None else round(t - start, 1)


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else 0.0


def _recoveries(incs: Sequence[Incarnation]) -> tuple[list[float], list[float]]:
    """Virtual and real seconds from each kill to the next ``/readyz`` 200."""
    virtual, real = [], []
    for i, inc in enumerate(incs):
        if inc.how != "kill" or inc.ended is None:
            continue
        nxt = next((n for n in incs[i + 1 :] if n.ready is not None), None)
        if nxt is None or nxt.ready is None:
            continue
        virtual.append(nxt.ready - inc.ended)
        if nxt.ready_real is not None and inc.ended_real is not None:
            real.append(nxt.ready_real - inc.ended_real)
    return virtual, real


def _restarted_clocks(
    obs: Observed, fired_at: dict[tuple[str, int], set[float]]
) -> list[tuple[str, int]]:
    """Episodes whose ``activeAt`` or delivered ``startsAt`` moved."""
    bad = set()
    for ep, seen in obs.active_at.items():
        if len(seen) > 1:
            bad.add(ep)
    for ep, fired in fired_at.items():
        if len(fired) > 1:
            bad.add(ep)
    return sorted(bad)


def _late_firings(
    expected: dict[tuple[str, int], tuple[float, float]],
    fired_at: dict[tuple[str, int], set[float]],
    margin: float,
) -> int:
    """Episodes that went firing later than due though their ``activeAt`` held: evaluations
    that fell behind accelerated time, not lost state."""
    return sum(
        1
        for ep, fired in fired_at.items()
        if ep in expected and min(fired) > expected[ep][1] + margin
    )


def _scaling(obs: Observed, timing: Timing) -> tuple[int, int]:
    outside = stale = 0
    for w in obs.scale_writes:
        bounds = obs.bounds.get(w.name)
        if bounds is None:
            continue
        lo, hi = bounds
        if not lo <= w.new <= hi:
            outside += 1
        if any(
            s.start + timing.stale_after_s + timing.scrape_s + timing.slack_s <= w.at < s.end
            for s in obs.stale
        ):
            stale += 1
    return outside, stale


def _lost_samples(obs: Observed, timing: Timing) -> tuple[int, int, list[dict[str, float]]]:
    """Collection cycles whose sample was not stored though it should have been, how many
    cycles were judged, and the lost ones (offsets from the start).

    A cycle starts with the request to the reference kubelet and writes the reference sample
    before the next cycle's request. When that next request came at least one flush interval
    (plus slack) before the process ended, the sample was due on disk.
    """
    ts = sorted(obs.samples)
    lost: list[dict[str, float]] = []
    judged = 0
    for inc in obs.incarnations:
        end = inc.ended if inc.ended is not None else obs.end
        allowed = 0.0 if inc.how == "stop" else timing.flush_s + timing.slack_s
        mine = [r for r in obs.scrapes if inc.started <= r < end]
        for a, b in itertools.pairwise(mine):
            if b > end - allowed:
                break
            judged += 1
            i = bisect.bisect_left(ts, a)
            if i < len(ts) and ts[i] <= b:
                continue
            lost.append({"cycle_s": round(a - obs.start, 1), "next_s": round(b - obs.start, 1)})
    return len(lost), judged, lost
