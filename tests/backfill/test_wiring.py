"""How ``foresight run`` wires the back-fill: only with ``history.prometheus_url``, and not
when queries go to a remote store."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client as k8s

from autoscaler.service import Service
from autoscaler.settings import Settings
from runtime.clock import VirtualClock


def service(tmp_path: Path, **groups: object) -> Service:
    settings = Settings.model_validate(
        {"store": {"data_dir": tmp_path / "data"}, "server": {"auth": "none"}, **groups}
    )
    return Service(settings, VirtualClock(start=0), api=k8s.ApiClient(), persistent=False)


@pytest.mark.parametrize(
    ("groups", "gate"),
    [
        ({}, False),
        ({"history": {"prometheus_url": "http://127.0.0.1:9"}}, True),
    ],
)
async def test_the_gate_is_there_with_a_url(tmp_path: Path, groups: object, gate: bool) -> None:
    assert isinstance(groups, dict)
    built = service(tmp_path, **groups)
    try:
        assert (built.history is not None) is gate
        assert (built.controller._actions is built.history) is gate
    finally:
        await built.close()


async def test_with_a_remote_query_store_the_history_url_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    built = service(
        tmp_path,
        history={"prometheus_url": "http://127.0.0.1:9"},
        storage={"query_url": "http://127.0.0.1:9"},
    )
    try:
        assert built.history is None
        assert "history.prometheus_url is not used with storage.query_url" in caplog.text
    finally:
        await built.close()
