"""The retry loop over real sockets on 127.0.0.1: which failures are retried, with what
delays, within which bounds (attempts, time, Retry-After, total_timeout)."""

from __future__ import annotations

import pytest

import koodrive_async as kd
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import VirtualTime, make_client

# -- retries -------------------------------------------------------------------------------


async def test_transient_errors_are_retried_with_growing_delays(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    emulator.inject(Fault.status(503), times=1)
    emulator.inject(Fault.drop(), times=2)
    emulator.inject(Fault.business_code(13000201), times=1)
    await client.get_job(emulator.add_job())
    # 503, drop + aiohttp's own resend (dropped too), 13000201, success.
    assert len(emulator.requests) == 5
    assert vt.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 507, 520, 524])
async def test_each_retryable_status_is_retried(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, status: int
) -> None:
    emulator.inject(Fault.status(status, code=13000101), times=2)
    await client.get_job(emulator.add_job())
    assert len(emulator.requests) == 3


@pytest.mark.parametrize("status", [501, 505])
async def test_a_server_error_that_can_never_pass_is_not_retried(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, status: int
) -> None:
    emulator.inject(Fault.status(status, code=13000101), times=2)
    with pytest.raises(kd.ServerError) as caught:
        await client.get_job(emulator.add_job())
    assert caught.value.http_status == status
    assert len(emulator.requests) == 1


async def test_retries_are_bounded_by_attempts(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    emulator.inject(Fault.status(500), times=None)
    with pytest.raises(kd.ServerError):
        await client.get_job(emulator.add_job())
    assert len(emulator.requests) == 4
    assert len(vt.sleeps) == 3


async def test_retries_are_bounded_by_time(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    emulator.inject(Fault.status(500), times=None)
    policy = kd.RetryPolicy(max_attempts=100, initial_delay=1, multiplier=2, max_delay=4,
                            max_elapsed=10)
    async with make_client(emulator, vt, retry=policy) as client:
        with pytest.raises(kd.ServerError):
            await client.get_job(emulator.add_job())
    assert vt.sleeps == [1, 2, 4]  # a fourth wait of 4 s would end past 10 s
    assert len(emulator.requests) == 4


async def test_jittered_delays_stay_under_their_ceiling(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.inject(Fault.status(502), times=3)
    async with make_client(emulator, vt, retry=kd.RetryPolicy()) as client:
        await client.get_job(emulator.add_job())
    assert len(vt.sleeps) == 3
    assert all(0 <= s <= c for s, c in zip(vt.sleeps, [0.5, 1.0, 2.0], strict=True))


async def test_retry_after_is_honoured_exactly(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.inject(Fault.rate_limited(retry_after=1.5))
    emulator.inject(Fault.status(503, retry_after=7))
    async with make_client(emulator, vt, retry=kd.RetryPolicy()) as client:  # jitter on
        await client.get_job(emulator.add_job())
    assert vt.sleeps == [1.5, 7.0]
    assert len(emulator.requests) == 3


async def test_retry_after_beyond_the_cap_is_raised_at_once(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.inject(Fault.rate_limited(retry_after=3600))
    async with make_client(emulator, vt, retry=kd.RetryPolicy(max_retry_after=60)) as client:
        with pytest.raises(kd.RateLimitError) as caught:
            await client.get_job(emulator.add_job())
    assert caught.value.retry_after == 3600.0
    assert vt.sleeps == []


@pytest.mark.parametrize(
    "fault",
    [Fault.status(400), Fault.status(403), Fault.status(404), Fault.status(409),
     Fault.business_code(13000102)],
    ids=["400", "403", "404", "409", "200+13000102"],
)
async def test_other_4xx_are_never_retried(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, fault: Fault
) -> None:
    emulator.inject(fault, times=None)
    with pytest.raises(kd.APIError):
        await client.get_job(emulator.add_job())
    assert len(emulator.requests) == 1


async def test_total_timeout_bounds_retries(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    emulator.inject(Fault.status(500), times=None)
    policy = kd.RetryPolicy(max_attempts=100, initial_delay=1, max_delay=1)
    async with make_client(emulator, vt, retry=policy) as client:
        with pytest.raises(kd.ServerError):
            await client.get_job(emulator.add_job(), total_timeout=3.5)
    assert vt.sleeps == [1, 1, 1]


async def test_a_success_gives_back_what_its_retries_spent_or_one(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    async with make_client(emulator, vt, retry=kd.RetryPolicy(budget=100)) as client:
        emulator.inject(Fault.status(503), times=4)  # 4 attempts, 3 retries: 15 spent
        with pytest.raises(kd.ServerError):
            await client.get_job(emulator.add_job())
        assert client.retry_budget.available == 85
        await client.get_job(emulator.add_job())  # no retry: 1 back
        assert client.retry_budget.available == 86
        emulator.inject(Fault.status(503), times=2)  # two retries (10), then a success
        await client.get_job(emulator.add_job())
        assert client.retry_budget.available == 86
