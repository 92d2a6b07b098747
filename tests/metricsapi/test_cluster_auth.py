"""The front proxy's settings from the ConfigMap kube-apiserver writes."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from autoscaler.metricsapi.auth import Refused, RequestHeader
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


def test_front_proxy_headers_name_the_user_groups_and_extra() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("X-Remote-User", "alice")
    headers.add("X-Remote-Group", "dev")
    headers.add("X-Remote-Group", "ops,sre")
    headers.add("X-Remote-Extra-Scopes", "a")
    headers.add("x-remote-extra-scopes", "b")
    headers.add("X-Remote-Extra-Acme.com%2Fproject", "p1")
    user = RequestHeader().user("front-proxy-client", headers)
    assert user is not None
    assert (user.name, user.groups) == ("alice", ("dev", "ops", "sre"))
    assert user.extra == (("acme.com/project", ("p1",)), ("scopes", ("a", "b")))
    assert RequestHeader().user("front-proxy-client", CIMultiDict()) is None
    with pytest.raises(Refused, match="'other' is not one of the allowed"):
        RequestHeader(allowed_names=frozenset({"front-proxy-client"})).user("other", headers)
