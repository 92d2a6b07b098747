"""The family recorder: what it writes, and the staleness marker of a series it no longer
writes."""

from __future__ import annotations

from pathlib import Path

from runtime.clock import VirtualClock
from runtime.families import Family
from tsdb import Store, StoreSettings, name_is
from tsdb.recorder import FamilyRecorder
from tsdb.store import is_stale

T0_MS = 1_767_225_600_000


def _family(*pods: str) -> Family:
    family = Family("foresight_pod_ready", "gauge", "1 when the pod is ready.")
    for pod in pods:
        family.add(1.0, pod=pod)
    return family


def test_a_series_no_longer_written_gets_a_staleness_marker(tmp_path: Path) -> None:
    clock = VirtualClock(T0_MS / 1000)
    store = Store(StoreSettings(data_dir=tmp_path), clock)
    recorder = FamilyRecorder(store, {"shard": "a"})
    assert recorder.record([_family("p1", "p2", "p3")], T0_MS) == 3
    assert recorder.record([_family("p1", "p3")], T0_MS + 15_000) == 2
    assert recorder.record([_family("p1", "p3")], T0_MS + 30_000) == 2
    selected = store.select([name_is("foresight_pod_ready")], T0_MS, T0_MS + 30_000)
    by_pod = {dict(s.labels)["pod"]: s for s in selected}
    assert {dict(s.labels)["shard"] for s in selected} == {"a"}
    gone = by_pod["p2"]
    assert gone.timestamps.tolist() == [T0_MS, T0_MS + 15_000]
    assert not is_stale(float(gone.values[0])) and is_stale(float(gone.values[1]))
    for pod in ("p1", "p3"):
        assert not any(is_stale(float(v)) for v in by_pod[pod].values)
        assert len(by_pod[pod].timestamps) == 3
    store.close()
