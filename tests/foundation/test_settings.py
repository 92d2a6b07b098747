from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from autoscaler.settings import Settings, SettingsError, load_settings, read_config_file


def test_defaults_are_valid() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.store.flush_interval_seconds <= 5
    assert settings.log.format == "text"


def test_environment_sets_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__FLUSH_INTERVAL_SECONDS", "2.5")
    monkeypatch.setenv("FORESIGHT_WEBHOOK__SECRET", "hunter2")
    settings = load_settings()
    assert settings.store.flush_interval_seconds == 2.5
    assert isinstance(settings.webhook.secret, SecretStr)
    assert settings.webhook.secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()


def test_file_then_environment_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("log:\n  level: DEBUG\n  format: json\nserver:\n  port: 9000\n")
    monkeypatch.setenv("FORESIGHT_SERVER__PORT", "9100")
    settings = load_settings(config, {"log": {"format": "text"}})
    assert settings.log.level == "DEBUG"
    assert settings.server.port == 9100
    assert settings.log.format == "text"


def test_invalid_value_in_file_names_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("store:\n  data_dir: /var/lib/foresight\n  flush_interval_seconds: 9\n")
    with pytest.raises(SettingsError) as err:
        load_settings(config)
    assert (
        f"{config}:3:27: store.flush_interval_seconds: Input should be less than or equal to 5"
        in str(err.value)
    )


def test_unknown_key_lists_the_valid_ones(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("server:\n  prot: 80\n")
    with pytest.raises(
        SettingsError,
        match=r"foresight.yaml:2:3: server.prot: unknown setting \(valid: api_port, auth, "
        r"auth_cache_seconds, auth_deny_cache_seconds, host, huge_pages, port, protect_metrics, "
        r"render_metrics_in_child, "
        r"tls_cert_file, tls_key_file, token_file\)",
    ):
        load_settings(config)


def test_invalid_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_SERVER__PORT", "http")
    with pytest.raises(
        SettingsError, match=r"environment variable FORESIGHT_SERVER__PORT: server\.port"
    ):
        load_settings()


def test_cross_field_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_STORE__MINUTE_RETENTION_DAYS", "1")
    monkeypatch.setenv("FORESIGHT_STORE__FIVE_MINUTE_RETENTION_DAYS", "0.5")
    with pytest.raises(
        SettingsError, match="five_minute_retention_days must be >= minute_retention_days"
    ):
        load_settings()


def test_broken_yaml_names_the_position(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("store:\n  data_dir: [unclosed\n")
    with pytest.raises(SettingsError, match=r"bad.yaml:3:1: invalid YAML"):
        read_config_file(config)
    with pytest.raises(SettingsError, match="cannot read settings file"):
        read_config_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="must be a mapping"):
        read_config_file(tmp_path / "list.yaml")


def test_webhook_defaults_fill_the_receivers_that_set_none() -> None:
    settings = Settings.model_validate(
        {
            "webhook": {"secret": "shared", "timeout_seconds": 3},
            "notify": {
                "route": {"receiver": "a"},
                "receivers": [
                    {
                        "name": "a",
                        "webhook_configs": [
                            {"url": "http://127.0.0.1:1/a"},
                            {"url": "http://127.0.0.1:1/b", "secret": "own", "timeout_seconds": 7},
                            {"url": "http://127.0.0.1:1/c", "secret_file": "/run/hmac"},
                        ],
                    }
                ],
            },
        }
    )
    a, b, c = settings.webhook.apply_to(settings.notify).receivers[0].webhook_configs
    assert a.secret is not None and a.secret.get_secret_value() == "shared"
    assert a.timeout_seconds == 3
    assert b.secret is not None and b.secret.get_secret_value() == "own"
    assert b.timeout_seconds == 7
    assert c.secret is None and c.secret_file is not None
