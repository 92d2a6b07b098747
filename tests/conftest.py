"""Hooks of the whole suite: one closing line naming the external suites and programs that
did not run in this session, and how to enable them (see ``tests/support/external.py``);
fixtures shared across folders (``tests/support/disk.py``: ``disk``, a small tmpfs). Under
``pytest -n`` the misses of each worker reach the line on their tests' reports."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.external import closing_line, missed_since_last_report, note_report

pytest_plugins = ["tests.support.disk"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each report carries the misses of its phase, which xdist sends to the controller."""
    report = yield
    report.user_properties.extend(missed_since_last_report())
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every report reaches the process that prints the summary, a worker's too."""
    note_report(report.user_properties)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    """After pytest's own summary sections, right before its closing counts line (which CI
    reads), so that line still ends the output."""
    yield
    line = closing_line()
    if line is not None:
        terminalreporter.write_line(line, yellow=True)
