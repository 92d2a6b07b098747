"""``foresight rules test``: the ``promtool test rules`` file format, Prometheus 3 semantics.

Each test group loads its input series at ``k * interval``, evaluates every rule group at
every ``evaluation_interval`` from the start time up to the latest ``eval_time``, compares
firing alerts at each ``alert_rule_test`` time, then runs ``promql_expr_test`` queries over
what the rules wrote. Output and exit codes follow promtool, and the file is decoded as
promtool decodes it (:mod:`alerts.rules.goyaml`): ``exp_labels: {on: yes}`` is on="yes".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alerts.rules.durations import DurationError, parse_duration_ms
from alerts.rules.errors import RuleFileErrors
from alerts.rules.goyaml import (
    BOOL,
    FLOAT,
    STR,
    STR_MAP,
    GoDecodeError,
    ListOf,
    Scalar,
    Struct,
    decode,
    text,
)
from alerts.rules.group import EvalContext, GroupState, _samples
from alerts.rules.loader import expand_paths, load_file
from alerts.rules.model import GroupSpec
from alerts.rules.state import AlertState, Labels
from promql import Engine, PromQLError, PromQLSettings
from promql.forecast import SeriesForecaster
from promql.series_notation import NotationError, parse_points, parse_series
from runtime.clock import VirtualClock
from tsdb import STALE_NAN, Store, StoreSettings

_EPSILON = 1e-6
_NATIVE_HISTOGRAMS = "native histograms are not supported by foresight's store"


@dataclass
class FileResult:
    """One test file: its errors, in promtool's words (empty: success)."""

    path: str
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def go_duration(ms: int) -> str:
    """Go's ``time.Duration.String`` (``0s``, ``1m0s``, ``1h2m3.5s``)."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    if ms < 1000:
        return f"{sign}{ms}ms"
    return f"{sign}{s}s"


def format_e(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'E', -1, 64)``: ``1E+00``, ``6.1E+01``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    mantissa, _, exp = f"{float(text):.17E}".partition("E")
    for digits in range(17):
        candidate = f"{value:.{digits}E}"
        if float(candidate) == value:
            mantissa, _, exp = candidate.partition("E")
            break
    return f"{mantissa}E{exp[0]}{int(exp[1:]):02d}"


def labels_string(labels: Labels) -> str:
    """Prometheus' ``Labels.String()``: ``{a="1", b="2"}``."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels))
    return "{" + inner + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _indent(text: str, indentation: str) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + indentation + line for line in lines[1:])


