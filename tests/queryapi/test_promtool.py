"""promtool (Debian's Prometheus 2.42), a real client, against foresight's API: every
``promtool query`` subcommand prints the same for foresight as for a real Prometheus holding
the same samples, in its text and its JSON output."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.queryapi.conftest import AT_S, END_S, START_S
from tests.support.external import require_binary

CASES = [
    ["instant", "--time", str(AT_S), "{url}", "mem"],
    ["instant", "--time", str(AT_S), "{url}", "sum by (job) (req_total)"],
    ["instant", "--time", str(AT_S), "{url}", "scalar(count(mem))"],
    ["instant", "--time", str(AT_S), "{url}", "huge"],
    ["instant", "--time", str(AT_S), "{url}", "mem[1m]"],
    ["range", "--start", str(START_S), "--end", str(END_S), "--step", "5m", "{url}", "tiny"],
    ["range", "--start", str(START_S), "--end", str(END_S), "--step", "1m", "{url}", "mem"],
    ["series", "--match", "mem", "--match", 'lat_bucket{le="1"}', "{url}"],
    ["series", "--match", '{job="db"}', "--start", str(START_S), "--end", str(END_S), "{url}"],
    ["labels", "{url}", "job"],  # from now - 9999h: nothing
    ["labels", "--start", str(START_S), "{url}", "job"],
    ["labels", "--match", "lat_bucket", "{url}", "le"],
    ["labels", "--start", str(START_S), "--end", str(END_S), "{url}", "__name__"],
]


def _promtool(args: list[str], url: str, output: str) -> tuple[int, object]:
    promtool = require_binary("promtool")
    done = subprocess.run(
        [promtool, "query", "-o", output, *(a.replace("{url}", url) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Prometheus does not order the series of an instant vector: compare sets.
    if output == "json" and done.returncode == 0:
        printed = json.loads(done.stdout)
        if isinstance(printed, list):
            printed = sorted(printed, key=lambda item: json.dumps(item, sort_keys=True))
        return done.returncode, printed
    return done.returncode, sorted((done.stdout + done.stderr).splitlines())


@pytest.mark.parametrize("output", ["promql", "json"])
@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a[:1] + a[-1:]))
def test_promtool_prints_the_same(both: tuple[str, str], args: list[str], output: str) -> None:
    ours, theirs = both
    mine, reference = _promtool(args, ours, output), _promtool(args, theirs, output)
    assert mine[0] == 0, mine
    assert mine == reference


def test_promtool_reports_our_errors(both: tuple[str, str]) -> None:
    ours, theirs = both
    args = ["range", "--start", str(END_S), "--end", str(START_S), "{url}", "mem"]
    mine, reference = _promtool(args, ours, "promql"), _promtool(args, theirs, "promql")
    assert mine[0] == 1
    assert mine == reference
