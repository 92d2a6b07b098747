"""A real full disk for the store: a size-limited tmpfs, filled and emptied on demand.

Mounting needs ``CAP_SYS_ADMIN`` (root in a container usually has it; an unprivileged user
does not). :func:`mount_small_disk` returns None when the mount is refused, and the run
then goes without a full-disk phase and says so.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

__all__ = ["SmallDisk", "mount_small_disk"]

_CHUNK = 1 << 20


class SmallDisk:
    """A mounted tmpfs of a fixed size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"
        self.full = False

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        """Take every free byte; returns how many were taken."""
        taken = 0
        block = b"\0" * _CHUNK
        size = _CHUNK
        fd = os.open(self._filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while size:
                try:
                    taken += os.write(fd, block[:size])
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    size //= 2
        finally:
            os.close(fd)
        self.full = True
        return taken

    def release(self) -> None:
        """Give the space back."""
        self._filler.unlink(missing_ok=True)
        self.full = False

    def unmount(self) -> None:
        self.release()
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


def mount_small_disk(path: Path, size_mb: int) -> SmallDisk | None:
    """Mount a ``size_mb`` tmpfs on ``path``, or None when this process may not mount."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        return None
    return SmallDisk(path)
