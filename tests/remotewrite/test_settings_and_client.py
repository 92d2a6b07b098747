"""Settings of remote write as Prometheus names them, validated with the field in the message;
credentials go on the request only, never into a log line or an error."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from pydantic import ValidationError

from autoscaler.settings import Settings
from remotewrite.client import Rejected, RemoteClient, Retryable
from remotewrite.prompb import decode_request, encode_request
from remotewrite.queue import QueueManager
from remotewrite.settings import RemoteWriteSettings
from remotewrite.sizing import desired_shards
from runtime.clock import VirtualClock
from tests.helm.helmchart import manifests

SECRET = "s3cr3t-value"


def test_settings_load_as_in_prometheus() -> None:
    settings = Settings.model_validate(
        {
            "remote_write": [
                {
                    "url": "https://mimir.example/api/v1/push",
                    "name": "mimir",
                    "headers": {"X-Scope-OrgID": SECRET},
                    "basic_auth": {"username": "u", "password": SECRET},
                    "tls": {"ca_file": "/etc/ca.pem"},
                    "queue_config": {"max_shards": 4, "max_samples_per_send": 1000},
                },
                {"url": "http://prometheus:9090/api/v1/write"},
            ]
        }
    )
    first, second = settings.remote_write
    assert first.queue_name == "mimir"
    assert second.queue_name.startswith("rw-") and len(second.queue_name) == 9
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "ftp://x"}, "need http:// or https://"),
        ({"url": "http://x", "headers": {"Authorization": "x"}}, "set by remote write itself"),
        (
            {"url": "http://x", "bearer_token": "a", "basic_auth": {"username": "u"}},
            "set at most one of basic_auth, bearer_token",
        ),
        ({"url": "http://x", "queue_config": {"min_shards": 3, "max_shards": 2}}, "min_shards"),
        ({"url": "http://x", "name": "a b"}, "name 'a b'"),
    ],
)
def test_bad_settings_name_the_field(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        Settings.model_validate({"remote_write": [entry]})
    assert "remote_write.0" in str(raised.value)


def test_shards_follow_the_load_within_bounds() -> None:
    # 10,000 samples/s in, a shard delivers 2,000/s: five shards, within [1, 8].
    assert desired_shards(1, 1, 8, 0, 10_000, 2_000) == 5
    assert desired_shards(1, 1, 3, 0, 10_000, 2_000) == 3
    # A backlog of 600,000 samples is worked off within a minute.
    assert desired_shards(2, 1, 20, 600_000, 0, 2_000) == 5
    # Off by less than the tolerance, or not measured: no change.
    assert desired_shards(4, 1, 8, 0, 9_000, 2_000) == 4
    assert desired_shards(4, 1, 8, 0, 9_000, None) == 4
    assert desired_shards(9, 1, 8, 0, 0, None) == 8


class Recorder:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.status = 204

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        decode_request(await request.read())
        return web.Response(status=self.status, text="refused")


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/write", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}/write"
    await runner.cleanup()


async def test_credentials_go_on_the_request_and_nowhere_else(
    recorder: tuple[Recorder, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec, url = recorder
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    clock = VirtualClock()
    body = encode_request([])
    caplog.set_level(logging.DEBUG)
    for settings, want in [
        (
            RemoteWriteSettings(url=url, basic_auth={"username": "u", "password": SECRET}),
            "Basic " + base64.b64encode(f"u:{SECRET}".encode()).decode(),
        ),
        (RemoteWriteSettings(url=url, bearer_token_file=token_file), f"Bearer {SECRET}"),
        (RemoteWriteSettings(url=url, headers={"X-Scope-OrgID": SECRET}), None),
    ]:
        client = RemoteClient(settings, clock)
        try:
            await client.send(body)
            rec.status = 400
            with pytest.raises(Rejected) as refused:
                await client.send(body)
            rec.status = 503
            with pytest.raises(Retryable) as retry:
                await client.send(body)
            rec.status = 204
        finally:
            await client.aclose()
        assert rec.headers[-1].get("Authorization") == want
        for error in (refused.value, retry.value):
            assert SECRET not in str(error) and url.split("//")[1] in str(error)
    assert rec.headers[-1]["X-Scope-OrgID"] == SECRET
    assert SECRET not in caplog.text


def test_the_chart_readme_example_renders_and_loads() -> None:
    readme = (Path(__file__).resolve().parents[2] / "helm" / "foresight" / "README.md").read_text()
    section = readme[readme.index("### Remote write") :]
    example = section[section.index("```yaml") + 7 : section.index("```\n", 10)]
    values = yaml.safe_load(example)
    rendered = yaml.safe_load(manifests(values).settings_text())
    (entry,) = Settings.model_validate(rendered).remote_write
    assert entry.queue_name == "mimir"
    assert entry.basic_auth is not None and entry.basic_auth.password is None
    assert entry.queue_config.max_shards == 4
    # A password in `config` (a ConfigMap) is refused by the chart's schema.
    values["config"]["remote_write"][0]["basic_auth"]["password"] = SECRET
    with pytest.raises(Exception, match=r"basic_auth/password': got string, want null"):
        manifests(values)


def test_credentials_in_the_url_stay_off_metrics(tmp_path: Path) -> None:
    settings = RemoteWriteSettings(url=f"http://user:{SECRET}@127.0.0.1:1/api/v1/write")
    queue = QueueManager(settings, tmp_path, VirtualClock())
    urls = {labels["url"] for family in queue.families() for labels, _ in family.samples}
    assert urls == {"http://127.0.0.1:1/api/v1/write"}
