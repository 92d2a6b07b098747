"""Hooks of the whole suite: one closing line naming the external suites and programs that
did not run in this session, and how to enable them (see ``tests/support/external.py``);
fixtures shared across folders (``tests/support/disk.py``: ``disk``, a small tmpfs)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.external import closing_line

pytest_plugins = ["tests.support.disk"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    """After pytest's own summary sections, right before its closing counts line (which CI
    reads), so that line still ends the output."""
    yield
    line = closing_line()
    if line is not None:
        terminalreporter.write_line(line, yellow=True)
