"""Shared fixtures: an emulator on 127.0.0.1 and a client that share one virtual clock, and
hostile servers of the tests' own on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

import koodrive_async as kd
from koodrive_async.testing import KooDriveEmulator, ManualClock


class VirtualTime(ManualClock):
    """The tests' virtual time: a :class:`ManualClock` at 1000 s, whose ``sleep`` advances it
    and records each sleep in ``sleeps`` instead of waiting.

    The emulator's job life follows the same clock, so a wait of hours runs in milliseconds
    over real sockets. ``vt.clock`` is the clock itself, the name the tests grew up with.
    """

    def __init__(self) -> None:
        super().__init__(1000.0)

    @property
    def clock(self) -> ManualClock:
        return self


class TokenSequence:
    """An async token provider handing out ``tokens`` in order, all accepted by ``emulator``;
    ``calls`` counts how often the client asked."""

    def __init__(self, emulator: KooDriveEmulator, *tokens: str) -> None:
        self._tokens = iter(tokens)
        self.calls = 0
        for token in tokens:
            emulator.add_token(token)

    async def __call__(self) -> str:
        self.calls += 1
        return next(self._tokens)


def client_tasks() -> set[asyncio.Task[object]]:
    """Tasks of this loop but the emulator's (aiohttp.web serves in the same loop)."""
    return {t for t in asyncio.all_tasks()
            if "aiohttp/web" not in t.get_coro().cr_code.co_filename}  # type: ignore[union-attr]


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait (real time, bounded) until ``condition()`` holds; fail the test if it never does."""
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition not met within {within} s")


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def emulator(vt: VirtualTime) -> AsyncIterator[KooDriveEmulator]:
    async with KooDriveEmulator(clock=vt.clock) as emu:
        yield emu


def make_client(
    emu: KooDriveEmulator, vt: VirtualTime, **options: object
) -> kd.KooDriveClient:
    settings: dict[str, object] = {
        "user_id": emu.user_id,
        "auth": kd.TokenAuth(emu.token),
        "clock": vt.clock,
        "sleep": vt.sleep,
        "rng": lambda: 1.0,  # every jittered delay at its ceiling: exact sleeps to assert
    }
    settings.update(options)
    return kd.KooDriveClient(emu.base_url, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def client(emulator: KooDriveEmulator, vt: VirtualTime) -> AsyncIterator[kd.KooDriveClient]:
    async with make_client(emulator, vt) as c:
        yield c


Answer = Callable[[web.Request, bytes], Awaitable[web.StreamResponse] | web.StreamResponse]


class Hostile:
    """An aiohttp.web server answering every request with ``answer``; records requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))
        result = self.answer(request, body)
        if not isinstance(result, web.StreamResponse):
            result = await result
        return result


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[Answer], Awaitable[Hostile]]]:
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> Hostile:
        server = Hostile(answer)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()
