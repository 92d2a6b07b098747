"""The store on a really full disk (a 2 MiB tmpfs): what was appended while the disk was full
and flushed once space came back must survive a kill -9.

Found by ``python -m bench.chaos``: a write that failed with ENOSPC used to leave a torn
record in the log with later records appended after it, so the next open cut the log at the
tear and dropped everything written since. Flushes on the full disk raise nothing: they are
counted in the store's stats, and the samples wait in memory for the next flush.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.chaos_disk import mount_small_disk
from runtime.clock import VirtualClock
from tests.support.external import require_privilege
from tsdb import Store, StoreSettings, name_is

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_571_200_000
APPENDED = 3_100

WRITER = """
import os, signal, sys
from pathlib import Path
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings

disk = Path(sys.argv[1])
store = Store(StoreSettings(data_dir=disk / "store"), VirtualClock(start=1_767_571_200.0))
ref = store.ref({"__name__": "x"})
t0 = 1_767_571_200_000
for i in range(100):
    store.append(ref, t0 + i * 1000, float(i))
store.flush()
fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
size = 1 << 16
while size:
    try:
        os.write(fd, b"\\0" * size)
    except OSError:
        size //= 2
os.close(fd)
for i in range(100, 3000):
    store.append(ref, t0 + i * 1000, float(i))
    store.flush()
failed = store.stats().write_failures.get("flush", 0)
os.unlink(disk / "filler")
for i in range(3000, 3100):
    store.append(ref, t0 + i * 1000, float(i))
store.flush()
assert not store.stats().write_failing
print(failed, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_samples_flushed_after_the_disk_was_full_survive_a_kill(tmp_path: Path) -> None:
    disk = mount_small_disk(tmp_path / "disk", 2)
    require_privilege("mounting a tmpfs", disk is not None, "run the tests as root")
    assert disk is not None
    try:
        done = subprocess.run(
            [sys.executable, "-c", WRITER, str(disk.path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()
        assert int(done.stdout) > 0  # the disk really was full
        store = Store(StoreSettings(data_dir=disk.path / "store"), VirtualClock(start=T0 / 1000))
        try:
            (series,) = store.select([name_is("x")], T0, T0 + APPENDED * 1000)
        finally:
            store.close()
        assert len(series.timestamps) == APPENDED
    finally:
        disk.unmount()
