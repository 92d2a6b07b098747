"""The guard's own rules, with an in-memory authenticator standing in for the API server: the
cache keys, the bound on reviews in flight, the scheme of the header."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from access import CacheTtl, Decision, Guard, Permission, User
from runtime.clock import VirtualClock

CREATE = Permission("create", "silences")


class SlowDirectory:
    """Knows one token; holds every review until released, counting how many wait at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = self.most = self.calls = 0

    async def authenticate(self, token: str) -> User | None:
        self.calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        return User("alice") if token == "good" else None

    async def authorize(self, user: User, permission: Permission) -> Decision:
        return Decision(user.name == "alice")


def request(token: str | None) -> web.Request:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return make_mocked_request("POST", "/api/v2/silences", headers=headers)


async def test_reviews_in_flight_are_bounded() -> None:
    directory = SlowDirectory()
    clock = VirtualClock(start=0.0, autoadvance=False)
    guard = Guard(directory, directory, clock, CacheTtl(), max_reviews=3)
    checks = [asyncio.create_task(guard.check(request(f"made-up-{i}"), CREATE)) for i in range(20)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert directory.most == 3
    directory.release.set()
    answers = await asyncio.gather(*checks)
    assert all(isinstance(a, web.Response) and a.status == 401 for a in answers)
    assert directory.calls == 20
    await clock.aclose()


async def test_answers_are_cached_by_token_digest() -> None:
    directory = SlowDirectory()
    directory.release.set()
    clock = VirtualClock(start=0.0, autoadvance=False)
    guard = Guard(directory, directory, clock, CacheTtl(allowed_s=5, denied_s=1))
    for _ in range(3):
        assert await guard.check(request("good"), CREATE) == User("alice")
        assert isinstance(await guard.check(request("bad"), CREATE), web.Response)
    assert directory.calls == 2
    clock.advance(1)
    await guard.check(request("bad"), CREATE)
    assert directory.calls == 3  # the refusal expired first
    clock.advance(4)
    await guard.check(request("good"), CREATE)
    assert directory.calls == 4
    # The token itself is nowhere in the caches.
    assert "good" not in repr(guard._users._entries)
    await clock.aclose()


async def test_only_the_bearer_scheme_counts() -> None:
    directory = SlowDirectory()
    directory.release.set()
    clock = VirtualClock(start=0.0, autoadvance=False)
    guard = Guard(directory, directory, clock)
    for header in ("Basic Z29vZA==", "good", "Bearer", "Bearer  ", "Token good"):
        answer = await guard.check(
            make_mocked_request("POST", "/", headers={"Authorization": header}), CREATE
        )
        assert isinstance(answer, web.Response) and answer.status == 401, header
    assert await guard.check(
        make_mocked_request("POST", "/", headers={"Authorization": "bearer good"}), CREATE
    ) == User("alice")
    assert directory.calls == 1
    await clock.aclose()
