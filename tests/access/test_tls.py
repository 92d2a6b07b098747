"""HTTPS on the API port: tokens never travel in clear; a renewed certificate is served
without a restart; a broken renewal keeps the old one."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import httpx
import pytest

from access import ServingTls, TlsFilesError
from autoscaler.cli.main import main
from autoscaler.settings import SettingsError, load_settings
from runtime.clock import VirtualClock
from simulator.tls import ServingCertificate, new_ca
from tests.access.conftest import SILENCE, TOKENS, bearer, serve

ADMIN = "admin-token-0123456789"


def write(cert: ServingCertificate, directory: Path) -> tuple[Path, Path, Path]:
    """tls.crt, tls.key and ca.crt, as a kubernetes.io/tls Secret mounts them."""
    paths = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    for path, pem in zip(paths, (cert.cert_pem, cert.key_pem, cert.ca_pem), strict=True):
        path.write_bytes(pem)
    return paths


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def test_the_api_over_https(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key, ca = write(new_ca().issue(), tmp_path)
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(TOKENS)
    (tmp_path / "token").write_text(ADMIN)
    async with serve(
        tmp_path, auth="token-file", token_file=tokens, tls_cert_file=cert, tls_key_file=key
    ) as s:
        url = f"https://127.0.0.1:{s.service.api_port}"
        async with httpx.AsyncClient(base_url=url, verify=client_context(ca)) as https:
            created = await https.post("/api/v2/silences", json=SILENCE, headers=bearer(ADMIN))
            assert created.status_code == 200
        # Plain HTTP is not answered: no token is ever read off a clear connection.
        with pytest.raises(httpx.TransportError):
            await s.http.post("/api/v2/silences", json=SILENCE, headers=bearer(ADMIN))
        # Nor is an unverified certificate accepted by clients that check it.
        async with httpx.AsyncClient(base_url=url) as unverified:
            with pytest.raises(httpx.ConnectError):
                await unverified.get("/api/v2/silences")
        # The metrics port stays plain HTTP for Prometheus and the probes.
        assert (await s.metrics.get("/healthz")).status_code == 200
        argv = ["silence", "--url", url, "--token-file", str(tmp_path / "token")]
        code = await asyncio.to_thread(main, [*argv, "--ca-file", str(ca), "list", "-q"])
        assert (code, capsys.readouterr().out.split()) == (0, [created.json()["silenceID"]])
        code = await asyncio.to_thread(main, [*argv, "list"])
        assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


async def test_a_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key, old_ca = write(new_ca().issue(), tmp_path)
    async with serve(tmp_path, auth="none", tls_cert_file=cert, tls_key_file=key) as s:
        assert s.service.tls is not None
        url = f"https://127.0.0.1:{s.service.api_port}/api/v1/rules"

        async def status(ca: Path) -> int:
            async with httpx.AsyncClient(verify=client_context(ca)) as https:
                return (await https.get(url)).status_code

        assert await status(old_ca) == 200
        renewed = tmp_path / "renewed"
        renewed.mkdir()
        *_, new_ca_file = write(new_ca("renewal-ca").issue(), renewed)
        # A renewal written half-way (the key not yet): the old pair is kept, logged once.
        cert.write_bytes((renewed / "tls.crt").read_bytes())
        with caplog.at_level(logging.ERROR):
            assert not s.service.tls.reload_if_changed()
            assert not s.service.tls.reload_if_changed()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "cannot load the certificate and key" in errors[0]
        assert await status(old_ca) == 200
        key.write_bytes((renewed / "tls.key").read_bytes())
        assert s.service.tls.reload_if_changed()
        assert await status(new_ca_file) == 200
        with pytest.raises(httpx.ConnectError):
            await status(old_ca)


def test_certificate_files_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(TlsFilesError, match=r"tls.crt, .*tls.key: cannot load"):
        ServingTls(tmp_path / "tls.crt", tmp_path / "tls.key")
    with pytest.raises(SettingsError, match=r"tls_cert_file and tls_key_file go together"):
        load_settings(overrides={"server": {"tls_cert_file": str(tmp_path / "tls.crt")}})


async def test_the_files_are_checked_every_minute(tmp_path: Path) -> None:
    cert, key, _ = write(new_ca().issue(), tmp_path)
    tls = ServingTls(cert, key)
    clock = VirtualClock(start=0.0, autoadvance=False)
    stop = asyncio.Event()
    task = asyncio.create_task(tls.run(clock, stop))
    renewed = tmp_path / "renewed"
    renewed.mkdir()
    write(new_ca("renewal-ca").issue(), renewed)
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_bytes((renewed / name).read_bytes())
    for _ in range(10):  # the checker is asleep on the clock
        await asyncio.sleep(0)
    assert tls._seen != tls._stamp()  # not yet: the next check is a minute away
    clock.advance(60)
    for _ in range(10):
        await asyncio.sleep(0)
    assert tls._seen == tls._stamp()
    stop.set()
    await task
    await clock.aclose()
