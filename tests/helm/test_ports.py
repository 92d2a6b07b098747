"""Two ports in the pod, the Service and the probes: metrics (scraped, probed) and the API
(tokens required); the chart's settings listen on every address of the pod."""

from __future__ import annotations

from pathlib import Path

import yaml

from autoscaler.settings import load_settings
from tests.helm.helmchart import MONITORING_API, ci_values, manifests


def test_container_service_and_probes_use_the_two_ports(tmp_path: Path) -> None:
    rendered = manifests(ci_values("all-on"))
    config = tmp_path / "foresight.yaml"
    config.write_text(rendered.settings_text(), encoding="utf-8")
    server = load_settings(config).server
    assert server.host == "0.0.0.0"
    assert server.protect_metrics
    ports = {p["name"]: p["containerPort"] for p in rendered.container()["ports"]}
    assert (
        ports
        == {"metrics": server.port, "api": server.api_port}
        == {
            "metrics": 8080,
            "api": 9444,
        }
    )
    container = rendered.container()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"
    service = next(s for s in rendered.of_kind("Service") if "clusterIP" not in s["spec"])
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("metrics", 8080, "metrics"),
        ("api", 9443, "api"),
    ]


def test_the_service_monitor_scrapes_the_metrics_port() -> None:
    plain = manifests({"serviceMonitor": {"enabled": True}}, api_versions=MONITORING_API)
    (endpoint,) = plain.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and "bearerTokenFile" not in endpoint
    protected = manifests(
        {"serviceMonitor": {"enabled": True}, "config": {"server": {"protect_metrics": True}}},
        api_versions=MONITORING_API,
    )
    (endpoint,) = protected.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_the_default_settings_listen_on_the_pods_addresses() -> None:
    server = yaml.safe_load(manifests({}).settings_text())["server"]
    assert server == {"host": "0.0.0.0", "port": 8080, "api_port": 8081}


def test_notes_say_how_to_reach_the_api() -> None:
    notes = manifests({}).notes
    assert "--clusterrole=foresight-silence-editor" in notes
    assert "foresight silence --url http://127.0.0.1:8081 --token-file" in notes
    open_api = manifests({"config": {"server": {"auth": "none"}}}).notes
    assert "WARNING: config.server.auth is none" in open_api


def test_an_api_certificate_from_a_secret() -> None:
    rendered = manifests({"apiTls": {"existingSecret": "foresight-api-tls"}})
    container = rendered.container()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FORESIGHT_SERVER__TLS_CERT_FILE"] == "/etc/foresight/tls/tls.crt"
    assert env["FORESIGHT_SERVER__TLS_KEY_FILE"] == "/etc/foresight/tls/tls.key"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "api-tls"]
    assert mount == {"name": "api-tls", "mountPath": "/etc/foresight/tls", "readOnly": True}
    assert "subPath" not in mount  # a renewed Secret must reach the pod
    volumes = rendered.workload()["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "api-tls"]
    assert volume["secret"]["secretName"] == "foresight-api-tls"
    assert "https://127.0.0.1:8081" in rendered.notes
    assert "tokens cross the pod network in clear" in manifests({}).notes
