"""Running rule groups: evaluation on the clock, reload on change, state across restarts.

Each round evaluates due groups in file order, hands alerts to be sent to ``sink``
(the notifier, which queues them durably) and only then saves the alert state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from alerts.promql import Engine
from alerts.rules.errors import RuleFileErrors
from alerts.rules.group import EvalContext, GroupState, stagger_ms
from alerts.rules.loader import expand_paths, load_files
from alerts.rules.model import RuleSpec
from alerts.rules.persist import FILE, restore, save
from alerts.rules.state import Alert
from alerts.settings import RuleSettings
from collectors.clock import Clock

log = logging.getLogger(__name__)

Sink = Callable[[RuleSpec, Sequence[Alert]], None]


class RuleManager:
    """The live rule groups over one engine and store."""

    def __init__(
        self, settings: RuleSettings, ctx: EvalContext, clock: Clock, sink: Sink | None = None
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.clock = clock
        self.sink = sink
        self.groups: list[GroupState] = []
        self.last_error = ""
        self._digest = ""
        self._state_path = settings.state_dir / FILE
        self._interval_ms = round(settings.evaluation_interval_seconds * 1000)
        self._reload_requested = asyncio.Event()

    def _files_digest(self) -> str:
        h = hashlib.sha256()
        for p in expand_paths(self.settings.files):
            h.update(str(p).encode())
            try:
                h.update(p.read_bytes())
            except OSError:
                h.update(b"\0missing")
        return h.hexdigest()

    def reload(self) -> bool:
        """Load the rule files; on error keep the running rules and return False."""
        digest = self._files_digest()
        if digest == self._digest:
            return True
        try:
            specs = load_files(self.settings.files)
        except RuleFileErrors as e:
            self.last_error = str(e)
            log.error("rule files rejected, keeping the last good rules:\n%s", e)
            return False
        old = {g.spec.key: g for g in self.groups}
        fresh = [GroupState(s, self._interval_ms) for s in specs]
        for g in fresh:
            if g.spec.key in old:
                g.adopt(old[g.spec.key])
        if not self.groups:
            count = restore(self._state_path, fresh)
            if count:
                log.info("restored %d alerts from %s", count, self._state_path)
        self.groups = fresh
        self._digest = digest
        self.last_error = ""
        return True

    def evaluate_due(self, now_ms: int) -> int:
        """Evaluate every group whose time has come; returns how many ran."""
        ran = 0
        for g in self.groups:
            interval = g.interval_ms
            slot = now_ms - (now_ms - stagger_ms(g.spec.key, interval)) % interval
            if g.last_evaluation_ms >= slot:
                continue
            engine = self.ctx.engine
            step_s = interval / 1000
            if engine.settings.default_subquery_step_seconds != step_s:
                engine = Engine(
                    engine.querier,
                    engine.settings.model_copy(update={"default_subquery_step_seconds": step_s}),
                )
            ctx = EvalContext(
                engine,
                self.ctx.appender,
                self.ctx.external_labels,
                self.ctx.external_url,
                self.ctx.resend_delay_ms,
            )
            for rule, alerts in g.evaluate(ctx, slot):
                if self.sink is not None:
                    self.sink(rule, alerts)
            ran += 1
        if ran:
            save(self._state_path, self.groups)
        return ran

    def request_reload(self) -> None:
        """Ask the running loop to reload (SIGHUP)."""
        self._digest = ""
        self._reload_requested.set()

    async def run(self) -> None:
        """Evaluate on the clock forever, reloading on change and on SIGHUP."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        except (NotImplementedError, RuntimeError, ValueError):
            # No loop signal handlers outside the main thread (tests, embedding): file
            # changes still trigger reloads.
            log.debug("SIGHUP reload is not available in this thread")
        self.reload()
        next_check = self.clock.now() + self.settings.reload_check_seconds
        while True:
            now = self.clock.now()
            if now >= next_check or self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
                next_check = now + self.settings.reload_check_seconds
            self.evaluate_due(round(now * 1000))
            await self.clock.sleep(min(1.0, self.settings.reload_check_seconds))


def alerts_for_notifier(
    rule: RuleSpec, alerts: Sequence[Alert], external_labels: dict[str, str], external_url: str
) -> list[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], int, int, str]]:
    """Prometheus' ``SendAlerts``: startsAt = firedAt, endsAt = resolvedAt or validUntil."""
    from urllib.parse import quote_plus  # noqa: PLC0415

    url = f"{external_url}/graph?g0.expr={quote_plus(rule.expr)}&g0.tab=1"
    out = []
    for a in alerts:
        labels = dict(a.labels)
        for k, v in external_labels.items():
            labels.setdefault(k, v)
        ends = a.resolved_at or a.valid_until
        out.append((tuple(sorted(labels.items())), a.annotations, a.fired_at, ends, url))
    return out


def watch_paths(settings: RuleSettings) -> list[Path]:
    """The files a reload reads."""
    return expand_paths(settings.files)
