"""Material and programs the tests use but the repository does not hold: the one place that
knows where they are and what happens when they are missing.

External material (real traces, real payloads, Prometheus' own test files, community rule
files) sits in the folder named by the environment variable ``FORESIGHT_TEST_DATA``,
by default ``../shared/data`` beside the repository. Programs (Prometheus, promtool,
Alertmanager, kubectl) come from Debian packages that ``make system-deps`` installs.

A test asks for what it needs with :func:`require_data` or :func:`require_binary` at run
time, never at collection, so a run without them still collects every test. When something is
missing the test is skipped, with a reason that names the suite and how to enable it; with
``CI=true`` it fails instead, because CI must run everything. Every miss is remembered for the
one closing line of the run (:func:`closing_line`). Under ``pytest -n`` (xdist) tests run in
worker processes: each miss rides on its test's report (:func:`missed_since_last_report`) to
the process that prints the line (:func:`note_report`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import NoReturn

import pytest

__all__ = [
    "DATA_ENV",
    "closing_line",
    "data_root",
    "missed_since_last_report",
    "note_report",
    "require_binary",
    "require_data",
    "require_privilege",
]

DATA_ENV = "FORESIGHT_TEST_DATA"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

# Suites of external material: folder inside the data root -> name shown to people. A path
# belongs to the suite with the longest folder that contains it.
SUITES = {
    "traces": "real load traces",
    "k8s": "Kubernetes metric payloads",
    "k8s/opencost_default_pricing.json": "OpenCost pricing",
    "promql/testdata": "promqltest files",
    "promql/rules": "community rule files",
    "promql/rules-tests": "promtool rule tests",
    "alertmanager": "Alertmanager material",
}

# Programs -> the Debian package that holds them.
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "alertmanager": "prometheus-alertmanager",
    "kubectl": "kubernetes-client",
    "podman": "podman",
    "runc": "runc",
    "mmdebstrap": "mmdebstrap",
}

# The name a miss travels under in a report's user_properties, as [kind, what].
MISSED = "foresight-external-missed"
_missing_suites: set[str] = set()
_missing_binaries: set[str] = set()
_missing_privileges: set[str] = set()
# Kind of miss -> the set it is remembered in.
_missing = {"suite": _missing_suites, "binary": _missing_binaries, "privilege": _missing_privileges}
# Misses since the last test report was made, in the process that ran the test.
_unreported: list[tuple[str, str]] = []


def _missed(kind: str, what: str) -> None:
    _missing[kind].add(what)
    _unreported.append((kind, what))


def missed_since_last_report() -> list[tuple[str, object]]:
    """The misses since the last call, as ``user_properties`` entries for a test report."""
    entries: list[tuple[str, object]] = [(MISSED, [kind, what]) for kind, what in _unreported]
    _unreported.clear()
    return entries


def note_report(user_properties: list[tuple[str, object]]) -> None:
    """Remember the misses a test report carries (a worker's, under xdist)."""
    for name, value in user_properties:
        if name == MISSED and isinstance(value, list | tuple) and len(value) == 2:
            kind, what = value
            if kind in _missing:
                _missing[str(kind)].add(str(what))


def data_root() -> Path:
    """The folder of external test material: ``$FORESIGHT_TEST_DATA`` or ``../shared/data``."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else DEFAULT_DATA


def _suite(relative: str) -> str:
    """The folder of the suite holding ``relative``."""
    parts = PurePosixPath(relative).parts
    for folder in sorted(SUITES, key=len, reverse=True):
        if parts[: len(PurePosixPath(folder).parts)] == PurePosixPath(folder).parts:
            return folder
    raise ValueError(f"{relative!r} belongs to no suite of {__name__}.SUITES; add it there")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _not_available(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason} (CI runs every suite)", pytrace=False)
    pytest.skip(reason)


def require_data(relative: str) -> Path:
    """The path ``relative`` (``/``-separated) inside the data root; skips the test (fails it
    under ``CI=true``) when it is absent, naming the suite and how to provide it."""
    folder = _suite(relative)
    root = data_root()
    path = root.joinpath(*PurePosixPath(relative).parts)
    if not path.exists():
        _missed("suite", SUITES[folder])
        # The whole suite missing gives one reason for all its tests, so -ra folds them.
        wanted = folder if not root.joinpath(*PurePosixPath(folder).parts).exists() else relative
        _not_available(
            f"{SUITES[folder]}: set {DATA_ENV} to a folder holding {wanted} (looked in {root})"
        )
    return path


def require_binary(name: str, *alternatives: str) -> str:
    """The full path of program ``name`` (or the first of ``alternatives`` found); skips the
    test (fails it under ``CI=true``) when none is installed, naming the package."""
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found is not None:
            return found
    _missed("binary", name)
    _not_available(
        f"{name}: not installed; `make system-deps` installs the Debian package {PACKAGES[name]}"
    )


def require_privilege(what: str, granted: bool, how: str) -> None:
    """Skip the test (fail it under ``CI=true``) unless ``granted``: ``what`` the machine
    does not allow (mounting a tmpfs, say), and ``how`` to allow it."""
    if not granted:
        _missed("privilege", f"{what} ({how})")
        _not_available(f"{what}: not permitted here; {how}")


def closing_line() -> str | None:
    """One line naming what did not run in this session and how to enable it; ``None`` when
    everything ran."""
    parts = []
    if _missing_suites:
        parts.append(
            f"not run: {', '.join(sorted(_missing_suites))} "
            f"(set {DATA_ENV} to the test data folder; looked in {data_root()})"
        )
    if _missing_binaries:
        parts.append(f"binaries missing: {', '.join(sorted(_missing_binaries))} (make system-deps)")
    if _missing_privileges:
        parts.append(f"not permitted: {', '.join(sorted(_missing_privileges))}")
    return "; ".join(parts) or None
