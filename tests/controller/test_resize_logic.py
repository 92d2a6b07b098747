"""The pure parts of in-place resizing: Kubernetes' memory limit rule and resizePolicy, the
answer that means pods/resize is not served, and what the cluster model reads of a pod."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from autoscaler.controller.kube_actions import resize_unserved
from autoscaler.controller.resize import in_place_change
from autoscaler.controller.settings import ControllerSettings
from autoscaler.resource.model import UpdateMode, VerticalSpec
from collectors.cluster_model import parse_pod
from collectors.kube import KubeApiError

MI = 2**20
RESTART = {"memory": "RestartContainer"}


def test_a_memory_decrease_with_restart_container_goes_in_place_and_restarts() -> None:
    change = in_place_change(
        {"memory": 1024 * MI},
        {"memory": 2048 * MI},
        RESTART,
        {"memory": 128 * MI},
        {"memory": 256 * MI},
    )
    assert change.requests == {"memory": 128 * MI}
    assert change.limits == {"memory": 256 * MI}
    assert change.restarts and not change.needs_restart and not change.memory_limit_kept


def test_a_memory_limit_decrease_without_restart_keeps_the_limit() -> None:
    change = in_place_change(
        {"memory": 1024 * MI}, {"memory": 2048 * MI}, {}, {"memory": 128 * MI}, {"memory": 256 * MI}
    )
    assert change.requests == {"memory": 128 * MI}
    assert change.limits == {"memory": 2048 * MI}
    assert change.memory_limit_kept and change.needs_restart and not change.restarts


def test_memory_is_left_alone_when_request_equals_limit() -> None:
    # Lowering the request alone would turn a Guaranteed pod Burstable: refused by the API.
    change = in_place_change(
        {"cpu": 1.0, "memory": 512 * MI},
        {"cpu": 1.0, "memory": 512 * MI},
        {"memory": "NotRequired"},
        {"cpu": 0.5, "memory": 256 * MI},
        {"cpu": 0.5, "memory": 256 * MI},
    )
    assert change.requests == {"cpu": 0.5}
    assert change.limits == {"cpu": 0.5}
    assert change.needs_restart and not change.memory_limit_kept


def test_increases_and_unlimited_memory_need_nothing_special() -> None:
    up = in_place_change(
        {"memory": 128 * MI}, {"memory": 512 * MI}, {}, {"memory": 256 * MI}, {"memory": 1024 * MI}
    )
    assert (up.restarts, up.needs_restart, up.memory_limit_kept) == (False, False, False)
    down = in_place_change({"memory": 1024 * MI}, {}, {}, {"memory": 128 * MI}, {})
    assert down.requests == {"memory": 128 * MI} and not down.needs_restart


def test_restart_follows_the_policy_of_the_resources_that_change() -> None:
    cpu_only = in_place_change({"cpu": 0.1, "memory": 128 * MI}, {}, RESTART, {"cpu": 0.2}, {})
    assert not cpu_only.restarts  # memory's policy does not apply to a cpu change
    cpu_policy = in_place_change({"cpu": 0.1}, {}, {"cpu": "RestartContainer"}, {"cpu": 0.2}, {})
    assert cpu_policy.restarts


@pytest.mark.parametrize(
    ("status", "message", "unserved"),
    [
        (404, "the server could not find the requested resource", True),
        (405, "the server does not allow this method on the requested resource", True),
        (404, 'pods "web-1" not found', False),
        (422, 'Pod "web-1" is invalid', False),
        (0, "cannot reach the API server", False),
    ],
)
def test_which_answers_mean_pods_resize_is_not_served(
    status: int, message: str, unserved: bool
) -> None:
    assert resize_unserved(KubeApiError(status, message)) is unserved


def _pod(conditions: list[dict[str, Any]], policy: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u"},
        "spec": {"containers": [{"name": "app", "resizePolicy": policy}]},
        "status": {"phase": "Running", "conditions": conditions},
    }


def test_the_cluster_model_reads_resize_conditions_and_policy() -> None:
    pod = parse_pod(
        _pod(
            [
                {"type": "Ready", "status": "True"},
                {
                    "type": "PodResizePending",
                    "status": "True",
                    "reason": "Deferred",
                    "message": "Node didn't have enough resource: memory",
                },
            ],
            [{"resourceName": "memory", "restartPolicy": "RestartContainer"}],
        )
    )
    assert pod.resize_pending == ("Deferred", "Node didn't have enough resource: memory")
    assert not pod.resize_in_progress
    assert pod.containers[0].resize_policy == {"memory": "RestartContainer"}
    busy = parse_pod(_pod([{"type": "PodResizeInProgress", "status": "True"}], []))
    assert busy.resize_in_progress and busy.resize_pending is None
    assert busy.containers[0].resize_policy == {}


def test_the_update_mode_and_its_settings() -> None:
    spec = VerticalSpec.model_validate({"updateMode": "InPlaceOrRecreate"})
    assert spec.update_mode is UpdateMode.IN_PLACE_OR_RECREATE
    with pytest.raises(ValidationError, match="resize_reprobe_seconds"):
        ControllerSettings(resize_reprobe_seconds=0)
    with pytest.raises(ValidationError, match="resize_infeasible_timeout_seconds"):
        ControllerSettings(resize_infeasible_timeout_seconds=-1)
