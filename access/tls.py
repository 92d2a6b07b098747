"""HTTPS for the API port: a certificate and key (PEM files, e.g. a ``kubernetes.io/tls``
Secret that cert-manager renews), read again when they change, without a restart.

:meth:`ServingTls.reload_if_changed` compares the files' modification times and sizes with
those last loaded and loads the pair into the same SSL context, so the next handshakes
present the new certificate; a pair that does not load (a half-written renewal) keeps the old
one and is logged once. :meth:`ServingTls.run` does so every ``check_seconds`` on the clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path

from runtime.clock import Clock, sleep_or_stop

__all__ = ["ServingTls", "TlsFilesError"]

log = logging.getLogger(__name__)


class TlsFilesError(Exception):
    """The certificate or key cannot be loaded; the message names the files."""


class ServingTls:
    """A server SSL context (TLS 1.2 or later) from ``cert`` and ``key``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._seen = self._stamp()
        self._load()
        self._problem = ""

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        try:
            return tuple((s.st_mtime_ns, s.st_size) for s in map(os.stat, (self.cert, self.key)))
        except OSError:
            return ()

    def _load(self) -> None:
        # A pair that fails half-way (a new certificate, the old key) would leave the live
        # context broken: it is tried on a scratch context first.
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key)
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            raise TlsFilesError(
                f"{self.cert}, {self.key}: cannot load the certificate and key: {e}"
            ) from e

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when a new pair was loaded."""
        stamp = self._stamp()
        if stamp == self._seen or not stamp:
            return False
        try:
            self._load()
        except TlsFilesError as e:
            if str(e) != self._problem:
                log.error("%s; serving the certificate loaded before", e)
            self._problem = str(e)
            return False
        self._seen, self._problem = stamp, ""
        log.info("loaded the renewed certificate %s", self.cert)
        return True

    async def run(self, clock: Clock, stop: asyncio.Event, check_seconds: float = 60.0) -> None:
        """Check the files every ``check_seconds`` until ``stop``."""
        while not stop.is_set():
            await sleep_or_stop(clock, check_seconds, stop)
            self.reload_if_changed()
