"""The container image, built and started as the chart's pod runs it.

`make image`'s script builds the image (with podman; a Debian base is made with mmdebstrap
when no registry image can be pulled). The container then gets what the rendered pod gives
it and nothing else: its command and arguments, its environment, a read-only root file
system, UID/GID 10001 with every capability dropped, and each volume mount as a bind mount
(ConfigMaps and Secrets read-only, emptyDirs writable by the pod's fsGroup). What a cluster
adds stands in as the kubelet would provide it: the service account's files (the simulator's
token and CA); the simulator listens on loopback, which the container reaches over the host's
network. As in tests/helm/test_start.py the API server is named by a kubeconfig (mounted
read-only, the one setting added): the Kubernetes client's in-cluster loader sends
``authorization: bearer ...``, a scheme the simulator does not yet take in lower case as the
API server does.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from runtime.clock import RealClock
from runtime.names import STORE_SAMPLES_APPENDED
from tests.helm.helmchart import REPO, manifests
from tests.helm.test_start import (
    POD_NAME,
    SERVICE_ACCOUNT_DIR,
    Pod,
    _create_namespace,
    _lease,
    _service_account,
    _wait_for_group,
    free_port,
    simulator,
    values,
)
from tests.support.external import require_binary
from tsdb.settings import StoreSettings
from tsdb.store import open_store

__all__ = ["simulator"]

# The first build makes the Debian base and downloads every wheel: minutes, not the suite's
# per-test two; later builds reuse the cached base and layers.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

TAG = "localhost/foresight:test"
MAX_MEGABYTES = 400
# The host's trust store, for pip inside the build behind an inspecting TLS proxy.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where podman runs inside a container without systemd: runc, cgroupfs, and the limits it is
# given (raising them is not permitted there).
ENGINE_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"]
KUBECONFIG = "/var/run/foresight-test/kubeconfig"
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman(*args: str) -> list[str]:
    return [require_binary("podman"), *ENGINE_FLAGS, *args]


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built by the script `make image` runs (cached layers make a rebuild quick)."""
    require_binary("podman")
    require_binary("runc")
    env = dict(os.environ, ENGINE="podman")
    if HOST_CA_BUNDLE.is_file():
        env["CA_BUNDLE"] = str(HOST_CA_BUNDLE)
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh"), TAG],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    return TAG


