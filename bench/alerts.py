"""Benchmark of the alert engine: ``python -m bench.alerts [--nodes N] [--scrapes N]``.

- one evaluation round of the kube-prometheus rule groups as the service runs them (state
  machine, ``ALERTS`` series, recording rules feeding later rules) over the synthetic cluster
  of :mod:`bench.promql`, whose store the rules have been evaluated over since its first scrape;
- notification throughput: alerts grouped into aggregation groups, flushed into the outbox
  and delivered to a webhook receiver on loopback;
- outbox recovery: reopening an outbox holding 10,000 queued notifications, and draining it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from alerts.notify.delivery import Delivery
from alerts.notify.dispatch import Dispatcher
from alerts.notify.model import NotifyAlert
from alerts.notify.outbox import Outbox
from alerts.notify.silences import Silences
from alerts.notify.targets import Target, build_targets
from alerts.rules.manager import RuleManager, alerts_for_notifier
from alerts.rules.persist import FILE, REWRITE_AFTER_BYTES, StateLog
from alerts.rules.state import AlertState
from alerts.settings import NotifySettings
from bench.promql import RULES, SCRAPES, Cluster, Round, ServiceRules, status_kib
from promql import Engine, QueryResult
from runtime.clock import RealClock

T0 = 1_767_225_600_000


class _QueryTime:
    """CPU seconds the rule rounds spend in ``Engine.instant`` (the queries; the rest of a
    round is the rule engine's own: templates, alert state, writing back, the state file),
    measured by the thread that runs them."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._instant = Engine.instant

    def __enter__(self) -> _QueryTime:
        instant = self._instant

        def timed(engine: Engine, *args: Any, **kwargs: Any) -> QueryResult:
            start = time.thread_time()
            try:
                return instant(engine, *args, **kwargs)
            finally:
                self.cpu += time.thread_time() - start

        Engine.instant = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        Engine.instant = self._instant  # type: ignore[method-assign]


class _SplitRules(ServiceRules):
    """:class:`ServiceRules` noting each round's CPU seconds in queries."""

    def __init__(self, clock: _QueryTime, *args: Any) -> None:
        self.query_clock = clock
        self.query_cpu: dict[int, float] = {}
        super().__init__(*args)

    def round(self, at: int) -> Round:
        before = self.query_clock.cpu
        done = super().round(at)
        self.query_cpu[id(done)] = self.query_clock.cpu - before
        return done


def evaluation_round(
    nodes: int, pods_per_node: int, rounds: int, tmp: Path, scrapes: int = SCRAPES
) -> list[tuple[str, str]]:
    """Rows of the evaluation part."""
    cluster = Cluster(nodes, pods_per_node)
    with _QueryTime() as clock:
        service = _SplitRules(clock, RULES, cluster, tmp / "rules", scrapes)
        state = service.manager.settings.state_dir / FILE
        steady, grown = [], []
        for _ in range(rounds):
            at = service.next_full_round()
            before = state.stat().st_size
            steady.append(service.round(at))
            grown.append(state.stat().st_size - before)
    first = service.creation_round()
    firing, pending, failing = service.alert_counts()
    groups = service.manager.groups
    rules = sum(len(g.spec.rules) for g in groups)
    state_file = state_rows(service.manager, grown, tmp / "state")
    notifier = notifier_rows(service.manager, tmp / "notify")
    service.store.close()
    built = f"{service.built_s:.0f} s to build, {service.history_s:.0f} s of it rule rounds"
    resident = status_kib("VmRSS")
    if resident is not None:
        built += f", {resident / 2**20:.1f} GiB resident"
    times = [r.seconds for r in steady]
    cpu = [r.cpu_seconds for r in steady]
    # The round that also writes the state file's base again (every ~40) apart.
    plain = [c for c, g in zip(cpu, grown, strict=True) if g >= 0]
    each = ", ".join(f"{r.seconds:.2f}/{r.cpu_seconds:.2f}" for r in steady)
    queries = ", ".join(f"{service.query_cpu[id(r)]:.2f}" for r in steady)
    peaks = [r.peak_rise_bytes for r in steady if r.peak_rise_bytes is not None]
    return [
        ("cluster", f"{nodes:,} nodes, {len(cluster.pods):,} pods ({built})"),
        ("rule groups / rules", f"{len(groups)} / {rules}"),
        (
            "evaluation round, steady (best)",
            f"{min(times):.2f} s, {min(cpu):.2f} CPU s   "
            f"(rounds, s/CPU s: {each}; "
            f"peak memory +{max(peaks, default=0) / 2**20:,.0f} MiB)",
        ),
        (
            "evaluation round, steady (mean)",
            f"{sum(cpu) / len(cpu):.2f} CPU s; "
            + (
                f"{sum(plain) / len(plain):.2f} without the round that rewrote the state "
                "file's base"
                if plain and len(plain) < len(cpu)
                else "no round rewrote the state file's base"
            ),
        ),
        ("  of which queries, CPU s", queries),
        (
            "evaluation round, first",
            f"{first.seconds:.2f} s, {first.cpu_seconds:.2f} CPU s   "
            f"({first.alerts_added:,} alerts added; "
            f"{service.query_cpu[id(first)]:.2f} CPU s of queries; "
            f"peak memory +{(first.peak_rise_bytes or 0) / 2**20:,.0f} MiB)",
        ),
        (
            "alerts after the rounds",
            f"{firing:,} firing, {pending:,} pending ({failing} rules failing)",
        ),
        *state_file,
        *notifier,
    ]


def state_rows(manager: RuleManager, grown: list[int], tmp: Path) -> list[tuple[str, str]]:
    """What the alert state file costs: each steady round appends its changes (``grown``:
    the bytes it added, negative where the round wrote a new base instead); once they
    outgrow the base, a round writes the whole state again, timed here in CPU seconds."""
    log = StateLog(tmp / FILE)
    start = time.process_time()
    log.save(manager.groups)  # the first save of a log writes a base
    cpu = time.process_time() - start
    log.close()
    base = (tmp / FILE).stat().st_size
    appended = [g for g in grown if g > 0]
    each = max(appended, default=0)
    every = max(base, REWRITE_AFTER_BYTES) / each if each else float("inf")
    rewrites = sum(g < 0 for g in grown)
    return [
        (
            "alert state file, a round's changes",
            f"{', '.join(f'{g / 1e3:,.0f}' for g in grown)} kB appended "
            f"({rewrites} of the rounds rewrote the base)",
        ),
        (
            "alert state file, base rewrite",
            f"{base / 1e6:.1f} MB in {cpu:.2f} CPU s, every ~{every:.0f} rounds",
        ),
    ]


def notifier_rows(manager: RuleManager, tmp: Path) -> list[tuple[str, str]]:
    """What the service's notifier does with the rounds' alerts, in CPU seconds: a round
    sends every firing alert when it is due again (every ``resend_delay``, so all of them
    at once after a cluster-wide incident), the sink puts them into the dispatcher, which
    saves its state before the alert state is saved; the first flush of their groups
    queues the notifications."""
    settings = _settings("http://127.0.0.1:9/hook")
    outbox = Outbox(tmp)
    dispatcher = Dispatcher(settings, outbox, Silences(tmp, 1), tmp)
    active = [
        (rule, [a for a in alerts.values() if a.state is AlertState.FIRING])
        for g in manager.groups
        for rule, alerts in zip(g.spec.rules, g.alerts, strict=True)
    ]
    at = max(g.last_evaluation_ms for g in manager.groups)
    cpu: list[float] = []
    for k in range(3):
        start = time.process_time()
        for rule, alerts in active:
            if alerts:
                dispatcher.put(alerts_for_notifier(rule, alerts, {}, ""), at + k)
        dispatcher.save()
        cpu.append(time.process_time() - start)
    start = time.process_time()
    queued = dispatcher.flush(at + 3)  # group_wait is 0
    flushed = time.process_time() - start
    outbox.close()
    sent = sum(len(alerts) for _, alerts in active)
    return [
        (
            "notifier, every firing alert sent",
            f"{sent:,} alerts: {cpu[0]:.2f} CPU s the first time, then "
            f"{min(cpu[1:]):.2f} (put and state saved)",
        ),
        ("notifier, first flush", f"{queued:,} notifications queued in {flushed:.2f} CPU s"),
    ]


class _Receiver:
    def __init__(self) -> None:
        self.count = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        return web.Response()


async def _serve(receiver: _Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook"


def _settings(url: str) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "receivers": [{"name": "hook", "webhook_configs": [{"url": url}]}],
            "route": {"receiver": "hook", "group_by": ["alertname", "namespace"], "group_wait": 0},
        }
    )


