"""The external_metrics settings: off by default, TLS required when on, errors naming the
field and the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.settings import Settings, SettingsError, iter_settings_reference, load_settings


def test_off_by_default_and_documented() -> None:
    assert Settings().external_metrics.enabled is False
    documented = {env for env, *_ in iter_settings_reference()}
    assert "FORESIGHT_EXTERNAL_METRICS__REQUESTHEADER_CLIENT_CA_FILE" in documented


def test_enabled_without_a_certificate_names_the_field_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("external_metrics:\n  enabled: true\n", encoding="utf-8")
    with pytest.raises(
        SettingsError, match=r"foresight.yaml:1:1: external_metrics: .*enabled needs tls_cert_file"
    ):
        load_settings(config)
    config.write_text(
        "external_metrics:\n  enabled: true\n  tls_cert_file: /c\n  tls_key_file: /k\n",
        encoding="utf-8",
    )
    assert load_settings(config).external_metrics.tls_key_file == Path("/k")
