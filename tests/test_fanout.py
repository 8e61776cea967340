"""Fan-out against the emulator: bounds, one outcome per id, budgets, early exit, memory."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import tracemalloc
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest

import koodrive_async as kd
from koodrive_async import fanout
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import VirtualTime, client_tasks, eventually

# Real time, kept short: many waits share one clock, so virtual sleeps cannot stand in.
FAST = kd.PollPolicy(initial_interval=0.02, max_interval=0.2)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
async def live() -> AsyncIterator[KooDriveEmulator]:
    """An emulator whose jobs live in real time."""
    async with KooDriveEmulator() as emu:
        yield emu


def real_client(emu: KooDriveEmulator, **options: object) -> kd.KooDriveClient:
    settings: dict[str, object] = {"user_id": emu.user_id, "auth": kd.TokenAuth(emu.token)}
    settings.update(options)
    return kd.KooDriveClient(emu.base_url, **settings)  # type: ignore[arg-type]


async def test_1000_lookups_never_exceed_the_concurrency(emulator: KooDriveEmulator) -> None:
    ids = [emulator.add_job() for _ in range(1000)]
    emulator.inject(Fault.delay(0.01), times=None)  # keep requests in flight long enough
    async with real_client(emulator) as client:
        outcomes = [item async for item in client.get_jobs(ids, concurrency=20)]
    assert emulator.max_in_flight <= 20
    assert emulator.max_in_flight >= 10, "the bound was used, not a much lower one"
    assert sorted(job_id for job_id, _ in outcomes) == sorted(ids)
    assert all(isinstance(o, kd.JobDetail) and o.job_info.task_id == i  # type: ignore[union-attr]
               for i, o in outcomes)
    assert len(emulator.requests) == 1000


async def test_unknown_and_invalid_ids_are_outcomes_beside_successes(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    good = [emulator.add_job() for _ in range(5)]
    ids = [*good, "404", "../jobs", "", None, 7, "405", good[0], "404"]
    outcomes = dict([item async for item in client.get_jobs(ids, concurrency=3)])  # type: ignore[arg-type]
    assert set(outcomes) == {*good, "404", "405", "../jobs", "", None, 7}
    assert isinstance(outcomes[None], kd.InvalidJobIdError)  # type: ignore[index]
    assert isinstance(outcomes[7], kd.InvalidJobIdError)  # type: ignore[index]
    assert all(isinstance(outcomes[i], kd.JobDetail) for i in good)
    assert isinstance(outcomes["404"], kd.NotFoundError)
    assert isinstance(outcomes["405"], kd.NotFoundError)
    assert isinstance(outcomes["../jobs"], kd.InvalidJobIdError)
    assert isinstance(outcomes[""], ValueError)
    assert len(emulator.requests) == 7, "duplicates looked up once, invalid ids never"


async def test_200_waits_of_mixed_durations_all_end_each_once(live: KooDriveEmulator) -> None:
    emulator = live
    rng = random.Random(7)
    expected: dict[str, str] = {}
    for _ in range(200):
        kind = rng.choice(["ok", "ok", "ok", "partial", "canceled"])
        duration = rng.uniform(0.05, 1.0)
        if kind == "partial":
            job_id = emulator.add_job(files=3, failed_files=1, duration=duration, pending_for=0)
        elif kind == "canceled":
            job_id = emulator.add_job(duration=10, cancel_after=duration / 2, pending_for=0)
        else:
            job_id = emulator.add_job(task_type=6, files=2, duration=duration,
                                      pending_for=rng.uniform(0, 0.3))
        expected[job_id] = kind
    seen: Counter[str] = Counter()
    async with real_client(emulator) as client:
        async for job_id, outcome in client.wait_for_jobs(expected, concurrency=16, timeout=30,
                                                          poll=FAST):
            seen[job_id] += 1
            assert isinstance(outcome, kd.JobResult), outcome
            kind = expected[job_id]
            assert outcome.ok == (kind == "ok")
            assert outcome.canceled == (kind == "canceled")
            info = outcome.detail.job_info
            assert info is not None
            assert (outcome.download_url is not None) == (kind == "ok" and info.task_type == 6)
    assert seen == Counter(dict.fromkeys(expected, 1))
    assert emulator.max_in_flight <= 16


async def test_the_retry_budget_caps_requests_when_everything_fails(
    emulator: KooDriveEmulator,
) -> None:
    ids = [emulator.add_job() for _ in range(200)]
    emulator.inject(Fault.status(503), times=None)
    budget = kd.RetryPolicy(max_attempts=4, budget=100)
    async with real_client(emulator, retry=budget, sleep=no_sleep) as client:
        outcomes = [o async for _, o in client.get_jobs(ids, concurrency=20)]
        assert client.retry_budget.available < 5
        assert client.retry_budget.denied > 0
    assert all(isinstance(o, kd.ServerError) for o in outcomes) and len(outcomes) == 200
    # 200 first attempts and the 20 retries the budget paid for: not 200 x 4.
    assert len(emulator.requests) == 220


async def test_the_budget_refills_with_successes(emulator: KooDriveEmulator) -> None:
    ids = [emulator.add_job() for _ in range(30)]
    emulator.inject(Fault.status(503), times=10)
    policy = kd.RetryPolicy(budget=20)
    async with real_client(emulator, retry=policy, sleep=no_sleep) as client:
        outcomes = [o async for _, o in client.get_jobs(ids, concurrency=1)]
        assert client.retry_budget.available == 20
    assert sum(isinstance(o, kd.ServerError) for o in outcomes) <= 6
    assert sum(isinstance(o, kd.JobDetail) for o in outcomes) >= 24


async def test_waits_survive_a_server_failing_everything_for_a_while(
    live: KooDriveEmulator,
) -> None:
    emulator = live
    ids = [emulator.add_job(duration=0.5, pending_for=0) for _ in range(50)]
    emulator.inject(Fault.status(503), times=None)
    policy = kd.RetryPolicy(budget=50)
    async with real_client(emulator, retry=policy) as client:
        async def heal() -> None:
            await eventually(lambda: len(emulator.requests) >= 150)
            emulator.clear_faults()

        healer = asyncio.create_task(heal())
        outcomes = [o async for _, o in client.wait_for_jobs(ids, timeout=60, poll=FAST)]
        await healer
    assert all(isinstance(o, kd.JobResult) and o.ok for o in outcomes) and len(outcomes) == 50
    failed = emulator.fault_counts[next(iter(emulator.fault_counts))]
    # Each waiter's failed polls back off (1, 2, 4 ... s with jitter): a 150-request outage
    # is not multiplied by retries beyond the budget's 10.
    assert failed <= 150 + 50 + 10


async def test_a_429_pauses_the_whole_client(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job()
    emulator.inject(Fault.rate_limited(retry_after=3))
    async with real_client(emulator, retry=kd.RetryPolicy.disabled(), sleep=vt.sleep,
                           clock=vt.clock) as client:
        with pytest.raises(kd.RateLimitError):
            await client.get_job(job_id)
        await client.get_job(job_id)  # another call waits out the pause before sending
        with pytest.raises(kd.RateLimitError):
            emulator.inject(Fault.rate_limited(retry_after=30))
            await client.get_job(job_id)
        with pytest.raises(kd.RateLimitError, match="past this call's time"):
            await client.get_job(job_id, total_timeout=5)
    assert vt.sleeps == [3.0]
    assert len(emulator.requests) == 3


async def test_leaving_early_cancels_outstanding_work(emulator: KooDriveEmulator) -> None:
    ids = [emulator.add_job(duration=1000) for _ in range(100)]
    emulator.inject(Fault.delay(0.05), times=None)
    before = client_tasks()
    async with real_client(emulator) as client:
        async with aclosing(client.get_jobs(ids, concurrency=10)) as lookups:
            async for _ in lookups:
                break
        assert client_tasks() - before == set()
        with pytest.raises(KeyError):
            async with aclosing(client.get_jobs(ids, concurrency=10)) as lookups:
                async for _ in lookups:
                    raise KeyError("the caller's own error")
        assert client_tasks() - before == set()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async for _ in client.wait_for_jobs(ids, concurrency=10, poll=FAST):
                    pass
        assert client_tasks() - before == set()
    await eventually(lambda: emulator.in_flight == 0)


async def test_breaking_out_of_waits_stops_them(live: KooDriveEmulator) -> None:
    emulator = live
    ids = [emulator.add_job(duration=0.01 if i == 0 else 1000, pending_for=0) for i in range(50)]
    before = client_tasks()
    async with real_client(emulator) as client:
        async with aclosing(client.wait_for_jobs(ids, concurrency=5, poll=FAST)) as waits:
            async for job_id, outcome in waits:
                assert job_id == ids[0] and isinstance(outcome, kd.JobResult)
                break
        assert client_tasks() - before == set()
        # A request sent just before leaving may still be arriving: let it land, then none.
        await eventually(lambda: emulator.in_flight == 0)
        await asyncio.sleep(0.1)
        count = len(emulator.requests)
        await asyncio.sleep(0.2)
        assert len(emulator.requests) == count, "no poll after leaving"


@pytest.mark.parametrize("fan_out", ["wait_for_jobs", "get_jobs"])
async def test_cancelling_the_consumer_cancels_the_fan_out(
    emulator: KooDriveEmulator, fan_out: str
) -> None:
    ids = [emulator.add_job(duration=1000) for _ in range(30)]
    if fan_out == "get_jobs":  # lookups held in flight while the consumer is cancelled
        emulator.inject(Fault.delay(30.0), times=None)
    before = client_tasks()
    async with real_client(emulator) as client:
        async def consume() -> None:
            if fan_out == "get_jobs":
                async for _ in client.get_jobs(ids, concurrency=5):
                    pass
                return
            async for _ in client.wait_for_jobs(ids, concurrency=5, poll=FAST):
                pass

        task = asyncio.create_task(consume())
        await eventually(lambda: len(emulator.requests) >= (5 if fan_out == "get_jobs" else 30))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client_tasks() - before == set()
    await eventually(lambda: emulator.in_flight == 0)


@pytest.mark.parametrize("fan_out", ["wait_for_jobs", "get_jobs"])
async def test_each_outcome_may_be_taken_by_a_task_of_its_own(
    live: KooDriveEmulator, fan_out: str
) -> None:
    # asyncio.wait_for(anext(stream), ...) on 3.11, or create_task(anext(stream)): each
    # anext runs in a task that ends with it. The work stays bound to the stream.
    ids = [live.add_job(duration=0.02 * i) for i in range(12)]
    async with real_client(live) as client:
        stream = (client.wait_for_jobs(ids, concurrency=4, poll=FAST, timeout=30)
                  if fan_out == "wait_for_jobs" else client.get_jobs(ids, concurrency=3))
        async with aclosing(stream):
            seen = []
            for _ in ids:
                if len(seen) % 2:
                    job_id, outcome = await asyncio.wait_for(anext(stream), timeout=20)
                else:
                    job_id, outcome = await asyncio.create_task(anext(stream))
                assert not isinstance(outcome, BaseException), outcome
                seen.append(job_id)
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(stream), timeout=20)
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize("fan_out", ["wait_for_jobs", "get_jobs"])
async def test_a_consumer_cancelled_in_its_loop_body_stops_a_stream_still_referenced(
    live: KooDriveEmulator, fan_out: str
) -> None:
    ids = [live.add_job(duration=1000) for _ in range(3)] + [live.add_job() for _ in range(20)]
    live.inject(Fault.delay(0.05), times=None)
    before = client_tasks()
    async with real_client(live) as client:
        # max_waits=4: ids are left to take, and outcomes queue up while the body sleeps.
        stream = (client.wait_for_jobs(ids, concurrency=4, max_waits=4, poll=FAST, timeout=60)
                  if fan_out == "wait_for_jobs" else client.get_jobs(ids, concurrency=4))
        body_entered = asyncio.Event()

        async def consume() -> None:
            async for _ in stream:  # the stream outlives this task: referenced here
                body_entered.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        await body_entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: client_tasks() - before == set())
        count = len(live.requests)
        await asyncio.sleep(0.3)
        assert len(live.requests) == count, "no request after the consumer was cancelled"
        # Resumed again, it says so at once instead of waiting for work that was cancelled.
        with pytest.raises(kd.KooDriveError, match="cancelled with the task consuming it"):
            await asyncio.wait_for(anext(stream), timeout=5)  # the first resume: no work begun
        await stream.aclose()
        await asyncio.sleep(0.1)
        assert len(live.requests) == count, "no request after the consumer was cancelled"


class _CountedIds:
    """Up to 10,000 new emulator jobs, made as they are read; ``pulled`` counts them."""

    def __init__(self, emulator: KooDriveEmulator, **job: Any) -> None:
        self.pulled = 0
        self._emulator, self._job = emulator, job

    def __iter__(self) -> Iterator[str]:
        for _ in range(10_000):
            self.pulled += 1
            yield self._emulator.add_job(**self._job)


async def _consume_slowly(
    stream: AsyncGenerator[tuple[str, Any], None], ids: _CountedIds, count: int
) -> tuple[list[tuple[str, Any]], int]:
    """The first ``count`` outcomes, taken slowly (the work has all the time it wants to run
    ahead), and the most ids taken and not yet handed over at any point."""
    outcomes: list[tuple[str, Any]] = []
    most_ahead = 0
    async with aclosing(stream):
        async for item in stream:
            outcomes.append(item)
            await asyncio.sleep(0.02)
            most_ahead = max(most_ahead, ids.pulled - len(outcomes))
            if len(outcomes) == count:
                break
    return outcomes, most_ahead


async def test_a_generator_of_ids_is_read_lazily(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    ids = _CountedIds(emulator)
    _, most_ahead = await _consume_slowly(client.get_jobs(ids, concurrency=8), ids, 20)
    # Taken and not handed over: at most 8 at work and 8 finished, waiting for the consumer.
    assert most_ahead <= 2 * 8
    assert most_ahead >= 8, "the bound was used, not a much lower one"
    assert ids.pulled <= 20 + 2 * 8
    assert len(emulator.requests) <= 20 + 2 * 8


async def test_max_waits_bounds_the_waits_taken_and_not_yet_handed_over(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    ids = _CountedIds(emulator, duration=3)
    waits = client.wait_for_jobs(ids, max_waits=5, concurrency=50, timeout=600)
    outcomes, most_ahead = await _consume_slowly(waits, ids, 30)
    assert all(isinstance(o, kd.JobResult) and o.ok for _, o in outcomes)
    assert most_ahead <= 5
    assert most_ahead >= 4, "the bound was used, not a much lower one"
    assert ids.pulled <= 30 + 5


async def test_an_error_of_the_ids_iterator_or_of_the_source_stops_the_lookups(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    """Not a KooDriveError, so no job's outcome: raised from get_jobs, after the outcomes
    already made, with nothing left running."""
    good = [emulator.add_job() for _ in range(4)]

    def ids() -> Iterator[str]:
        yield from good
        raise LookupError("the caller's iterator broke")

    before = client_tasks()
    seen = []
    with pytest.raises(LookupError, match="iterator broke"):
        async for job_id, _ in client.get_jobs(ids(), concurrency=2):
            seen.append(job_id)
    assert set(seen) <= set(good)
    assert client_tasks() - before == set()

    class Buggy:
        async def get_job(self, job_id: str, **_: object) -> kd.JobDetail:
            if job_id == "bug":
                raise ZeroDivisionError("a bug in the source")
            return await client.get_job(job_id)

    with pytest.raises(ZeroDivisionError):
        async for _ in fanout.get_jobs(Buggy(), [*good, "bug"], concurrency=3):
            pass
    assert client_tasks() - before == set()


async def test_concurrency_is_checked_and_capped_at_the_pool(
    emulator: KooDriveEmulator,
) -> None:
    ids = [emulator.add_job() for _ in range(100)]
    emulator.inject(Fault.delay(0.005), times=None)
    async with real_client(emulator, max_connections=5) as client:
        for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError),
                           (True, TypeError)):
            with pytest.raises(error, match="concurrency"):
                client.get_jobs(ids, concurrency=bad)  # type: ignore[arg-type]
            with pytest.raises(error, match="concurrency"):
                client.wait_for_jobs(ids, concurrency=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_waits"):
            client.wait_for_jobs(ids, max_waits=0)
        with pytest.raises(ValueError, match="not one string"):
            async for _ in client.get_jobs("1309243162258308352"):
                pass
        outcomes = [o async for _, o in client.get_jobs(ids, concurrency=50)]
    assert len(outcomes) == 100
    assert emulator.max_in_flight <= 5


class _Forever:
    """A JobSource whose jobs never end, answering at once: waits sleep between polls."""

    def __init__(self) -> None:
        self.polls = 0

    async def get_job(self, job_id: str, *, total_timeout: float | None = None) -> kd.JobDetail:
        self.polls += 1
        return kd.JobDetail(job_info=kd.JobInfo(task_id=job_id, status=kd.JobStatus.PROCESSING,
                                                progress=5))

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        raise AssertionError("not called")


async def test_memory_per_waiting_job_under_4_kib() -> None:
    """Everything a job costs while it sleeps between polls: task, frames, schedule, timer."""
    if sys.gettrace() is not None:
        pytest.skip("a tracer (coverage) holds frames alive: memory is not the client's then")
    n = 2000
    source = _Forever()
    ids = [str(1309243162258308352 + i) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        waits = fanout.wait_for_jobs(
            source, ids, timeout=None, poll=kd.PollPolicy(initial_interval=3600),
            clock=asyncio.get_running_loop().time, sleep=asyncio.sleep,
        )
        consumer = asyncio.ensure_future(anext(waits))
        await eventually(lambda: source.polls == n)
        await asyncio.sleep(0)
        gc.collect()
        per_job = (tracemalloc.get_traced_memory()[0] - base) / n
    finally:
        tracemalloc.stop()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await waits.aclose()
    assert per_job < 4096, f"{per_job:.0f} bytes per waiting job"
