"""The chart's shard mode: a StatefulSet whose pod names are the shards' identities, settings
that the service accepts, and the Lease rights the members need."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from autoscaler.settings import Settings
from tests.helm.helmchart import manifests

SHARED_STORE: dict[str, Any] = {
    "sharding": {"enabled": True},
    "replicaCount": 3,
    "config": {
        "storage": {"query_url": "http://prometheus.monitoring:9090"},
        "remote_write": [{"url": "http://prometheus.monitoring:9090/api/v1/write"}],
    },
}


def test_shards_are_a_statefulset_with_settings_foresight_accepts() -> None:
    rendered = manifests(SHARED_STORE)
    assert not rendered.of_kind("Deployment")
    sts = rendered.one("StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert "volumeClaimTemplates" not in sts["spec"]  # no persistence: an emptyDir each
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert rendered.one("Service", "foresight-headless")["spec"]["clusterIP"] == "None"
    env = {e["name"]: e for e in rendered.container()["env"]}
    # The pod's name is its identity, and so the name of its Lease.
    assert env["FORESIGHT_LEADER__IDENTITY"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.name"
    )
    settings = Settings.model_validate(yaml.safe_load(rendered.settings_text()))
    assert settings.sharding.replicas == 3
    assert settings.sharding.group == "foresight"
    assert settings.storage.query_url == "http://prometheus.monitoring:9090"


def test_shard_members_may_keep_and_list_their_leases() -> None:
    role = manifests(SHARED_STORE).one("Role", "foresight-leader")
    granted = {
        verb
        for rule in role["rules"]
        if "leases" in rule["resources"] and not rule.get("resourceNames")
        for verb in rule["verbs"]
    }
    assert granted == {"create", "list", "get", "update", "delete"}
    # Without shards only the leader's Lease, by name.
    plain = manifests({}).one("Role", "foresight-leader")
    unnamed = {v for r in plain["rules"] if not r.get("resourceNames") for v in r["verbs"]}
    assert unnamed == {"create"}


@pytest.mark.parametrize(
    ("missing", "message"),
    [("storage", "needs config.storage.query_url"), ("remote_write", "needs config.remote_write")],
)
def test_shards_without_a_shared_store_do_not_render(missing: str, message: str) -> None:
    values = {**SHARED_STORE, "config": dict(SHARED_STORE["config"])}
    del values["config"][missing]
    with pytest.raises(Exception, match=message):
        manifests(values)
