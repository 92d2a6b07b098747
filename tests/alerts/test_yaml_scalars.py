"""Scalars in rule files and rule-test files read as promtool reads them, with Go's YAML
decoders: ``true``, ``yes``, ``0x1F``, ``2026-01-01`` stay text where Prometheus declares a
string, and numbers and durations follow yaml.v2/v3.

The fixtures in ``yaml_scalars/`` are ours; beside each ``CASE.test.yml`` is ``CASE.out``,
what promtool 2.42 printed for it (blank lines dropped). foresight must print the same, except
where it fails in its own words (:data:`OWN_WORDS`); the promtool test checks that the recorded
output is still promtool's.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.rules.errors import RuleFileErrors
from alerts.rules.goyaml import GoTypeError, compose, text, to_float, to_int
from alerts.rules.loader import load_text
from alerts.rules.unittest import report, run_file
from tests.support.external import require_binary

FIXTURES = Path(__file__).parent / "yaml_scalars"
CASES = sorted(p.name.removesuffix(".test.yml") for p in FIXTURES.glob("*.test.yml"))

# Cases where foresight fails as promtool does but in its own words, with what it must say:
# rule-file errors name file:line:col, and series values are read by foresight's parser.
OWN_WORDS = {
    "group-name-null": "group-name-null.rules.yml:3:3: Groupname must not be empty",
    "limit-errors": 'limit-errors.rules.yml:10:10: group "date": limit: cannot unmarshal '
    "!!timestamp `2026-01-01` into int",
    "record-empty": "group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set",
    "rule-duration-10": 'rule 1, "A": for: not a valid duration string: "10"',
    "values-date": "s 2026-01-01: ",
    "values-hex": "s 0x1F: ",
    "values-on": "s on: ",
    "values-true": "s true: ",
    "values-underscore": "s 1_000: ",
    "values-yes": "s yes: ",
}


def _normalised(output: str, path: Path) -> str:
    output = output.replace(str(path), path.name)
    return "".join(line.rstrip() + "\n" for line in output.splitlines() if line.strip())


def _foresight(case: str) -> tuple[bool, str]:
    path = FIXTURES / f"{case}.test.yml"
    result = run_file(path)
    return result.ok, _normalised(report(result), path)


def test_every_case_has_promtools_output() -> None:
    assert len(CASES) >= 30
    assert all((FIXTURES / f"{case}.out").is_file() for case in CASES)
    assert set(OWN_WORDS) <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_foresight_reads_scalars_as_promtool(case: str) -> None:
    ok, output = _foresight(case)
    promtool = (FIXTURES / f"{case}.out").read_text()
    assert ok == ("\n  SUCCESS\n" in promtool), output
    if case in OWN_WORDS:
        assert OWN_WORDS[case] in output
    else:
        assert output == promtool


@pytest.mark.parametrize("case", CASES)
def test_promtool_gives_the_recorded_output(case: str) -> None:
    promtool = require_binary("promtool")
    path = FIXTURES / f"{case}.test.yml"
    run = subprocess.run(
        [promtool, "test", "rules", path.name],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert _normalised(run.stdout + run.stderr, path) == (FIXTURES / f"{case}.out").read_text()
    assert (run.returncode == 0) == _foresight(case)[0]


def _scalar(source: str, version: int = 2) -> yaml.Node:
    node = compose(f"x: {source}\n", 2 if version == 2 else 3)
    assert node is not None
    value: yaml.Node = node.value[0][1]
    return value


@pytest.mark.parametrize(
    ("source", "want"),
    [
        ("true", "true"),
        ("yes", "yes"),
        ("~", ""),
        ("null", ""),
        ("", ""),
        ("'null'", "null"),
        ("0x1F", "0x1F"),
        ("2026-01-01", "2026-01-01"),
        ("1_000", "1_000"),
        ("|\n  a\n  b", "a\nb\n"),
    ],
)
def test_a_string_is_the_text_as_written(source: str, want: str) -> None:
    assert text(_scalar(source)) == want


@pytest.mark.parametrize(
    ("source", "want"),
    [
        ("0x1F", 31.0),
        ("010", 8.0),
        ("08", 8.0),
        ("0o17", 15.0),
        ("0b101", 5.0),
        ("-0b101", -5.0),
        ("1_000", 1000.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-.inf", -math.inf),
        ("~", 0.0),
        ("18446744073709551615", 2.0**64),
    ],
)
def test_floats_as_yaml_v2_reads_them(source: str, want: float) -> None:
    assert to_float(_scalar(source)) == want


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("yes", "cannot unmarshal !!bool `yes` into float64"),
        ("2026-01-01T10:00:00Z", "cannot unmarshal !!timestamp `2026-01...` into float64"),
        ('"5"', "cannot unmarshal !!str `5` into float64"),
        ("1:30", "cannot unmarshal !!str `1:30` into float64"),
        ("[1]", "cannot unmarshal !!seq into float64"),
    ],
)
def test_what_is_not_a_float_is_named_as_yaml_v2_names_it(source: str, message: str) -> None:
    with pytest.raises(GoTypeError, match=f"^{re.escape(message)}$"):
        to_float(_scalar(source))


def test_yaml_v3_takes_yes_as_text_and_truncates_floats_into_ints() -> None:
    assert to_int(_scalar("1.5", 3)) == 1
    assert to_int(_scalar("010", 3)) == 8
    with pytest.raises(GoTypeError, match="!!str `yes` into int"):
        to_int(_scalar("yes", 3))
    with pytest.raises(GoTypeError, match="!!bool `yes` into int"):
        to_int(_scalar("yes", 2))


def test_rule_file_strings_and_nulls() -> None:
    (group,) = load_text(
        "groups:\n- name: g\n  interval: ~\n  limit: 010\n  rules:\n"
        "  - alert: yes\n    expr: up\n    for: null\n"
        "    labels: {a: true, b: 2026-01-01, c: ~}\n    annotations: {d: on, e: }\n",
        "r.yml",
    )
    (rule,) = group.rules
    assert (group.interval_ms, group.limit, rule.name, rule.for_ms) == (None, 8, "yes", 0)
    assert rule.labels == (("a", "true"), ("b", "2026-01-01"), ("c", ""))
    assert rule.annotations == (("d", "on"), ("e", ""))


def test_a_null_group_name_is_empty() -> None:
    with pytest.raises(RuleFileErrors, match=r"r.yml:2:3: Groupname must not be empty"):
        load_text("groups:\n- name: ~\n  rules: []\n", "r.yml")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("'2024-01-01T00:00:00Z'", None),
        ("1704067200", None),
        ("2024-01-01T00:00:00Z", None),
        ("2024-01-01", 'cannot parse "2024-01-01" to a valid timestamp'),
        ("'2024-01-01 00:00:00'", 'cannot parse "2024-01-01 00:00:00" to a valid timestamp'),
    ],
)
def test_start_timestamp_is_unix_seconds_or_rfc3339(
    tmp_path: Path, value: str, error: str | None
) -> None:
    path = tmp_path / "t.yml"
    path.write_text(
        "rule_files: []\ntests:\n- interval: 1m\n"
        f"  start_timestamp: {value}\n"
        "  input_series: [{series: s, values: '1'}]\n"
        "  promql_expr_test:\n"
        "  - {expr: timestamp(s), eval_time: 0m,\n"
        "     exp_samples: [{labels: '{}', value: 1704067200}]}\n"
    )
    result = run_file(path)
    assert result.errors == ([error] if error else [])
