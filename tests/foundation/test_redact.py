"""Credentials never reach the output: ``foresight settings``, the logs, command errors and
the notification outbox mask passwords and tokens in URLs and credential headers."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest

from alerts.notify.delivery import Delivery
from alerts.notify.outbox import Entry, Outbox
from alerts.notify.targets import Target
from alerts.settings import DeliverySettings
from autoscaler.cli.main import main
from autoscaler.logs import configure_logging
from runtime.clock import VirtualClock
from runtime.redact import MASK, redact_headers, redact_settings, redact_text, redact_url

SECRETS = ("hunter2", "tok-123", "abc.def", "dXNlcjpwdw==", "k-9", "s3cret", "q-77")

CONFIG = """\
rules:
  external_url: https://foresight.example/?access_token=q-77
notify:
  route:
    receiver: team
  receivers:
  - name: team
    webhook_configs:
    - url: https://bob:hunter2@hooks.example/in?token=tok-123&team=ops
      headers:
        Authorization: Bearer abc.def
        X-Scope-OrgID: tenant-1
    alertmanager_configs:
    - url: https://am.example:9093/?api_key=k-9
      headers:
        Authorization: Basic dXNlcjpwdw==
webhook:
  secret: s3cret
"""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:hunter2@h.example/x", f"https://bob:{MASK}@h.example/x"),
        ("https://ghp_tok@h.example/x", f"https://{MASK}@h.example/x"),
        ("http://h.example/x?token=t&a=1", f"http://h.example/x?token={MASK}&a=1"),
        ("http://h/x?access_token=t", f"http://h/x?access_token={MASK}"),
        ("http://h/x?api_key=t&apikey=u", f"http://h/x?api_key={MASK}&apikey={MASK}"),
        ("http://h/x?X-Amz-Signature=t", f"http://h/x?X-Amz-Signature={MASK}"),
        ("http://h:9093/api/v2/alerts?g0.expr=up", "http://h:9093/api/v2/alerts?g0.expr=up"),
        ("http://127.0.0.1:8080/metrics", "http://127.0.0.1:8080/metrics"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_headers_keeps_the_scheme_and_harmless_headers() -> None:
    assert redact_headers(
        {
            "Authorization": "Bearer abc",
            "proxy-authorization": "Basic xyz",
            "X-Api-Key": "k",
            "Cookie": "sid=1",
            "X-Auth-Token": "t",
            "X-Scope-OrgID": "tenant-1",
            "Content-Type": "application/json",
        }
    ) == {
        "Authorization": f"Bearer {MASK}",
        "proxy-authorization": f"Basic {MASK}",
        "X-Api-Key": MASK,
        "Cookie": MASK,
        "X-Auth-Token": MASK,
        "X-Scope-OrgID": "tenant-1",
        "Content-Type": "application/json",
    }


def test_redact_settings_leaves_paths_to_secrets() -> None:
    dump = {"collectors": {"token_file": "/var/run/token"}, "x": {"password": "p"}}
    assert redact_settings(dump) == {
        "collectors": {"token_file": "/var/run/token"},
        "x": {"password": MASK},
    }


def test_settings_output_masks_headers_and_url_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text(CONFIG)
    assert main(["--config", str(config), "settings"]) == 0
    out = capsys.readouterr().out
    for secret in SECRETS:
        assert secret not in out
    shown = json.loads(out)
    (team,) = shown["notify"]["receivers"]
    (hook,) = team["webhook_configs"]
    assert hook["url"] == f"https://bob:{MASK}@hooks.example/in?token={MASK}&team=ops"
    assert hook["headers"] == {"Authorization": f"Bearer {MASK}", "X-Scope-OrgID": "tenant-1"}
    (am,) = team["alertmanager_configs"]
    assert am["headers"] == {"Authorization": f"Basic {MASK}"}
    assert am["url"] == f"https://am.example:9093/?api_key={MASK}"
    assert shown["rules"]["external_url"] == f"https://foresight.example/?access_token={MASK}"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_mask_credentials_in_urls(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(fmt, "INFO", stream)  # type: ignore[arg-type]
    try:
        logging.getLogger("test.redact").warning(
            "POST %s failed",
            "https://bob:hunter2@hooks.example/in?token=tok-123",
            extra={"target": "http://h/x?api_key=k-9"},
        )
    finally:
        configure_logging("text", "WARNING")
    text = stream.getvalue()
    assert "hooks.example" in text
    for secret in SECRETS:
        assert secret not in text


def test_redact_text_finds_every_url() -> None:
    text = "ConnectError: http://a:hunter2@127.0.0.1:1/x and https://h/?token=tok-123."
    shown = redact_text(text)
    assert "hunter2" not in shown and "tok-123" not in shown
    assert shown.startswith("ConnectError: http://a:") and "127.0.0.1:1/x" in shown


async def test_delivery_errors_kept_in_the_outbox_are_masked(tmp_path: Path) -> None:
    class Failing(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            # httpx names the URL in some errors, e.g. an invalid one or a redirect loop.
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    url = "http://bob:hunter2@127.0.0.1:9/in?token=tok-123"
    target = Target("team", "webhook", 0, url)
    clock = VirtualClock(1_767_225_600.0)
    outbox = Outbox(tmp_path, retention_ms=3_600_000)
    async with httpx.AsyncClient(transport=Failing()) as client:
        delivery = Delivery({target.id: target}, outbox, clock, DeliverySettings(), client)
        entry = Entry("e1", target.id, b"{}", 0, "g")
        attempt = await delivery.attempt(entry)
    outbox.close()
    await clock.aclose()
    assert attempt.result == "retry" and "127.0.0.1:9" in attempt.error
    assert "hunter2" not in attempt.error and "tok-123" not in attempt.error
