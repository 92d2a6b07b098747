"""The heap moved into huge pages: which mappings are asked for, and that the kernel does it
for a dense one and leaves a sparse one in small pages."""

from __future__ import annotations

import ctypes
import os
import sys

import pytest

from runtime.hugepages import HUGE_PAGE, collapse_heap, dense_ranges, supported
from tests.support.pages import anonymous, huge_kib_at

MIB = 1 << 20

SMAPS = """\
55d0c0a00000-55d0c0e00000 rw-p 00000000 00:00 0                          [heap]
Size:               4096 kB
Rss:                4096 kB
7f0000100000-7f0000900000 rw-p 00000000 00:00 0
Size:               8192 kB
Rss:                7000 kB
AnonHugePages:         0 kB
7f0001000000-7f0001800000 rw-p 00000000 00:00 0
Size:               8192 kB
Rss:                  12 kB
7f0002000000-7f0002400000 r--p 00000000 00:00 0
Rss:                4096 kB
7f0003000000-7f0003400000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)
Rss:                4096 kB
7f0004000000-7f0004400000 rw-p 00000000 08:01 5678                       /usr/lib/libfoo.so
Rss:                4096 kB
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0                          [stack]
Rss:                4096 kB
7f0005000000-7f0005180000 rw-p 00000000 00:00 0
Rss:                1536 kB
"""


def test_only_dense_private_anonymous_memory_is_asked_for_in_whole_huge_pages() -> None:
    assert dense_ranges(SMAPS) == [
        # The C heap, aligned already.
        (0x55D0C0A00000, 4 * MIB),
        # 7,000 of 8,192 kB resident; its first huge page starts 1 MiB in.
        (0x7F0000200000, 6 * MIB),
    ]
    # Lower the bar and the sparse one (12 kB of 8 MiB) qualifies too.
    assert (0x7F0001000000, 8 * MIB) in dense_ranges(SMAPS, min_density=0.0)


needs_collapse = pytest.mark.skipif(
    sys.platform != "linux" or not supported(),
    reason="the kernel cannot collapse memory into huge pages (Linux 6.1+, THP not never)",
)


@needs_collapse
def test_a_dense_mapping_is_moved_into_huge_pages_and_a_sparse_one_is_not() -> None:
    with anonymous((8 * MIB, 8 * MIB), (16 * MIB, 4096)) as (dense, sparse):
        assert huge_kib_at(dense) == 0
        done = collapse_heap()
        assert done.requested_bytes >= 6 * MIB
        # At least the three whole huge pages inside it, wherever it starts.
        assert huge_kib_at(dense) >= 3 * HUGE_PAGE // 1024
        assert huge_kib_at(sparse) == 0


@needs_collapse
def test_a_forked_child_reads_the_collapsed_memory_as_it_was() -> None:
    with anonymous((8 * MIB, 8 * MIB)) as (dense,):
        data = (ctypes.c_char * (8 * MIB)).from_address(dense)
        data[4 * MIB] = b"\7"
        collapse_heap()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            os._exit(0 if data[4 * MIB] == b"\7" and data[0] == b"\1" else 1)
        # Written after the fork: the child keeps what it saw, the parent sees its own.
        data[4 * MIB] = b"\0"
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert data[4 * MIB] == b"\0"
