"""The chart README's example of ``config.history`` renders, loads, and finds its files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from autoscaler.settings import load_settings
from tests.helm.helmchart import CHART, manifests


def readme_example() -> dict[str, object]:
    text = (CHART / "README.md").read_text(encoding="utf-8")
    section = text.split("### History from an existing Prometheus", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    values: dict[str, object] = yaml.safe_load(block.group(1))
    return values


def test_the_readme_example_renders_and_mounts_its_credentials(tmp_path: Path) -> None:
    rendered = manifests(readme_example())
    config = tmp_path / "foresight.yaml"
    config.write_text(rendered.settings_text(), encoding="utf-8")
    history = load_settings(config).history
    assert history.prometheus_url == "https://prometheus.monitoring:9090"
    mounts = [m["mountPath"] for m in rendered.container()["volumeMounts"]]
    for path in (history.bearer_token_file, history.ca_file):
        assert path is not None
        assert any(str(path).startswith(m.rstrip("/") + "/") for m in mounts), (path, mounts)