async def _drain(delivery: Delivery, outbox: Outbox) -> float:
    start = time.perf_counter()
    task = asyncio.create_task(delivery.run())
    while outbox.pending:  # noqa: ASYNC110 - the outbox offers no event to wait on
        await asyncio.sleep(0.005)
    took = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return took


async def throughput(groups: int, per_group: int, tmp: Path) -> list[tuple[str, str]]:
    """Rows of the delivery part."""
    receiver = _Receiver()
    runner, url = await _serve(receiver)
    settings = _settings(url)
    outbox = Outbox(tmp / "throughput")
    dispatcher = Dispatcher(settings, outbox, Silences(tmp, 1), tmp / "throughput")
    alerts = [
        NotifyAlert(
            (("alertname", f"Alert{g % 50}"), ("namespace", f"ns-{g}"), ("pod", f"pod-{i}")),
            (("summary", "something is wrong with this pod and has been for a while"),),
            T0,
            T0 + 3_600_000,
        )
        for g in range(groups)
        for i in range(per_group)
    ]
    start = time.perf_counter()
    dispatcher.put(alerts, T0 + 1)
    queued = dispatcher.flush(T0 + 1)
    grouped = time.perf_counter() - start
    delivery = Delivery(dispatcher.targets, outbox, RealClock(), settings.delivery)
    took = await _drain(delivery, outbox)
    await delivery.aclose()
    outbox.close()
    await runner.cleanup()
    return [
        (
            "alerts → notifications",
            f"{len(alerts):,} alerts → {queued:,} groups in {grouped:.2f} s",
        ),
        (
            "webhook throughput",
            f"{receiver.count / took:,.0f} webhooks/s ({receiver.count:,} in {took:.2f} s)",
        ),
    ]


