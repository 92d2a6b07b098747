"""Mistakes in the settings sources stop foresight instead of being ignored: a key repeated
in the YAML file, a ``FORESIGHT_GROUP__FIELD`` variable naming no setting. Variables that are
not settings (the test suite's own, Kubernetes' service links) and the Helm chart's pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoscaler.cli.main import main
from autoscaler.settings import SettingsError, check_environment, load_settings
from tests.helm.helmchart import CI_VALUES, ci_values, manifests


def test_duplicate_key_names_file_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("store:\n  data_dir: /a\n  fsync: true\n  data_dir: /b\n")
    with pytest.raises(SettingsError) as err:
        load_settings(config)
    assert str(err.value) == f'{config}:4:3: duplicate key "data_dir" (first on line 2)'


def test_every_duplicate_is_reported_at_any_depth(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text(
        "log: {level: INFO, level: DEBUG}\n"
        "notify:\n"
        "  receivers:\n"
        "  - name: a\n"
        "    name: b\n"
        "log:\n"
        "  format: json\n"
    )
    with pytest.raises(SettingsError) as err:
        load_settings(config)
    assert str(err.value).splitlines() == [
        "invalid settings file:",
        f'  {config}:1:20: duplicate key "level" (first on line 1)',
        f'  {config}:5:5: duplicate key "name" (first on line 4)',
        f'  {config}:6:1: duplicate key "log" (first on line 1)',
    ]


def test_duplicate_key_exits_2_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("server:\n  port: 80\n  port: 81\n")
    assert main(["--config", str(config), "settings"]) == 2
    assert capsys.readouterr().err == (
        f'foresight: {config}:3:3: duplicate key "port" (first on line 2)\n'
    )


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text(
        "notify:\n"
        "  receivers:\n"
        "  - name: a\n"
        "    webhook_configs:\n"
        "    - &hook {url: 'http://127.0.0.1:1/a', max_alerts: 5}\n"
        "    - <<: *hook\n"
        "      url: 'http://127.0.0.1:1/b'\n"
        "  route: {receiver: a}\n"
    )
    hooks = load_settings(config).notify.receivers[0].webhook_configs
    assert [(h.url, h.max_alerts) for h in hooks] == [
        ("http://127.0.0.1:1/a", 5),
        ("http://127.0.0.1:1/b", 5),
    ]


def test_misspelt_group_exits_2_naming_the_variable_and_the_groups(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_STOER__DATA_DIR", "/x")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err
    assert 'environment variable FORESIGHT_STOER__DATA_DIR: unknown group "stoer"' in err
    assert "(valid: collectors, controller, cost, external_metrics, forecast, history," in err
    assert err.rstrip().endswith("did you mean FORESIGHT_STORE__DATA_DIR?")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "FORESIGHT_STORE__DATADIR",
            'unknown setting "store.datadir" (valid: block_duration_minutes, data_dir, ',
        ),
        ("foresight_store__datadir", "did you mean FORESIGHT_STORE__DATA_DIR?"),
        ("FORESIGHT_NOTIFY__ROUTE__RECIEVER", "did you mean FORESIGHT_NOTIFY__ROUTE__RECEIVER?"),
        ("FORESIGHT_QWERTY__X", 'unknown group "qwerty" (valid: collectors,'),
    ],
)
def test_unknown_setting_in_a_group(name: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        check_environment({name: "1"})
    assert f"environment variable {name}: " in str(err.value)
    assert message in str(err.value)
    if name == "FORESIGHT_QWERTY__X":
        assert "did you mean" not in str(err.value)


def test_variables_that_are_not_settings_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    check_environment(
        {
            # The test suite's external data, and what Kubernetes' service links inject.
            "FORESIGHT_TEST_DATA": "/data",
            "FORESIGHT_SERVICE_HOST": "10.0.0.1",
            "FORESIGHT_PORT_8080_TCP_ADDR": "10.0.0.1",
            # A whole group as JSON; a key inside a dict setting.
            "FORESIGHT_STORE": '{"fsync": true}',
            "FORESIGHT_RULES__EXTERNAL_LABELS__CLUSTER": "c1",
            "OTHER__VAR": "x",
        }
    )
    check_environment(os.environ)
    monkeypatch.setenv("FORESIGHT_RULES__EXTERNAL_LABELS__CLUSTER", "c1")
    assert load_settings().rules.external_labels == {"cluster": "c1"}


@pytest.mark.parametrize("case", [p.name.removesuffix("-values.yaml") for p in CI_VALUES])
def test_the_charts_environment_variables_are_settings(case: str) -> None:
    env = manifests(ci_values(case)).container().get("env", [])
    names = {e["name"]: "x" for e in env}
    assert {"FORESIGHT_LEADER__IDENTITY", "FORESIGHT_LEADER__NAMESPACE"} <= set(names)
    check_environment(names)
