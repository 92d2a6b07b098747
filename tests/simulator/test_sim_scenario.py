"""Scenario files: the built-in default, examples, and errors that point at the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.load import read_trace
from simulator.scenario import load_scenario, parse_scenario
from tests.support.external import require_data

REPO = Path(__file__).resolve().parents[2]


def test_default_scenario_looks_like_a_small_cluster() -> None:
    s = load_scenario("default")
    assert 3 <= len(s.node_names()) <= 6
    kinds = {w.kind for w in s.workloads}
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob"} <= kinds
    names = {w.name for w in s.workloads}
    assert {"frontend", "api", "report", "queue-worker"} <= names
    frontend = next(w for w in s.workloads if w.name == "frontend")
    assert frontend.load is not None and frontend.load.flash_crowds
    worker = next(w for w in s.workloads if w.name == "queue-worker")
    assert worker.memory.leak_per_hour > 0


EXAMPLES = sorted((REPO / "examples" / "scenarios").glob("*.yaml"))


def test_example_scenarios_parse() -> None:
    assert EXAMPLES
    for path in EXAMPLES:
        load_scenario(path)


def test_example_scenarios_name_real_traces_that_read() -> None:
    # The examples find the traces beside the repository; here they are looked up by name
    # wherever the test data is.
    traces = [
        w.load.trace
        for path in EXAMPLES
        for w in load_scenario(path).workloads
        if w.load is not None and w.load.trace is not None
    ]
    assert traces
    for trace in traces:
        assert trace.parent.name == "traces", trace
        assert read_trace(require_data(f"traces/{trace.name}")).values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nodes: []\n", "s.yaml:1:1: nodes: Tuple should have at least 1 item"),
        (
            "nodes: [{name: n}]\nworkloads:\n  - name: web\n    replicas: -1\n",
            "s.yaml:4:15: workloads.0.replicas: Input should be greater than or equal to 0",
        ),
        (
            "nodes: [{name: n}]\nworkloads:\n  - name: web\n    colour: red\n",
            "s.yaml:4:5: workloads.0.colour: unknown field",
        ),
        (
            "nodes: [{name: n, cpu: lots}]\n",
            "s.yaml:1:24: nodes.0.cpu: Value error, 'lots' is not a quantity",
        ),
        (
            "nodes: [{name: n}]\nworkloads:\n"
            "  - {name: j, kind: CronJob, schedule: '61 * * * *'}\n",
            "s.yaml:3:5: workloads.0: Value error, invalid cron schedule '61 * * * *'",
        ),
        (
            "nodes: [{name: n}]\nfaults:\n  - {type: api-error, verbs: [fly]}\n",
            "s.yaml:3:23: faults.0.verbs: Value error, unknown verb 'fly' (valid: get, list",
        ),
        ("nodes: [{name: n}\n", "s.yaml:2:1: invalid YAML"),
        ("- a\n", "s.yaml:1:1: a scenario must be a mapping"),
    ],
)
def test_malformed_scenarios_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.yaml")
    assert str(e.value).startswith(expected), str(e.value)


def test_missing_scenario_file_and_bad_trace(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the scenario"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n1,2\n3,x\n")
    with pytest.raises(ScenarioError, match=r"bad.csv:3:1: bad row"):
        read_trace(bad)
