"""Memory mappings a test can watch the kernel's pages of (Linux)."""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Iterator
from contextlib import contextmanager

FENCE = 4096
PROT_NONE = 0  # <sys/mman.h>


@contextmanager
def anonymous(*sizes: tuple[int, int]) -> Iterator[list[int]]:
    """Private anonymous mappings of ``(size, touched)`` bytes, each with its first
    ``touched`` bytes written; their addresses. Inaccessible pages fence each, so that the
    kernel merges none with a neighbour (which would change how dense it is)."""
    total = sum(size for size, _ in sizes) + (len(sizes) + 1) * FENCE
    area = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = (ctypes.c_char * total).from_buffer(area)
    base = ctypes.addressof(view)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    addresses, offset = [], 0
    try:
        for size, touched in sizes:
            assert libc.mprotect(base + offset, FENCE, PROT_NONE) == 0
            offset += FENCE
            area[offset : offset + touched] = b"\1" * touched
            addresses.append(base + offset)
            offset += size
        assert libc.mprotect(base + offset, FENCE, PROT_NONE) == 0
        yield addresses
    finally:
        del view
        area.close()


def huge_kib_at(address: int) -> int:
    """AnonHugePages of the mapping holding ``address``."""
    inside = False
    with open("/proc/self/smaps", encoding="ascii") as smaps:
        for line in smaps:
            if "-" in line.split(" ", 1)[0]:
                start, end = (int(x, 16) for x in line.split(" ", 1)[0].split("-"))
                inside = start <= address < end
            elif inside and line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    raise AssertionError(f"no mapping holds {address:#x}")
