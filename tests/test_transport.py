"""The transport over real sockets on 127.0.0.1: the headers of every attempt, clock
learning, both auth modes as the emulator checks them, and the session's lifecycle."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

import koodrive_async as kd
from koodrive_async import _stamps as stamps
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import TokenSequence, VirtualTime, make_client

# -- headers ---------------------------------------------------------------------------------


async def test_headers_on_every_attempt(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    start = vt.clock()

    def wall_clock() -> float:  # real time, moved on by the virtual sleeps, on both sides
        return time.time() + vt.clock() - start

    emulator.wall_clock = wall_clock
    job_id = emulator.add_job(files=2)
    emulator.inject(Fault.status(503), times=2)
    policy = kd.RetryPolicy(initial_delay=1.0)
    async with make_client(
        emulator, vt, wall_clock=wall_clock, language="zh-CN", retry=policy
    ) as client:
        detail = await client.get_job(job_id)
    assert detail.job_info is not None and detail.job_info.task_id == job_id
    attempts = emulator.requests
    assert len(attempts) == 3
    host = emulator.base_url.removeprefix("http://")
    for request in attempts:
        headers = request.headers
        assert headers["X-User-Id"] == emulator.user_id
        assert headers["Authorization"] == "Bearer+" + emulator.token
        assert headers["Host"] == host
        assert headers["language"] == "zh-CN"
        assert len(headers["X-Traceid"]) == 58 and headers["X-Traceid"].isalnum()
        assert stamps.parse_x_date(headers["X-Date"]) is not None
    assert len({r.headers["X-Traceid"] for r in attempts}) == 3
    x_dates = [r.headers["X-Date"] for r in attempts]
    assert len(set(x_dates)) == 3, "X-Date must be computed again for every attempt"


async def test_no_language_header_unless_configured(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    await client.get_job(emulator.add_job())
    assert "language" not in emulator.requests[-1].headers


async def test_server_clock_two_minutes_behind(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    emulator.clock_skew = -120.0
    job_id = emulator.add_job()
    await client.get_job(job_id)
    first, second = emulator.requests
    assert first.headers["X-Date"] > second.headers["X-Date"]
    server_seconds = stamps.parse_x_date(second.headers["X-Date"])
    assert server_seconds is not None and server_seconds <= emulator.server_time()
    assert -122 < client.clock_offset <= -119
    # Learned once: later requests pass at the first attempt.
    await client.get_job(job_id)
    await client.get_job(job_id)
    assert len(emulator.requests) == 4


async def test_a_clock_skew_401_is_retried_only_once(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    jumps = iter(range(1, 1000))

    def runaway_clock() -> float:  # ten more minutes ahead at every reading
        return time.time() + 600 * next(jumps)

    async with make_client(emulator, vt, wall_clock=runaway_clock) as client:
        with pytest.raises(kd.AuthenticationError) as caught:
            await client.get_job(emulator.add_job())
    assert caught.value.clock_skew
    assert len(emulator.requests) == 2


async def test_server_clock_ahead_by_twenty_minutes(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    emulator.clock_skew = 20 * 60.0
    await client.get_job(emulator.add_job())
    assert len(emulator.requests) == 2  # rejected as too old, then corrected
    assert 1195 < client.clock_offset <= 1201


async def test_app_auth_signature_accepted_by_the_emulator(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    auth = kd.AppAuth(emulator.app_id, emulator.app_secret)
    async with make_client(emulator, vt, auth=auth) as client:
        job_id = emulator.add_job()
        await client.get_job(job_id)
        jobs = [j async for j in client.list_jobs(status=kd.JobStatus.PENDING, page_size=5)]
        new_id = await client.create_job(kd.TaskType.COPY, src_container_id="s",
                                         dst_container_id="d", files=["f1"])
        await client.cancel_job(new_id)
    assert [j.task_id for j in jobs] == [job_id]
    assert all(r.headers["Authorization"].startswith("HMAC-SHA256 AppId=")
               for r in emulator.requests)
    assert len(emulator.requests) == 4


async def test_a_wrong_app_secret_is_an_authentication_error(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    async with make_client(emulator, vt, auth=kd.AppAuth(emulator.app_id, "wrong")) as client:
        with pytest.raises(kd.AuthenticationError) as caught:
            await client.get_job(emulator.add_job())
    assert "wrong" not in str(caught.value)
    assert len(emulator.requests) == 1


async def test_token_provider_asked_again_after_a_401(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    provider = TokenSequence(emulator, "old-token", "new-token")
    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:
        job_id = emulator.add_job()
        await client.get_job(job_id)
        await client.get_job(job_id)
        assert provider.calls == 1, "the token is cached between requests"
        emulator.revoke_token("old-token")
        await client.get_job(job_id)
    assert provider.calls == 2
    assert [r.headers["Authorization"] for r in emulator.requests] == [
        "Bearer+old-token", "Bearer+old-token", "Bearer+old-token", "Bearer+new-token",
    ]


async def test_many_requests_hitting_one_401_ask_the_provider_once(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    provider = TokenSequence(emulator, "old-token", "new-token", "spare-token")
    ids = [emulator.add_job() for _ in range(20)]
    emulator.inject(Fault.delay(0.2), times=20)  # all 20 in flight when the token goes
    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:
        await client.get_job(ids[0])
        emulator.revoke_token("old-token")
        details = await asyncio.gather(*(client.get_job(job_id) for job_id in ids))
    assert [d.job_info.task_id for d in details if d.job_info] == ids
    assert provider.calls == 2, "one question for the first token, one for all 20 401s"
    resent = [r for r in emulator.requests[1:] if r.headers["Authorization"] != "Bearer+old-token"]
    assert len(resent) == 20 and {r.headers["Authorization"] for r in resent} == {
        "Bearer+new-token"}


async def test_a_static_token_rejected_is_not_retried(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    emulator.revoke_token(emulator.token)
    with pytest.raises(kd.AuthenticationError) as caught:
        await client.get_job(emulator.add_job())
    assert caught.value.http_status == 401
    assert emulator.token not in str(caught.value)
    assert len(emulator.requests) == 1


# -- the session -----------------------------------------------------------------------------


async def test_a_borrowed_session_is_left_open(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(emulator, vt, session=session) as client:
            await client.get_job(emulator.add_job())
        assert not session.closed
        async with session.get(emulator.base_url + "/koodrive/ose/v1/1") as response:
            assert response.status == 401


async def test_reuse_after_close_is_a_clear_error(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    client = make_client(emulator, vt)
    async with client:
        await client.get_job(emulator.add_job())
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_job("1")
    await client.aclose()  # idempotent


async def test_client_without_context_manager(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    client = make_client(emulator, vt)
    try:
        await client.get_job(emulator.add_job())
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [("", "required"), ("intl.myhuaweicloud-koodrive.com", "absolute"),
     ("ftp://x", "absolute"), ("http://example.com", "not https"),
     ("https://u:p@example.com", "credentials"), ("https://example.com/?a=1", "query")],
)
def test_bad_base_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kd.KooDriveClient(url, user_id="u", auth=kd.TokenAuth("t"))


def test_other_bad_settings() -> None:
    good: dict[str, Any] = {"user_id": "u", "auth": kd.TokenAuth("t")}
    url = "https://intl.myhuaweicloud-koodrive.com"
    for override, message in (({"user_id": " "}, "user_id"), ({"auth": "t"}, "auth"),
                              ({"timeout": 0}, "timeout"), ({"max_connections": 0}, "max_conn")):
        with pytest.raises((ValueError, TypeError), match=message):
            kd.KooDriveClient(url, **{**good, **override})
    assert kd.KooDriveClient("http://example.com", allow_insecure_http=True, **good)
    client = kd.KooDriveClient("https://[::1]:8443/", user_id="u",
                               auth=kd.TokenAuth("SECRET-123"))
    assert client.base_url == "https://[::1]:8443"
    assert "SECRET-123" not in repr(client)