async def recovery(n: int, tmp: Path) -> list[tuple[str, str]]:
    """Rows of the outbox part."""
    body = json.dumps({"alerts": [{"labels": {"alertname": "A", "pod": "x" * 40}}] * 4}).encode()
    box = Outbox(tmp / "recovery")
    for i in range(n):
        box.enqueue("hook/webhook/0", body, T0 + i, f'{{}}:{{n="{i}"}}')
    box.close()
    start = time.perf_counter()
    again = Outbox(tmp / "recovery")
    reopened = time.perf_counter() - start
    assert len(again.pending) == n
    receiver = _Receiver()
    runner, url = await _serve(receiver)
    delivery = Delivery(_targets(url), again, RealClock(), _settings(url).delivery)
    took = await _drain(delivery, again)
    await delivery.aclose()
    again.close()
    await runner.cleanup()
    size = (tmp / "recovery" / "outbox.log").stat().st_size
    return [
        (f"outbox reopen, {n:,} queued", f"{reopened * 1000:.0f} ms ({size / 1e6:.1f} MB log)"),
        ("outbox drained after restart", f"{took:.2f} s ({n / took:,.0f} webhooks/s)"),
    ]


def _targets(url: str) -> dict[str, Target]:
    return build_targets(_settings(url).receivers)


def main() -> None:
    """Run the three parts and print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scrapes", type=int, default=SCRAPES, help="scrapes (and rule rounds) of history first"
    )
    parser.add_argument("--groups", type=int, default=2000, help="aggregation groups to notify")
    parser.add_argument("--queued", type=int, default=10_000, help="notifications in the outbox")
    parser.add_argument("--skip-evaluation", action="store_true")
    parser.add_argument(
        "--skip-delivery", action="store_true", help="only the evaluation part (and its notifier)"
    )
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_evaluation:
            rows += evaluation_round(
                args.nodes, args.pods_per_node, args.rounds, Path(tmp), args.scrapes
            )
        if not args.skip_delivery:
            rows += asyncio.run(throughput(args.groups, 5, Path(tmp)))
            rows += asyncio.run(recovery(args.queued, Path(tmp)))
    for name, value in rows:
        print(f"{name:<36} {value}")


if __name__ == "__main__":
    main()