def _alerts_string(items: Sequence[tuple[Labels, Labels]]) -> str:
    if not items:
        return "[]"
    parts = []
    for i, (lb, an) in enumerate(items):
        body = f"\nLabels:{labels_string(lb)}\nAnnotations:{labels_string(an)}"
        parts.append(f"{i}:" + _indent(body, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"


def _samples_string(items: Sequence[tuple[Labels, float]]) -> str:
    if not items:
        return "nil"
    return ", ".join(f"{labels_string(lb)} {format_e(v)}" for lb, v in items)


class _TestError(Exception):
    pass


def _duration_ms(node: yaml.Node) -> int:
    """A ``model.Duration``: its text read by ``model.ParseDuration``, in milliseconds."""
    value = text(node)
    if not value:
        raise DurationError("empty duration string")
    return parse_duration_ms(value)


# The test file as promtool declares it: Go types decoded by yaml.v2, so that every string
# field is the text as written (``enabled: true`` is "true", ``values: 010`` stays "010").
_DURATION = Scalar("string", 0, _duration_ms)
_SAMPLE = Struct("main.sample", {"labels": STR, "value": FLOAT, "histogram": STR})
_ALERT = Struct("main.alert", {"exp_labels": STR_MAP, "exp_annotations": STR_MAP})
_ALERT_TEST = Struct(
    "main.alertTestCase",
    {"eval_time": _DURATION, "alertname": STR, "exp_alerts": ListOf(_ALERT)},
)
_EXPR_TEST = Struct(
    "main.promqlTestCase",
    {"expr": STR, "eval_time": _DURATION, "exp_samples": ListOf(_SAMPLE)},
)
_TEST_GROUP = Struct(
    "main.testGroup",
    {
        "interval": _DURATION,
        "input_series": ListOf(Struct("main.series", {"series": STR, "values": STR})),
        "alert_rule_test": ListOf(_ALERT_TEST),
        "promql_expr_test": ListOf(_EXPR_TEST),
        "external_labels": STR_MAP,
        "external_url": STR,
        "name": STR,
        "start_timestamp": Scalar("string", 0, lambda node: _start_time(text(node))),
    },
)
_TEST_FILE = Struct(
    "main.unitTestFile",
    {
        "rule_files": ListOf(STR),
        "evaluation_interval": _DURATION,
        "group_eval_order": ListOf(STR),
        "tests": ListOf(_TEST_GROUP),
        "fuzzy_compare": BOOL,
    },
)


def _equal(a: float, b: float, fuzzy: bool) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    if not fuzzy:
        return False
    return abs(a - b) <= _EPSILON * max(abs(a), abs(b)) or abs(a - b) < 1e-300


def run_file(
    path: Path,
    run: str | None = None,
    settings: PromQLSettings | None = None,
    forecaster: SeriesForecaster | None = None,
) -> FileResult:
    """Run one test file (only test groups whose name matches ``run``, when given);
    ``forecaster`` is the model behind ``forecast()``."""
    result = FileResult(str(path))
    try:
        doc = decode(path.read_text(encoding="utf-8"), _TEST_FILE)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, GoDecodeError) as e:
        result.errors.append(str(e))
        return result
    try:
        interval = doc["evaluation_interval"] or 60_000
        specs = _load_rules(path, doc["rule_files"])
        specs = _order(specs, doc["group_eval_order"])
    except RuleFileErrors as e:
        result.errors.extend(str(x) for x in e.errors)
        return result
    except _TestError as e:
        result.errors.append(str(e))
        return result
    pattern = re.compile(run) if run else None
    for group in doc["tests"]:
        if pattern is not None and not pattern.search(group["name"]):
            continue
        try:
            result.errors.extend(
                _run_group(group, specs, interval, doc["fuzzy_compare"], settings, forecaster)
            )
        except _TestError as e:
            result.errors.append(str(e))
    return result


def _load_rules(test_path: Path, files: Sequence[str]) -> list[GroupSpec]:
    base = test_path.parent
    specs: list[GroupSpec] = []
    errors = []
    for f in files:
        target = Path(f) if Path(f).is_absolute() else base / f
        for p in expand_paths([target]):
            try:
                specs.extend(load_file(p))
            except RuleFileErrors as e:
                errors.extend(e.errors)
    if errors:
        raise RuleFileErrors(errors)
    return specs


def _order(specs: list[GroupSpec], order: Sequence[str]) -> list[GroupSpec]:
    if not order:
        return specs
    repeated = next((n for i, n in enumerate(order) if n in order[:i]), None)
    if repeated is not None:
        raise _TestError(f"group name repeated in evaluation order: {repeated}")
    by_name = {s.name: s for s in specs}
    missing = [n for n in order if n not in by_name]
    if missing:
        raise _TestError(f"group name(s) in group_eval_order not found: {', '.join(missing)}")
    ordered = [by_name[n] for n in order]
    return ordered + [s for s in specs if s.name not in set(order)]


def _load_series(store: Store, series: Sequence[dict[str, Any]], interval: int, start: int) -> None:
    for item in series:
        line = f"{item['series']} {item['values']}"
        try:
            labels, rest = parse_series(item["series"])
            points = parse_points(item["values"])
        except (NotationError, ValueError) as e:
            raise _TestError(f"{line}: {e}") from e
        if points.histograms:
            raise _TestError(f"{line}: {_NATIVE_HISTOGRAMS}")
        if rest:
            raise _TestError(f"{line}: unexpected {rest!r} after the series")
        stamps = [start + k * interval for k, v in enumerate(points.values) if v is not None]
        values = [v for v in points.values if v is not None]
        if stamps:
            ref = store.ref(labels)
            store.append_batch(
                np.full(len(stamps), ref, dtype=np.int32),
                np.array(stamps, dtype=np.int64),
                np.array(values, dtype=np.float64),
            )


def _run_group(
    tg: dict[str, Any],
    specs: list[GroupSpec],
    eval_interval: int,
    fuzzy: bool,
    settings: PromQLSettings | None,
    forecaster: SeriesForecaster | None,
) -> list[str]:
    errors: list[str] = []
    name = tg["name"]
    prefix = f"    name: {name},\n" if name else ""
    for t in tg["alert_rule_test"]:
        if not t["alertname"]:
            where = f" (in TestGroup {name})" if name else ""
            return [
                "an item under alert_rule_test misses required attribute alertname at "
                f"eval_time {_model_duration(t['eval_time'])}{where}"
            ]
    interval = tg["interval"] or eval_interval
    start = tg["start_timestamp"]
    store = Store(StoreSettings(), VirtualClock(0.0), persistent=False)
    try:
        _load_series(store, tg["input_series"], interval, start)
        base = settings or PromQLSettings()
        external, url = tg["external_labels"], tg["external_url"]
        states = []
        for spec in specs:
            step_s = (spec.interval_ms or eval_interval) / 1000
            engine = Engine(
                store,
                base.model_copy(update={"default_subquery_step_seconds": step_s}),
                forecaster,
            )
            states.append(
                (GroupState(spec, eval_interval), EvalContext(engine, store, external, url))
            )
        alert_tests: dict[int, list[dict[str, Any]]] = {}
        for t in tg["alert_rule_test"]:
            alert_tests.setdefault(t["eval_time"], []).append(t)
        expr_tests = tg["promql_expr_test"]
        times = sorted(alert_tests)
        max_t = max([*times, *(t["eval_time"] for t in expr_tests), 0])
        curr = 0
        ts = 0
        while ts <= max_t:
            eval_errors = []
            for state, ctx in states:
                state.evaluate(ctx, start + ts)
                for rule, status in zip(state.spec.rules, state.status, strict=True):
                    if status.health == "err":
                        when = go_duration(ts)
                        eval_errors.append(
                            f"    rule: {rule.name}, time: {when}, err: {status.last_error}"
                        )
            if eval_errors:
                return errors + eval_errors
            while curr < len(times) and ts <= times[curr] < ts + eval_interval:
                errors.extend(_check_alerts(times[curr], alert_tests[times[curr]], states, prefix))
                curr += 1
            ts += eval_interval
        engine = Engine(store, base, forecaster)
        for t in expr_tests:
            errors.extend(_check_expr(t, states, engine, start, fuzzy, prefix))
    finally:
        store.close()
    return errors


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _start_time(value: str) -> int:
    """promtool's ``start_timestamp``: unix seconds or an RFC 3339 time (a date alone or a
    time without its zone is neither)."""
    if not value:
        return 0
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    if not _RFC3339.fullmatch(value):
        raise ValueError(f'cannot parse "{value}" to a valid timestamp')
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _check_alerts(
    t: int, tests: list[dict[str, Any]], states: list[tuple[GroupState, EvalContext]], prefix: str
) -> list[str]:
    errors = []
    for test in tests:
        name = test["alertname"]
        got: list[tuple[Labels, Labels]] = []
        for state, _ in states:
            for rule, alert in state.active_alerts():
                if rule.name == name and alert.state is AlertState.FIRING:
                    got.append((alert.labels, tuple(sorted(alert.annotations))))
        exp: list[tuple[Labels, Labels]] = []
        for a in test["exp_alerts"]:
            lb = {**a["exp_labels"], "alertname": name}
            exp.append((tuple(sorted(lb.items())), tuple(sorted(a["exp_annotations"].items()))))
        got.sort()
        exp.sort()
        if got != exp:
            errors.append(
                f"{prefix}    alertname: {name}, time: {_model_duration(t)}, \n"
                f"        exp:{_indent(_alerts_string(exp), ' ' * 12)}, \n"
                f"        got:{_indent(_alerts_string(got), ' ' * 12)}\n"
            )
    return errors


def _model_duration(ms: int) -> str:
    from alerts.rules.durations import format_duration_ms  # noqa: PLC0415

    return format_duration_ms(ms)


def _check_expr(
    test: dict[str, Any],
    states: list[tuple[GroupState, EvalContext]],
    engine: Engine,
    start: int,
    fuzzy: bool,
    prefix: str,
) -> list[str]:
    expr, t = test["expr"], test["eval_time"]
    where = f'    expr: "{_escape(expr)}", time: {_model_duration(t)}'
    try:
        got = [(tuple(sorted(lb)), v) for lb, v in _samples(engine.instant(expr, start + t))]
    except PromQLError as e:
        return [f"{where}, err: {e}"]
    exp: list[tuple[Labels, float]] = []
    for s in test["exp_samples"]:
        if s["histogram"]:
            return [f"{where}, err: {_NATIVE_HISTOGRAMS}"]
        labels = s["labels"] or "{}"
        try:
            lb, rest = parse_series(labels)
            if rest:
                raise NotationError(f"unexpected {rest!r}")
        except NotationError as e:
            return [f'{where}, err: labels "{labels}": {e}']
        exp.append((tuple(sorted(lb)), s["value"]))
    got.sort(key=lambda x: x[0])
    exp.sort(key=lambda x: x[0])
    same = len(got) == len(exp) and all(
        g[0] == e[0] and _equal(e[1], g[1], fuzzy) for g, e in zip(got, exp, strict=True)
    )
    if same:
        return []
    return [
        f"{prefix}{where},\n        exp: {_samples_string(exp)}\n"
        f"        got: {_samples_string(got)}\n"
    ]


def report(result: FileResult) -> str:
    """promtool's text for one file."""
    head = f"Unit Testing:  {result.path}\n"
    if result.ok:
        return head + "  SUCCESS\n"
    return head + "  FAILED:\n" + "".join(e.rstrip("\n") + "\n\n" for e in result.errors)


STALE = STALE_NAN
