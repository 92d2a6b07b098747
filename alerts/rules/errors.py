"""Errors of rule files and rule evaluation.

``RuleFileError`` names the file, line and column (``rules/app.yaml:14:9: group "web",
rule 2, "HighLatency": ...``); ``RuleFileErrors`` carries every error found in a load.
"""

from __future__ import annotations


class RuleError(Exception):
    """Base of the alert-rule errors."""


class RuleFileError(RuleError):
    """One problem in a rule file, at a position."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        where = f"{path}:{line}:{column}" if line else path
        super().__init__(f"{where}: {message}")


class RuleFileErrors(RuleError):
    """All problems found while loading rule files; the files are rejected as a whole."""

    def __init__(self, errors: list[RuleFileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
