"""Waiting for a process to end, in tests that kill or orphan one."""

from __future__ import annotations

import asyncio
import os


async def ended(pid: int, within_s: float = 5.0) -> bool:
    """Whether process ``pid`` is gone (reaped, or never ours) within ``within_s``."""
    for _ in range(max(1, round(within_s / 0.01))):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.01)
    return False
