"""The vertical policy counts the time a container was throttled at its limit as CPU it asked
for: the query over cAdvisor's counter, and the sizing that follows from it."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.controller.vertical import THROTTLED, VerticalKeeper, usage_queries
from autoscaler.controller.workload import ContainerView, WorkloadView
from autoscaler.policy.settings import VerticalSettings
from autoscaler.policy.vertical import cpu_need
from autoscaler.resource.model import VerticalSpec
from collectors.cluster_model import PodInfo
from promql import Engine
from runtime import names, names_kubelet
from runtime.clock import VirtualClock
from tsdb import Store, StoreSettings
from tsdb.labels import make_labels

START = 1_700_000_000.0


def test_cpu_need_is_usage_plus_throttled_cores() -> None:
    assert cpu_need(1.0, 0.6) == pytest.approx(1.6)
    assert cpu_need(0.4, None) == 0.4  # no limit, or no cAdvisor: usage alone
    assert cpu_need(0.4, -0.1) == 0.4  # a counter reset never lowers usage


def _view(pods: list[str]) -> WorkloadView:
    infos = tuple(
        PodInfo("shop", p, f"uid-{p}", "n1", "Running", True, None, {}, {}, "", (), START)
        for p in pods
    )
    containers = tuple(ContainerView(p, "app", {"cpu": 1.0}, {"cpu": 1.0}, 0, "") for p in pods)
    return WorkloadView("Deployment", "shop", "web", len(pods), len(pods), infos, containers)


def _keeper_target(throttled: float | None) -> float:
    keeper = VerticalKeeper(VerticalSettings(), 3600)
    view = _view(["web-1"])
    for minute in range(240):
        usage = {("web-1", "app", "cpu"): 1.0, ("web-1", "app", "memory"): 2.0**28}
        if throttled is not None:
            usage[("web-1", "app", THROTTLED)] = throttled
        keeper.observe(view, usage, START + 60 * minute)
    [plan] = keeper.decide(VerticalSpec(), view, START + 240 * 60)
    return plan.decisions["cpu"].target


def test_a_container_held_at_its_limit_is_sized_for_what_it_asked() -> None:
    at_limit = _keeper_target(None)
    throttled = _keeper_target(0.8)
    # Usage alone says 1 core (the limit); the throttled time says 1.8 were wanted.
    assert throttled > 1.7 > 1.1 > at_limit
    assert throttled == pytest.approx(at_limit * 1.8, rel=0.1)


def test_the_throttling_query_reads_cadvisors_counter_per_container() -> None:
    clock = VirtualClock(START)
    store = Store(StoreSettings(), clock, persistent=False)
    try:
        common = {
            "job": names_kubelet.KUBELET_JOB,
            "metrics_path": names_kubelet.CADVISOR_PATH,
            "namespace": "shop",
            "node": "n1",
            "instance": "10.0.0.1:10250",
            "image": "shop/web:1",
        }
        series = {
            ("web-1", "app"): 0.5,  # throttled half a core
            ("web-2", "app"): 0.0,
            ("other-1", "app"): 3.0,  # not the workload's pod
        }
        times = np.arange(0, 600_001, 30_000, dtype=np.int64) + int(START * 1000)
        for (pod, container), rate in series.items():
            labels = make_labels(
                {
                    "__name__": names_kubelet.CFS_THROTTLED_SECONDS,
                    "pod": pod,
                    "container": container,
                    **common,
                }
            )
            ref = store.ref(labels)
            values = (times - times[0]) / 1000 * rate
            store.append_batch(np.full(len(times), ref, np.int32), times, values)
        usage = make_labels(
            {
                "__name__": names.CONTAINER_CPU_CORES,
                "namespace": "shop",
                "pod": "web-1",
                "container": "app",
            }
        )
        store.append_batch(np.array([store.ref(usage)], np.int32), times[-1:], np.array([1.0]))
        queries = usage_queries(_view(["web-1", "web-2"]))
        result = Engine(store).instant(queries[THROTTLED], int(times[-1]))
        got = {dict(s.labels)["pod"]: float(s.values[-1]) for s in result.series}
        assert got == pytest.approx({"web-1": 0.5, "web-2": 0.0})
        assert all(
            dict(s.labels).keys() == {"namespace", "pod", "container"} for s in result.series
        )
    finally:
        store.close()
