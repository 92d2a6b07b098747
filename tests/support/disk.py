"""A really small disk for full-disk tests: a 1 MiB tmpfs, skipped where mounting is not
allowed (it needs CAP_SYS_ADMIN)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos_disk import SmallDisk, mount_small_disk
from tests.support.external import require_privilege


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A mounted 1 MiB tmpfs, unmounted after the test."""
    mounted = mount_small_disk(tmp_path / "disk", 1)
    require_privilege("mounting a tmpfs", mounted is not None, "run the tests as root")
    assert mounted is not None
    try:
        yield mounted
    finally:
        mounted.unmount()