def _megabytes(image: str) -> float:
    size = subprocess.run(
        podman("image", "inspect", "--format", "{{.Size}}", image),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(size) / 1e6


def _fs_group_owns(path: Path, gid: int) -> None:
    """An emptyDir as the kubelet makes it for the pod's fsGroup: group-owned and writable."""
    path.chmod(0o2775)
    if os.geteuid() == 0:
        os.chown(path, gid, gid)
    else:
        subprocess.run(podman("unshare", "chown", f"{gid}:{gid}", str(path)), check=True)


def _run_argv(pod: Pod, image: str, name: str, kubeconfig: Path) -> list[str]:
    """`podman run` for the rendered pod's one container: nothing the pod does not say."""
    spec = pod.rendered.workload()["spec"]["template"]["spec"]
    container = pod.rendered.container()
    security = spec["securityContext"] | container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert security["allowPrivilegeEscalation"] is False
    argv = podman(
        "run",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        # Only the pod's own volumes: no tmpfs of podman's on /tmp, /run or /var/tmp.
        "--read-only-tmpfs=false",
        "--user",
        f"{security['runAsUser']}:{security['runAsGroup']}",
        "--group-add",
        str(security["fsGroup"]),
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        *LIMITS,
    )
    for key, value in pod.environment().items():
        argv += ["--env", f"{key}={value}"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        source = pod.path(mount["mountPath"])
        if "emptyDir" in volumes[mount["name"]]:
            _fs_group_owns(source, security["fsGroup"])
            argv += ["--volume", f"{source}:{mount['mountPath']}"]
        else:
            argv += ["--volume", f"{source}:{mount['mountPath']}:ro"]
    argv += ["--volume", f"{pod.path(SERVICE_ACCOUNT_DIR)}:{SERVICE_ACCOUNT_DIR}:ro"]
    argv += ["--volume", f"{kubeconfig}:{KUBECONFIG}:ro"]
    argv += ["--env", f"FORESIGHT_KUBERNETES__KUBECONFIG={KUBECONFIG}"]
    (command,) = container["command"]
    return [*argv, "--entrypoint", command, image, *container["args"]]


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"foresight-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(podman("rm", "--force", "--time", "0", name), capture_output=True, check=False)


def test_the_image_is_small(image: str) -> None:
    megabytes = _megabytes(image)
    print(f"image {image}: {megabytes:.0f} MB")
    assert megabytes <= MAX_MEGABYTES, f"{image} is {megabytes:.0f} MB"


def test_the_image_runs_as_the_chart_runs_it(
    image: str, simulator: Path, tmp_path: Path, container_name: str
) -> None:
    port, api_port = free_port(), free_port()
    rendered = manifests(values(port, api_port, tmp_path / "grafana" / "token"))
    pod = Pod(rendered, tmp_path / "root")
    pod.lay_out()
    # Pod.lay_out moves the settings' paths under its root for a process on the host; in the
    # container every mount is at its own path again.
    config = pod.path(rendered.container()["args"][1])
    config.write_text(config.read_text(encoding="utf-8").replace(str(pod.root), ""), "utf-8")
    _service_account(pod, simulator)
    _create_namespace(simulator)

    # The log goes to a file: a pipe nobody reads while waiting would fill and stall it.
    log = tmp_path / "container.log"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            _run_argv(pod, image, container_name, _readable(simulator, tmp_path)),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )
    try:
        _wait_leading(process, port, log)
        # SIGHUP reloads the rule files: a group added to the mounted rules appears.
        token = (pod.path(SERVICE_ACCOUNT_DIR) / "token").read_text(encoding="utf-8")
        rules = pod.path("/etc/foresight/rules")
        (rules / "added.yaml").write_text(
            "groups:\n- name: added-on-sighup\n  rules:\n  - record: x:up\n    expr: vector(1)\n",
            encoding="utf-8",
        )
        subprocess.run(
            podman("kill", "--signal", "HUP", container_name), check=True, stdout=subprocess.DEVNULL
        )
        _wait_for_group(process, api_port, token, "added-on-sighup")
        appended = _samples_appended(port)
        assert appended > 0
        # SIGTERM, as the kubelet stops a pod: a clean exit within the grace period.
        subprocess.run(
            podman("kill", "--signal", "TERM", container_name),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        grace = rendered.workload()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert process.wait(grace) == 0
    finally:
        if process.poll() is None:
            subprocess.run(podman("kill", container_name), capture_output=True, check=False)
            process.wait()
    stderr = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in stderr, stderr
    assert '"level": "ERROR"' not in stderr, stderr
    # The Lease was given up, and the store flushed into the pod's data volume.
    lease = _lease(simulator, rendered)
    assert not lease.spec.holder_identity, lease.spec
    # Every sample appended before SIGTERM is in the store the container left behind.
    section = yaml.safe_load(rendered.settings_text())["store"]
    host_dir = pod.path(section["data_dir"])
    store = open_store(StoreSettings(**(section | {"data_dir": host_dir})), RealClock())
    try:
        stats = store.stats()
    finally:
        store.close()
    assert stats.head_samples + stats.block_samples >= appended, (stats, appended)


def _readable(kubeconfig: Path, tmp_path: Path) -> Path:
    """The simulator's kubeconfig (its own mode is 0600, root's) readable by the container's
    user, as a mounted Secret is."""
    copy = tmp_path / "kubeconfig"
    copy.write_bytes(kubeconfig.read_bytes())
    copy.chmod(0o644)
    return copy


def _wait_leading(process: subprocess.Popen[str], port: int, log: Path) -> None:
    """Ready, and leading under the pod's name; the container's log on failure."""
    leading = f'foresight_leader{{identity="{POD_NAME}"}} 1.0'
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
        while True:
            problem = None
            if process.poll() is not None:
                problem = f"the container exited with {process.returncode}"
            elif time.monotonic() > deadline:
                problem = "foresight did not become ready and lead"
            if problem is not None:
                logs = log.read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"{problem}:\n{logs[-6000:]}", pytrace=False)
            try:
                if http.get("/readyz").status_code == 200 and leading in http.get("/metrics").text:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)


def _samples_appended(port: int) -> float:
    """The store's appended samples, as the container's /metrics reports them."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == STORE_SAMPLES_APPENDED:
                return sample.value
    raise AssertionError(f"{STORE_SAMPLES_APPENDED} missing from /metrics")
