"""The Kubernetes API boundary: building the official client, and calling it with retries.

Every failure of an API call is turned into :class:`KubeApiError` here and nowhere else, with
the HTTP status (0 when the server was not reached) and the server's ``Retry-After``. Calls
are blocking in the official client, so they run in a worker thread; waits between retries go
through the injected clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from collectors.settings import KubernetesSettings
from runtime.backoff import Backoff, retry_after_seconds
from runtime.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

# Worth retrying: throttling, server trouble, conflicts are for the caller to re-read.
RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})


class KubeApiError(Exception):
    """An API call failed; ``status`` is 0 when the server could not be reached."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}" if status else reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def translate(error: BaseException, now: float) -> KubeApiError:
    """The one place foreign errors become :class:`KubeApiError`."""
    if isinstance(error, KubeApiError):
        return error
    if isinstance(error, ApiException):
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        reason = str(error.reason or "")
        if error.body:
            try:
                reason = json.loads(error.body).get("message", reason)
            except (ValueError, AttributeError):
                reason = str(error.body)[:300]
        retry_after = retry_after_seconds(headers.get("retry-after"), now)
        return KubeApiError(int(error.status or 0), reason, retry_after)
    if isinstance(error, (urllib3.exceptions.HTTPError, OSError)):
        return KubeApiError(
            0, f"cannot reach the API server: {type(error).__name__}: {error}"[:300]
        )
    return KubeApiError(0, f"{type(error).__name__}: {error}"[:300])


def api_client(settings: KubernetesSettings) -> k8s.ApiClient:
    """A client from the kubeconfig in settings, else in-cluster config, else ~/.kube/config."""
    configuration = k8s.Configuration()
    if settings.kubeconfig is not None:
        k8s_config.load_kube_config(
            config_file=str(settings.kubeconfig),
            context=settings.context,
            client_configuration=configuration,
        )
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(
                context=settings.context, client_configuration=configuration
            )
    configuration.retries = False  # retries are ours, with backoff on the clock
    # One watch per kind holds a connection each; the default pool (5 per core) is smaller
    # than that plus the controller's calls, and urllib3 then warns on every request.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, 32)
    return k8s.ApiClient(configuration)


def api_backoff(settings: KubernetesSettings) -> Backoff:
    """The retries of API calls: how many, and the pauses between them."""
    return Backoff(
        settings.retry_initial_seconds,
        settings.retry_max_seconds,
        attempts=settings.retry_attempts,
    )


async def call(
    fn: Callable[..., T],
    *args: Any,
    clock: Clock,
    retry: Backoff,
    what: str,
    **kwargs: Any,
) -> T:
    """Run a blocking client call in a thread, retrying what is worth retrying."""
    attempt = 0
    while True:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as e:  # every client failure is translated in one place
            error = translate(e, clock.now())
        attempt += 1
        if error.status not in RETRYABLE or retry.exhausted(attempt):
            raise error
        pause = retry.delay(attempt, error.retry_after)
        log.warning(
            "%s failed: %s; attempt %d of %d, retrying in %.1f s",
            what,
            error,
            attempt,
            retry.attempts,
            pause,
            extra={"call": what},
        )
        await clock.sleep(pause)
