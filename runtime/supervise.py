"""Supervised asyncio tasks: a task of the service that dies is noticed at once.

``asyncio.gather(..., return_exceptions=True)`` keeps a crashed task's exception until
shutdown, so a dead collector or rule engine would go unnoticed while ``/healthz`` still
answers. A :class:`Supervisor` watches each task it starts: when one ends with an exception,
or returns although the service is not stopping, it logs the traceback, records the failure
(which ``/readyz`` reports) and sets the stop event, so the service shuts down in order
(Lease released, store flushed) and the process exits non-zero. Loops that are designed to
go on after a failed step catch inside the step and never end on their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

__all__ = ["Supervisor", "TaskFailure"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskFailure:
    """Which task ended and how."""

    name: str
    error: BaseException | None  # None: it returned while the service was not stopping

    def __str__(self) -> str:
        if self.error is None:
            return f"task {self.name} ended unexpectedly"
        return f"task {self.name} failed: {type(self.error).__name__}: {self.error}"


class Supervisor:
    """Starts named tasks and stops everything when one of them dies."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.failure: TaskFailure | None = None

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as the task ``name``, watched."""
        task = asyncio.create_task(coro, name=name)
        self.tasks[name] = task
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None and self._stop.is_set():
            return
        failure = TaskFailure(task.get_name(), error)
        if error is not None:
            log.error("%s; stopping the service", failure, exc_info=error)
        else:
            log.error("%s; stopping the service", failure)
        if self.failure is None:
            self.failure = failure
        self._stop.set()

    async def wait(self, cancel: tuple[str, ...] = ()) -> None:
        """Cancel the tasks named in ``cancel`` and wait for every task to end."""
        for name in cancel:
            task = self.tasks.get(name)
            if task is not None:
                task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
