"""The settings the chart renders are settings foresight accepts, and values.yaml documents
every one of them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.settings import ENV_PREFIX, Settings, iter_settings_reference, load_settings
from tests.helm.helmchart import CHART, CI_VALUES, NAMESPACE, ci_values, manifests
from tests.helm.settings_schema import settings_schema

CASES = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def setting_paths() -> set[tuple[str, ...]]:
    """Every leaf setting as a path, e.g. ("store", "data_dir")."""
    return {
        tuple(env.removeprefix(ENV_PREFIX).lower().split("__"))
        for env, *_ in iter_settings_reference()
    }


def config_block(text: str) -> list[str]:
    """The lines of `config:` in values.yaml, up to the next top-level key."""
    lines = text.splitlines()
    start = lines.index("config:")
    block = []
    for line in lines[start + 1 :]:
        if line and not line.startswith((" ", "#")):
            break
        block.append(line)
    return block


def uncommented(block: list[str]) -> dict[str, Any]:
    """`config` with every `# key: value` line made active; `##` lines are prose."""
    active = []
    for line in block:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("##") or not stripped:
            continue
        active.append(indent + stripped.removeprefix("# "))
    data: dict[str, Any] = yaml.safe_load("\n".join(active))
    return data


def leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for key, value in data.items():
        if isinstance(value, dict) and value and (*prefix, key) not in setting_paths():
            out |= leaves(value, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


@pytest.mark.parametrize("case", CASES)
def test_rendered_settings_load_through_the_real_loader(case: str, tmp_path: Path) -> None:
    rendered = manifests(ci_values(case))
    config_file = tmp_path / "foresight.yaml"
    config_file.write_text(rendered.settings_text(), encoding="utf-8")
    settings = load_settings(config_file)
    assert settings.leader.namespace == NAMESPACE
    assert settings.server.port == rendered.container()["ports"][0]["containerPort"]
    data_mount = "/var/lib/foresight"
    assert str(settings.store.data_dir).startswith(data_mount + "/")
    assert str(settings.rules.state_dir).startswith(data_mount + "/")
    assert settings.log.format == "json"


def test_all_on_settings_reach_foresight(tmp_path: Path) -> None:
    config_file = tmp_path / "foresight.yaml"
    config_file.write_text(manifests(ci_values("all-on")).settings_text(), encoding="utf-8")
    settings = load_settings(config_file)
    assert settings.notify.route.group_interval == 300
    assert [r.name for r in settings.notify.receivers] == ["team", "pager"]
    assert settings.notify.route.routes[0].continue_ is True
    assert settings.cost.currency == "EUR"
    assert settings.leader.name == "fs-lease"
    assert settings.rules.files == [Path("/etc/foresight/rules")]
    assert settings.policy.horizontal.max_step_up == 10


def test_values_yaml_documents_every_setting() -> None:
    block = config_block((CHART / "values.yaml").read_text(encoding="utf-8"))
    documented = leaves(uncommented(block))
    assert documented == setting_paths()


def test_values_yaml_defaults_are_foresights_defaults(tmp_path: Path) -> None:
    """With every commented line made active, the file loads and changes nothing but what the
    chart sets on purpose."""
    block = config_block((CHART / "values.yaml").read_text(encoding="utf-8"))
    config_file = tmp_path / "all.yaml"
    config_file.write_text(yaml.safe_dump(uncommented(block)), encoding="utf-8")
    loaded = load_settings(config_file).model_dump(mode="json")
    defaults = Settings().model_dump(mode="json")
    chart_sets = {
        ("server", "host"),
        ("log", "format"),
        ("store", "data_dir"),
        ("rules", "state_dir"),
    }
    for group, fields in defaults.items():
        if not isinstance(fields, dict):  # a list, as remote_write
            assert loaded[group] == fields, group
            continue
        for name, default in fields.items():
            if (group, name) in chart_sets:
                continue
            assert loaded[group][name] == default, f"{group}.{name}"


def test_commented_lines_are_settings_or_prose() -> None:
    """A `#` line that is neither `## prose` nor `# key: value` would be lost silently."""
    block = config_block((CHART / "values.yaml").read_text(encoding="utf-8"))
    for line in block:
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("##"):
            assert re.fullmatch(r"# [a-z_]+: .+", stripped), line


def test_the_schema_of_config_is_generated_from_the_settings() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    config, definitions = settings_schema()
    message = "regenerate with: python -m tests.helm.settings_schema"
    assert schema["properties"]["config"] == config, message
    assert schema["definitions"] == definitions, message
