"""The benchmarks' rule rounds do not depend on where the rule files lie.

The service staggers each rule group inside its interval by a hash of its key, ``file;name``
with the file's path as loaded (as Prometheus does). ``bench.promql`` loaded the
kube-prometheus rules by their absolute path, so from another checkout (or through a git
worktree's symlinked ``../shared``) every group was evaluated at other moments, saw other
samples and raised other alerts: ``bench.alerts --nodes 30 --rounds 1`` gave 1,484 alerts
added / 1,873 firing in one place and 1,465 / 1,866 in the other.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.promql import T0_MS, Cluster, ServiceRules
from tests.support.external import require_data


def _rounds(folder: Path, state: Path) -> tuple[list[int], list[int], list[tuple[str, ...]]]:
    service = ServiceRules(folder, Cluster(2, 4), state, scrapes=4)
    try:
        groups = service.manager.groups
        slots = [service.manager.slot(g, T0_MS + 3_600_000) for g in groups]
        evaluated = [g.last_evaluation_ms for g in groups]
        alerts = sorted(
            (rule.name, repr(a.labels), a.state.name)
            for g in groups
            for rule, a in g.active_alerts()
        )
        return slots, evaluated, alerts
    finally:
        service.store.close()


def test_rule_rounds_do_not_depend_on_where_the_rules_lie(tmp_path: Path) -> None:
    rules = require_data("promql/rules/kube-prometheus")
    near = tmp_path / "a" / "kube-prometheus"
    shutil.copytree(rules, near)
    # A checkout elsewhere, its rules reached through a symlink as a worktree's are.
    far = tmp_path / "a-checkout-with-a-much-longer-name" / "shared"
    far.parent.mkdir()
    far.symlink_to(near.parent, target_is_directory=True)
    first = _rounds(near, tmp_path / "state-near")
    second = _rounds(far / "kube-prometheus", tmp_path / "state-far")
    assert first[0] == second[0], "group offsets moved with the rules' path"
    assert first[1] == second[1], "groups evaluated at other moments"
    assert first[2] == second[2]
