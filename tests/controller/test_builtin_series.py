"""Every series a built-in rule reads is one the store really holds once the service runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import promql_parser

from alerts.builtin import builtin_groups
from promql import parse
from tests.controller.conftest import SCENARIO, horizontal, open_rig, pas
from tsdb import name_is

# Written only when what they count exists or happens.
EVENT_ONLY = {
    "ALERTS": "written by the rule engine once an alert is pending or firing",
    "foresight_notifications_total": "one series per configured receiver; the rig has none",
}

# The controller rig's cluster plus a CronJob that runs Jobs, a worker that is OOM-killed and a
# StatefulSet whose pod mounts a claim (the kubelet's volume stats).
CLUSTER = (
    SCENARIO
    + """
  - name: report
    namespace: shop
    kind: CronJob
    schedule: "*/5 * * * *"
    container: report
    requests: {cpu: 100m, memory: 64Mi}
    limits: {cpu: 500m, memory: 128Mi}
    startupSeconds: 5
    jobSeconds: 1m
    failureRate: 0.5
    load: {pattern: constant, peak: 0.1, noise: 0}
    memory: {base: 32Mi, perCore: 0}
  - name: leaker
    namespace: shop
    replicas: 1
    requests: {cpu: 100m, memory: 64Mi}
    limits: {cpu: 500m, memory: 96Mi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.1, noise: 0}
    memory: {base: 64Mi, perCore: 0, leakPerHour: 300Mi}
  - name: db
    namespace: shop
    kind: StatefulSet
    replicas: 1
    requests: {cpu: 100m, memory: 64Mi}
    startupSeconds: 5
    load: {pattern: constant, peak: 0.1, noise: 0}
    memory: {base: 32Mi, perCore: 0}
"""
)


def _read_metrics() -> dict[str, set[str]]:
    """Metric name -> the built-in rules that read it."""
    out: dict[str, set[str]] = {}
    for group in builtin_groups((), ()):
        for rule in group.rules:

            def visit(node: Any, rule_name: str = rule.name) -> bool:
                if isinstance(node, promql_parser.VectorSelector) and node.name:
                    out.setdefault(node.name, set()).add(rule_name)
                return True

            promql_parser.walk(parse(rule.expr), visit)
    return out


async def test_every_builtin_rule_reads_stored_series(tmp_path: Path) -> None:
    async with open_rig(tmp_path, CLUSTER) as rig:
        await rig.create(pas("web", horizontal()))
        for _ in range(20):
            await rig.step(60)
        store = rig.service.store
        missing = {
            name: sorted(rules)
            for name, rules in _read_metrics().items()
            if name not in EVENT_ONLY and not store.select([name_is(name)], 0, 2**62)
        }
    assert not missing, missing
