"""Signals to ``foresight run`` as PID 1, as in its container (``ENTRYPOINT ["foresight"]``,
no init): SIGHUP reloads the rule files and never ends the process; SIGTERM and SIGINT stop it
gracefully, releasing the Lease and the store, with exit code 0.

PID 1 of a PID namespace gets from the kernel only the signals it has a handler for: a
service that relied on default actions would ignore ``docker stop`` until its SIGKILL. The
process is started in a new PID namespace (``unshare --pid --fork``, as root) and signalled
from outside it, as the container runtime does.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s

from tests.controller.conftest import Rig, open_rig
from tsdb import Store, StoreSettings

REPO = Path(__file__).resolve().parents[2]
IDENTITY = "replica-as-pid-1"
_LOADED = re.compile(r"loaded (\d+) rule groups")
RULE = "groups:\n- name: {name}\n  rules:\n  - record: x:{name}\n    expr: vector(1)\n"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "true"], capture_output=True, check=False, timeout=10
    )
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_unshare(), reason="needs `unshare --pid` (root, or unprivileged user namespaces)"
)


class Stderr:
    """The lines a process writes to stderr, read in a thread."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in self._stream:
            self.lines.append(raw.decode(errors="replace"))

    def loaded(self) -> list[int]:
        """The number of rule groups of each (re)load so far."""
        return [int(m[1]) for line in self.lines if (m := _LOADED.search(line))]

    def close(self) -> str:
        self._thread.join(10)
        self._stream.close()
        return "".join(self.lines)


async def _until(predicate: object, what: str, process: subprocess.Popen[bytes]) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(predicate):
        assert process.poll() is None, f"exited with {process.returncode} before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def _holder(rig: Rig) -> str | None:
    try:
        lease = k8s.CoordinationV1Api(rig.api).read_namespaced_lease("foresight-leader", "default")
    except k8s.ApiException:
        return None
    return lease.spec.holder_identity if lease.spec is not None else None


def _pid_1_of(unshare: subprocess.Popen[bytes]) -> int:
    """The host pid of the process ``unshare --fork`` started: PID 1 inside its namespace."""
    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
    [pid] = [int(c) for c in children]
    nspid = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if "NSpid" in line
    )
    assert nspid.split()[-1] == "1", nspid
    return pid


@pytest.mark.timeout(240)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_as_pid_1_sighup_reloads_and_a_stop_signal_releases_the_lease(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    async with open_rig(tmp_path, history=()) as rig:
        await _signals_to_pid_1(rig, tmp_path, stop_signal)


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``command`` as PID 1 of a new PID namespace (``--kill-child``: it dies with us)."""
    return subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _signals_to_pid_1(rig: Rig, tmp_path: Path, stop_signal: signal.Signals) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    rig.cluster.write_kubeconfig(kubeconfig)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "first.yaml").write_text(RULE.format(name="first"), encoding="utf-8")
    data = tmp_path / "pid1-data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FORESIGHT_")},
        "FORESIGHT_KUBERNETES__KUBECONFIG": str(kubeconfig),
        "FORESIGHT_STORE__DATA_DIR": str(data),
        "FORESIGHT_RULES__STATE_DIR": str(tmp_path / "pid1-alerts"),
        "FORESIGHT_RULES__FILES": f'["{rules}"]',
        "FORESIGHT_LEADER__NAMESPACE": "default",
        "FORESIGHT_LEADER__IDENTITY": IDENTITY,
        "FORESIGHT_SERVER__HOST": "127.0.0.1",
        "FORESIGHT_SERVER__PORT": "0",
        "FORESIGHT_SERVER__API_PORT": "0",
    }
    config = tmp_path / "foresight.yaml"
    config.write_text(
        "collectors:\n  kubelet_scheme: http\n  ca_file: null\n  token_file: null\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "autoscaler.cli.main", "--config", str(config), "run"]
    process = _start(command, env)
    stderr = Stderr(process)
    try:
        await _until(lambda: _holder(rig) == IDENTITY, "the Lease", process)
        pid = _pid_1_of(process)
        await _until(stderr.loaded, "the rule files", process)
        groups = stderr.loaded()[-1]
        (rules / "second.yaml").write_text(RULE.format(name="second"), encoding="utf-8")
        os.kill(pid, signal.SIGHUP)
        await _until(lambda: groups + 1 in stderr.loaded(), "the reload on SIGHUP", process)
        await asyncio.sleep(0.5)
        assert process.poll() is None, "SIGHUP ended the process"
        os.kill(pid, stop_signal)
        code = await asyncio.to_thread(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        text = stderr.close()
    assert code == 0, text[-3000:]
    # The simulator serves on this loop: the client's blocking call goes to a thread.
    assert await asyncio.to_thread(_holder, rig) == "", "the Lease was not released"
    assert "Traceback" not in text, text[-3000:]
    # The store was flushed and closed: its lock is free.
    Store(StoreSettings(data_dir=data), rig.clock).close()
