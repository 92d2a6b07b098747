"""The front proxy's settings from the ConfigMap kube-apiserver writes."""

from __future__ import annotations

import pytest

from autoscaler.metricsapi.cluster_auth import parse_front_proxy


def test_the_clusters_front_proxy_configmap_is_read_as_kube_apiserver_writes_it() -> None:
    data = {
        "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\n...",
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    }
    parsed = parse_front_proxy(data)
    assert parsed is not None
    header, ca = parsed
    assert header.allowed_names == frozenset({"front-proxy-client"})
    assert header.username_headers == ("X-Remote-User",)
    assert ca.startswith("-----BEGIN")
    assert parse_front_proxy({"client-ca-file": "x"}) is None
    with pytest.raises(ValueError, match="requestheader-allowed-names: not a JSON list"):
        parse_front_proxy({**data, "requestheader-allowed-names": "front-proxy-client"})
