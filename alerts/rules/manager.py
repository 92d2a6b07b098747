"""Running rule groups: evaluation on a time grid, reload on change, state across restarts.

Rule files load one by one: a bad file is reported (:attr:`RuleManager.file_errors`) and keeps
its last good version, while the other files and the built-ins run.

Each round evaluates due groups in file order, hands alerts to be sent to ``sink`` (the
notifier), calls ``before_save`` (where the notifier persists what it took) and only then
saves the alert state, so that a crash between the two re-sends rather than forgets.

The service evaluates off the event loop (:meth:`RuleManager.evaluate_apart` in a thread)
while the loop serves ``/api/v1/alerts`` and ``/metrics`` from :attr:`RuleManager.groups`.
So that those readers never see a group half-evaluated, the thread steps a working copy of
the group's alerts and statuses, and the loop swaps the copy in (:meth:`RuleManager.install`)
before it hands the alerts to the sink: readers see a group as of its last round or of this
one. Evaluation itself only reads the store and appends to it (recorded series, ``ALERTS``),
which the store allows from any thread.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from alerts.builtin import builtin_groups
from alerts.notify.model import NotifyAlert
from alerts.rules.errors import RuleFileErrors
from alerts.rules.group import EvalContext, GroupState, stagger_ms
from alerts.rules.loader import expand_paths, load_file
from alerts.rules.model import GroupSpec, RuleSpec
from alerts.rules.persist import FILE, StateLog
from alerts.rules.state import Alert
from alerts.settings import RuleSettings
from promql import Engine

log = logging.getLogger(__name__)

Sink = Callable[[RuleSpec, Sequence[Alert]], None]
Sends = list[tuple[RuleSpec, list[Alert]]]


@dataclass(frozen=True)
class Evaluated:
    """A group evaluated apart: the group it was copied from, the stepped copy, and the
    alerts to hand to the sink once the copy is installed."""

    original: GroupState
    group: GroupState
    sends: Sends


def _working_copy(g: GroupState) -> GroupState:
    """What an evaluation may change, copied; the rest shared. Alerts and rule statuses
    are what readers look at: the alert dicts are copied, not the alerts, which the state
    machine replaces rather than changes (copy on write: a round copies the few alerts it
    changes, not the tens of thousands a cluster-wide incident keeps active). Rule outputs
    (the series last written), the template cache and the subexpression values kept for
    the next evaluation are touched only by evaluations, which run one at a time."""
    work = copy.copy(g)
    work.alerts = [dict(alerts) for alerts in g.alerts]
    work.status = [copy.copy(st) for st in g.status]
    return work


class RuleManager:
    """The live rule groups over one engine and store."""

    def __init__(
        self,
        settings: RuleSettings,
        ctx: EvalContext,
        sink: Sink | None = None,
        before_save: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.sink = sink
        self.before_save = before_save
        self.groups: list[GroupState] = []
        self.file_errors: dict[str, RuleFileErrors] = {}
        self.last_error = ""
        self._good: dict[str, list[GroupSpec]] = {}
        self._logged: dict[str, str] = {}
        self._loaded = False
        self._digest = ""
        self._state_path = settings.state_dir / FILE
        self._state = StateLog(self._state_path)
        self._interval_ms = round(settings.evaluation_interval_seconds * 1000)
        self._engines: dict[int, Engine] = {}
        self._save_failing = False

    def _files_digest(self) -> str:
        h = hashlib.sha256()
        for p in expand_paths(self.settings.files):
            h.update(str(p).encode())
            try:
                h.update(p.read_bytes())
            except OSError:
                h.update(b"\0missing")
        return h.hexdigest()

    def reload(self, force: bool = False) -> bool:
        """Load the rule files if they changed (or ``force``); False while any file is bad.

        Each file stands alone: a bad one is reported in :attr:`file_errors` and keeps its last
        good version running (none, if it never loaded), while the good files and the
        built-ins load. Prometheus refuses the whole configuration instead; one typo in one
        team's file must not stop every other alert. Each error is logged once per change.
        """
        digest = self._files_digest()
        if digest == self._digest and not force:
            return not self.file_errors
        good: dict[str, list[GroupSpec]] = {}
        errors: dict[str, RuleFileErrors] = {}
        for path in expand_paths(self.settings.files):
            key = str(path)
            try:
                good[key] = load_file(path)
            except RuleFileErrors as e:
                errors[key] = e
                if key in self._good:
                    good[key] = self._good[key]
        self._report(errors, good)
        specs = [g for groups in good.values() for g in groups]
        if self.settings.builtin:
            specs = builtin_groups(self.settings.disabled_builtin, specs) + specs
        old = {g.spec.key: g for g in self.groups}
        fresh = [GroupState(s, self._interval_ms) for s in specs]
        for g in fresh:
            if g.spec.key in old:
                g.adopt(old[g.spec.key])
        if not self._loaded:
            count = self._state.restore(fresh)
            if count:
                log.info("restored %d alerts from %s", count, self._state_path)
            self._loaded = True
        self.groups = fresh
        self._good = good
        self.file_errors = errors
        self.last_error = "\n".join(str(e) for e in errors.values())
        self._digest = digest
        log.info("loaded %d rule groups", len(fresh))
        return not errors

    def _report(self, errors: dict[str, RuleFileErrors], good: dict[str, list[GroupSpec]]) -> None:
        # A file's error is logged when it appears or changes, not at every reload check.
        for key, e in errors.items():
            text = str(e)
            if self._logged.get(key) == text:
                continue
            self._logged[key] = text
            kept = "its last good version keeps running" if key in good else "none of it runs"
            log.error("rule file %s rejected, %s:\n%s", key, kept, text)
        for key in [k for k in self._logged if k not in errors]:
            del self._logged[key]
            if key in good:
                log.info("rule file %s loads again", key)

    def stagger_key(self, g: GroupState) -> str:
        """What ``g``'s offset inside its interval is hashed from: Prometheus' group key
        (``file;name``, the file's path as loaded), so that a group keeps its offset across
        restarts and reloads."""
        return g.spec.key

    def slot(self, g: GroupState, now_ms: int) -> int:
        """The latest evaluation time of ``g``'s grid at or before ``now_ms``."""
        interval = g.interval_ms
        return now_ms - (now_ms - stagger_ms(self.stagger_key(g), interval)) % interval

    def due(self, now_ms: int) -> list[tuple[GroupState, int]]:
        """Groups whose time has come, with the time to evaluate them at."""
        out = []
        for g in self.groups:
            slot = self.slot(g, now_ms)
            if g.last_evaluation_ms < slot:
                out.append((g, slot))
        return out

    def next_due_ms(self, now_ms: int) -> int | None:
        """When the next group evaluation is due."""
        return min((self.slot(g, now_ms) + g.interval_ms for g in self.groups), default=None)

    def _engine(self, interval_ms: int) -> Engine:
        # Subqueries without a step use the group's interval, as in Prometheus.
        engine = self.ctx.engine
        step_s = interval_ms / 1000
        if engine.settings.default_subquery_step_seconds == step_s:
            return engine
        cached = self._engines.get(interval_ms)
        if cached is None or cached.querier is not engine.querier:
            settings = engine.settings.model_copy(update={"default_subquery_step_seconds": step_s})
            cached = self._engines[interval_ms] = engine.with_settings(settings)
        return cached

    def evaluate(self, g: GroupState, slot: int) -> None:
        """Evaluate one group at ``slot`` and hand its alerts to the sink."""
        self._hand_over(self._step(g, slot))

    def evaluate_apart(self, g: GroupState, slot: int) -> Evaluated:
        """Evaluate a working copy of ``g`` at ``slot``, for any thread: ``g`` and what
        readers see stay as they were until :meth:`install`."""
        return Evaluated(g, *self._step(_working_copy(g), slot))

    def install(self, done: Evaluated) -> None:
        """Put an evaluated copy in its group's place and hand its alerts to the sink (on the
        thread that owns :attr:`groups`). A copy of a group that a reload replaced meanwhile
        is dropped; the reloaded group is evaluated at its next slot."""
        for i, g in enumerate(self.groups):
            if g is done.original:
                self.groups[i] = done.group
                self._hand_over((done.group, done.sends))
                return

    def _step(self, g: GroupState, slot: int) -> tuple[GroupState, Sends]:
        ctx = EvalContext(
            self._engine(g.interval_ms),
            self.ctx.appender,
            self.ctx.external_labels,
            self.ctx.external_url,
            self.ctx.resend_delay_ms,
        )
        started = time.perf_counter()
        sends = g.evaluate(ctx, slot)
        g.last_duration_s = time.perf_counter() - started
        return g, sends

    def _hand_over(self, evaluated: tuple[GroupState, Sends]) -> None:
        for rule, alerts in evaluated[1]:
            if self.sink is not None:
                self.sink(rule, alerts)

    def commit(self) -> None:
        """Persist after a round: the notifier first, then the alert state."""
        self.commit_notifier()
        self.save_state(self.groups)

    def commit_notifier(self) -> None:
        """The first half of :meth:`commit`: the notifier persists what it took."""
        if self.before_save is not None:
            self.before_save()

    def save_state(self, groups: Sequence[GroupState]) -> None:
        """The second half of :meth:`commit`: the alert state of ``groups`` (a list taken
        from :attr:`groups` on its owner's thread; this may run in another).

        A disk that refuses the write (full, failing) is logged once and the state kept in
        memory: the next round writes it again, and alerting goes on meanwhile."""
        try:
            self._state.save(groups)
        except OSError as e:
            if not self._save_failing:
                log.error(
                    "cannot save the alert state to %s (%s); alerting goes on, and a restart "
                    "before the disk takes it again restarts `for` clocks",
                    self._state_path,
                    e.strerror or e,
                )
            self._save_failing = True
            return
        if self._save_failing:
            self._save_failing = False
            log.warning("the alert state is saved to %s again", self._state_path)

    def close(self) -> None:
        """Close the alert state file (a later save opens it again)."""
        self._state.close()

    def evaluate_due(self, now_ms: int) -> int:
        """Evaluate every group whose time has come; returns how many ran."""
        due = self.due(now_ms)
        for g, slot in due:
            self.evaluate(g, slot)
        if due:
            self.commit()
        return len(due)


def alerts_for_notifier(
    rule: RuleSpec, alerts: Sequence[Alert], external_labels: dict[str, str], external_url: str
) -> list[NotifyAlert]:
    """Prometheus' ``SendAlerts``: startsAt = firedAt, endsAt = resolvedAt or validUntil.

    ``generatorURL`` is this rule in foresight's ``/api/v1/rules`` (its query, state and
    alerts): foresight serves no ``/graph`` page, where Prometheus' link would point."""
    query = urlencode({"type": "alert", "rule_name[]": rule.name})
    url = f"{external_url}/api/v1/rules?{query}"
    out = []
    for a in alerts:
        # An alert's labels are sorted already (see state.step); the same tuple round after
        # round lets the notifier find its fingerprint again without hashing.
        labels = a.labels
        if external_labels:
            lb = dict(labels)
            for k, v in external_labels.items():
                lb.setdefault(k, v)
            labels = tuple(sorted(lb.items()))
        ends = a.resolved_at or a.valid_until
        out.append(NotifyAlert(labels, a.annotations, a.fired_at, ends, url))
    return out


def watch_paths(settings: RuleSettings) -> list[Path]:
    """The files a reload reads."""
    return expand_paths(settings.files)
