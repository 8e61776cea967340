"""Attacks on the client's promises: slow dependencies, careless callers, servers that lie.

Each test breaks one promise of the README ("Reliability and security") on purpose and
asserts the figure it must stay under: requests counted, calls bounded by their own time
with a margin, outcomes counted per id.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

import koodrive_async as kd
from koodrive_async import waiter
from koodrive_async.testing import Fault, KooDriveEmulator
from koodrive_async.waiter import FINAL_POLL_TIMEOUT

from .conftest import VirtualTime, eventually, make_client

#: Real seconds a bounded call may overrun its own limit (a loaded CI machine).
MARGIN = 1.5


def real_client(emu: KooDriveEmulator, **options: object) -> kd.KooDriveClient:
    settings: dict[str, object] = {"user_id": emu.user_id, "auth": kd.TokenAuth(emu.token)}
    settings.update(options)
    return kd.KooDriveClient(emu.base_url, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def real_emulator() -> AsyncIterator[KooDriveEmulator]:
    """An emulator on the real clock, for tests that measure real time."""
    async with KooDriveEmulator() as emu:
        yield emu


def refused_url() -> str:
    """A loopback URL on which nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- 2. Retry-After: one answer never freezes the client --------------------------------


async def test_a_huge_retry_after_is_raised_and_pauses_at_most_max_retry_after(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job()
    emulator.inject(Fault.rate_limited(retry_after=1e9))
    async with make_client(emulator, vt, retry=kd.RetryPolicy(max_retry_after=20)) as client:
        with pytest.raises(kd.RateLimitError):
            await client.get_job(job_id)
        assert vt.sleeps == [], "a pause longer than max_retry_after is not waited for"
        for _ in range(3):  # later calls: at most one pause of max_retry_after, in all
            await client.get_job(job_id, timeout=1)
        assert sum(vt.sleeps) <= 20, vt.sleeps
        results = [o async for _, o in client.wait_for_jobs(
            [emulator.add_job(duration=5) for _ in range(20)], timeout=60)]
    assert all(isinstance(r, kd.JobResult) and r.ok for r in results), results
    assert sum(vt.sleeps[:1]) <= 20


@pytest.mark.parametrize("status", [301, 400, 404, 500])
async def test_retry_after_on_a_status_that_is_not_429_or_503_arms_no_pause(
    emulator: KooDriveEmulator, vt: VirtualTime, status: int
) -> None:
    job_id = emulator.add_job()
    emulator.inject(Fault.status(status, retry_after=3600,
                                 headers={"Location": "/elsewhere"} if status == 301 else None))
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.APIError) as caught:
            await client.get_job(job_id)
        assert caught.value.retry_after is None
        sent = len(emulator.requests)
        await client.get_job(job_id)
    assert vt.sleeps == [], "the next call went out at once"
    assert len(emulator.requests) == sent + 1


async def test_a_pause_is_bounded_by_the_calls_own_time(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job()
    emulator.inject(Fault.rate_limited(retry_after=50))
    async with make_client(emulator, vt, retry=kd.RetryPolicy(max_retry_after=60)) as client:
        emulator.inject(Fault.rate_limited(retry_after=50), times=None)
        with pytest.raises(kd.RateLimitError):
            await client.get_job(job_id, total_timeout=10)
        emulator.clear_faults()
        sent = len(emulator.requests)
        with pytest.raises(kd.RateLimitError, match="past this call's time"):
            await client.get_job(job_id, total_timeout=5)
        assert len(emulator.requests) == sent, "refused without sending"
        assert sum(vt.sleeps) <= 10


async def test_a_wait_rides_out_a_rate_limit_storm_within_its_deadline(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=30)
    emulator.inject(Fault.rate_limited(retry_after=1e9), times=5)
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(job_id, timeout=3600)
    assert result.ok
    # Each 429's pause is capped by the poll policy's max_interval (300 s), not 1e9 s.
    assert max(vt.sleeps) <= kd.PollPolicy().max_interval, max(vt.sleeps)


# -- 3. the token provider runs within the call's time ----------------------------------


async def test_a_provider_that_never_returns_holds_no_call_past_its_time(
    real_emulator: KooDriveEmulator,
) -> None:
    forever = asyncio.Event()
    calls = 0

    async def hang() -> str:
        nonlocal calls
        calls += 1
        await forever.wait()
        return "never"

    job_id = real_emulator.add_job(duration=100)
    async with real_client(real_emulator, auth=kd.TokenAuth(hang),
                           retry=kd.RetryPolicy(max_elapsed=1)) as client:
        started = time.monotonic()
        with pytest.raises(kd.TokenProviderError, match="did not answer within"):
            await client.get_job(job_id, total_timeout=0.5)
        assert time.monotonic() - started < 0.5 + MARGIN

        started = time.monotonic()
        with pytest.raises(kd.WaitTimeoutError, match="TokenProviderError"):
            await client.wait_for_job(job_id, timeout=1)
        assert time.monotonic() - started < 1 + FINAL_POLL_TIMEOUT + MARGIN

        # Calls queued behind the one question are each bounded by their own time.
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(client.get_job(job_id, timeout=0.2 + i / 10) for i in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(o, kd.TokenProviderError) for o in outcomes), outcomes
        assert time.monotonic() - started < 0.6 + MARGIN
    assert real_emulator.requests == [], "no request left without a token"
    assert calls >= 3, "each call after a give-up asked the provider again"


async def test_provider_failures_are_token_provider_errors_and_never_cached(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    answers: list[object] = [RuntimeError("vault down"), "", 42, "tok\r\nX-Evil: 1",
                             emulator.token]
    asked = 0

    def provider() -> object:  # a plain function is a provider too
        nonlocal asked
        answer = answers[asked]
        asked += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer

    job_id = emulator.add_job()
    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:  # type: ignore[arg-type]
        messages = []
        for _ in range(4):
            with pytest.raises(kd.TokenProviderError) as caught:
                await client.get_job(job_id)
            messages.append(str(caught.value))
        assert isinstance(caught.value, kd.KooDriveError)
        detail = await client.get_job(job_id)
    assert detail.job_info is not None and detail.job_info.task_id == job_id
    assert asked == 5, "every failure was forgotten: the next call asked again"
    assert "RuntimeError" in messages[0]
    assert not any("X-Evil" in m for m in messages), "the value is never quoted"
    assert len(emulator.requests) == 1, "only the usable token was sent"


async def test_within_a_wait_provider_failures_are_transient(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    failures = 3

    async def flaky() -> str:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("identity service restarting")
        return emulator.token

    job_id = emulator.add_job(duration=20)
    async with make_client(emulator, vt, auth=kd.TokenAuth(flaky)) as client:
        result = await client.wait_for_job(job_id, timeout=600)
    assert result.ok and failures == 0


async def test_a_failing_provider_is_each_ids_outcome_in_a_fan_out(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    async def broken() -> str:
        raise KeyError("no such secret")

    ids = [emulator.add_job() for _ in range(30)]
    async with make_client(emulator, vt, auth=kd.TokenAuth(broken)) as client:
        outcomes = [item async for item in client.get_jobs(ids, concurrency=8)]
    assert Counter(job_id for job_id, _ in outcomes) == Counter(dict.fromkeys(ids, 1))
    assert all(isinstance(o, kd.TokenProviderError) for _, o in outcomes)
    assert all(isinstance(o.__cause__, KeyError) for _, o in outcomes)


# -- 5. every error in the tree ----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("token", "tok\r\nX-Injected: 1"), ("token", "tok\x00"), ("user_id", "u\nX: 1"),
     ("language", "en\r\n"), ("app_id", "app\x7f"), ("user_id", "u\udcff")],
)
async def test_header_values_with_control_characters_are_refused_at_construction(
    emulator: KooDriveEmulator, option: str, value: str
) -> None:
    with pytest.raises(ValueError, match=r"control character|not valid Unicode") as caught:
        if option == "token":
            auth: kd.TokenAuth | kd.AppAuth = kd.TokenAuth(value)
        elif option == "app_id":
            auth = kd.AppAuth(value, "secret")
        else:
            auth = kd.TokenAuth(emulator.token)
        kd.KooDriveClient(emulator.base_url, **{"user_id": "u", "auth": auth, option: value})
    assert not isinstance(caught.value, kd.KooDriveError), "a bad argument, not an API error"
    assert value not in str(caught.value)
    assert emulator.requests == []


async def test_calls_in_flight_during_aclose_raise_client_closed_error(
    real_emulator: KooDriveEmulator,
) -> None:
    ids = [real_emulator.add_job(duration=100) for _ in range(40)]
    real_emulator.inject(Fault.delay(5), times=None)
    client = real_client(real_emulator)
    singles = [asyncio.ensure_future(client.get_job(i)) for i in ids[:10]]
    outcomes: list[tuple[str, object]] = []

    async def consume() -> None:
        async for item in client.get_jobs(ids[10:], concurrency=10):
            outcomes.append(item)

    stream = asyncio.ensure_future(consume())
    await eventually(lambda: real_emulator.in_flight >= 20)
    await client.aclose()
    done = await asyncio.gather(*singles, return_exceptions=True)
    await asyncio.wait_for(stream, 5)
    assert all(isinstance(o, kd.ClientClosedError) for o in done), done
    assert all(isinstance(o, RuntimeError) for o in done), "also a RuntimeError, as aiohttp's"
    assert Counter(i for i, _ in outcomes) == Counter(dict.fromkeys(ids[10:], 1))
    assert all(isinstance(o, kd.ClientClosedError) for _, o in outcomes)
    with pytest.raises(kd.ClientClosedError):
        await client.get_job(ids[0])
    real_emulator.clear_faults()


async def test_calls_queued_for_a_connection_during_aclose_raise_client_closed_error(
    real_emulator: KooDriveEmulator,
) -> None:
    # More calls than the pool holds: aiohttp cancels the queued ones as the session closes.
    ids = [real_emulator.add_job(duration=100) for _ in range(30)]
    real_emulator.inject(Fault.delay(5), times=None)
    client = real_client(real_emulator, max_connections=4)
    singles = [asyncio.ensure_future(client.get_job(i)) for i in ids[:10]]
    outcomes: list[tuple[str, object]] = []

    async def consume() -> None:
        async for item in client.get_jobs(ids[10:20], concurrency=10):
            outcomes.append(item)
        async for item in client.wait_for_jobs(ids[20:], concurrency=10, timeout=60):
            outcomes.append(item)

    stream = asyncio.ensure_future(consume())
    await eventually(lambda: real_emulator.in_flight >= 4)
    await asyncio.sleep(0.05)  # the rest queue for a connection
    await client.aclose()
    done = await asyncio.gather(*singles, return_exceptions=True)
    await asyncio.wait_for(stream, 5)
    assert not any(task.cancelled() for task in singles)
    assert all(isinstance(o, kd.ClientClosedError) for o in done), done
    assert Counter(i for i, _ in outcomes) == Counter(dict.fromkeys(ids[10:], 1))
    assert all(isinstance(o, kd.ClientClosedError) for _, o in outcomes), outcomes
    real_emulator.clear_faults()


async def test_infinity_means_no_limit_everywhere(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    inf = math.inf
    job_id = emulator.add_job(duration=10)
    async with make_client(emulator, vt, timeout=inf) as client:
        await client.get_job(job_id, timeout=inf, total_timeout=inf)
        await client.cancel_job(emulator.add_job(duration=10), timeout=inf, total_timeout=inf)
        assert (await client.wait_for_job(job_id, timeout=inf, stall_timeout=inf)).ok
        looked_up = [o async for _, o in client.get_jobs([job_id], timeout=inf)]
        assert isinstance(looked_up[0], kd.JobDetail)
        outcomes = [o async for _, o in client.wait_for_jobs([job_id], timeout=inf)]
        assert isinstance(outcomes[0], kd.JobResult)
        async for _ in client.watch_job(job_id, timeout=inf):
            pass
    for bad in (math.nan, -inf, 0):
        with pytest.raises(ValueError, match="timeout"):
            kd.KooDriveClient(emulator.base_url, user_id="u", auth=kd.TokenAuth("t"),
                              timeout=bad)


# -- 6. a callback's error is that job's outcome ------------------------------------------


async def test_a_raising_callback_is_one_outcome_not_the_end_of_the_stream(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    ids = [emulator.add_job(duration=5 + i % 7) for i in range(50)]
    cursed = ids[17]

    async def on_progress(detail: kd.JobDetail) -> None:
        if detail.job_info is not None and detail.job_info.task_id == cursed:
            raise ZeroDivisionError("the caller's bug")

    async with make_client(emulator, vt) as client:
        outcomes = dict([item async for item in client.wait_for_jobs(
            ids, timeout=600, on_progress=on_progress)])
    assert set(outcomes) == set(ids), "all 50 ended"
    assert isinstance(outcomes[cursed], kd.CallbackError)
    assert isinstance(outcomes[cursed].__cause__, ZeroDivisionError)
    assert sum(isinstance(o, kd.JobResult) and o.ok for o in outcomes.values()) == 49


async def test_a_callbacks_own_cancelled_error_is_its_outcome_not_the_streams_end(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    # The callback awaited something cancelled elsewhere; nobody cancelled the wait.
    ids = [emulator.add_job(duration=5) for _ in range(10)]
    cursed = {ids[3]: "on_progress", ids[7]: "on_checkpoint"}

    async def awaits_a_cancelled_task() -> None:
        helper = asyncio.ensure_future(asyncio.sleep(10))
        helper.cancel()
        await helper

    async def on_progress(detail: kd.JobDetail) -> None:
        if detail.job_info is not None and cursed.get(detail.job_info.task_id) == "on_progress":
            await awaits_a_cancelled_task()

    def on_checkpoint(state: dict[str, object]) -> None:
        if cursed.get(str(state["job_id"])) == "on_checkpoint":
            raise asyncio.CancelledError

    async with make_client(emulator, vt) as client:
        outcomes = dict([item async for item in client.wait_for_jobs(
            ids, timeout=600, on_progress=on_progress, on_checkpoint=on_checkpoint)])
        with pytest.raises(kd.CallbackError, match="on_progress raised CancelledError"):
            await client.wait_for_job(ids[3], on_progress=on_progress)
    assert set(outcomes) == set(ids)
    for job_id, what in cursed.items():
        error = outcomes[job_id]
        assert isinstance(error, kd.CallbackError) and what in str(error), error
        assert isinstance(error.__cause__, asyncio.CancelledError)
    assert sum(isinstance(o, kd.JobResult) and o.ok for o in outcomes.values()) == 8


async def test_a_cancel_job_on_exit_that_hangs_is_time_boxed(
    real_emulator: KooDriveEmulator, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The box is REMOTE_CANCEL_TIMEOUT (10 s); 1 s here, so the test does not wait 10.
    monkeypatch.setattr(waiter, "REMOTE_CANCEL_TIMEOUT", 1.0)
    real_emulator.inject(Fault.delay(30), times=None, method="POST",
                         path="/koodrive/ose/v1/cancel")
    async with real_client(real_emulator, retry=kd.RetryPolicy.disabled()) as client:
        for ending, options in (
            (kd.WaitTimeoutError, {"timeout": 0.3}),
            (kd.JobStalledError, {"stall_timeout": 0.3, "poll": kd.PollPolicy.fixed(0.1)}),
        ):
            job_id = real_emulator.add_job(pending_for=1000)
            started = time.monotonic()
            with pytest.raises(ending):
                await client.wait_for_job(job_id, cancel_job_on_exit=True, **options)
            assert time.monotonic() - started < 0.3 + 1.0 + MARGIN
            sent = [r for r in real_emulator.requests if r.path.endswith("/cancel")]
            assert sent[-1].json() == {"jobId": job_id}
    failed = [r for r in caplog.records if "CancelJob on exit failed" in r.getMessage()]
    assert len(failed) == 2 and all(r.levelname == "WARNING" for r in failed)
    real_emulator.clear_faults()


async def test_a_callback_that_hangs_is_bounded_by_the_wait(
    real_emulator: KooDriveEmulator,
) -> None:
    job_id = real_emulator.add_job(pending_for=100)  # one snapshot: one callback to bound

    async def hang(_: object) -> None:
        await asyncio.Event().wait()

    async with real_client(real_emulator) as client:
        started = time.monotonic()
        with pytest.raises(kd.WaitTimeoutError):
            await client.wait_for_job(job_id, timeout=0.5, on_progress=hang,
                                      on_checkpoint=hang)
        # The callbacks are cancelled at the deadline plus the last poll's grace, one grace
        # for all of them (each call had 5 s of its own: 15.5 s in all).
        assert time.monotonic() - started < 0.5 + FINAL_POLL_TIMEOUT + MARGIN
        started = time.monotonic()
        with pytest.raises(kd.WaitTimeoutError):
            async for _ in client.watch_job(job_id, timeout=0.5, on_checkpoint=hang):
                pass
        assert time.monotonic() - started < 0.5 + FINAL_POLL_TIMEOUT + MARGIN


# -- 7. waits end with their consumer ------------------------------------------------------


async def test_waits_stop_when_the_consuming_task_is_cancelled_in_the_body(
    real_emulator: KooDriveEmulator,
) -> None:
    quick = real_emulator.add_job(duration=0.2)
    ids = [quick] + [real_emulator.add_job(duration=1000) for _ in range(1999)]
    fast = kd.PollPolicy(initial_interval=0.05, max_interval=0.1)
    in_body = asyncio.Event()
    async with real_client(real_emulator) as client:
        outcomes = client.wait_for_jobs(ids, concurrency=50, poll=fast)  # no aclosing

        async def consume() -> None:
            async for _ in outcomes:
                in_body.set()
                await asyncio.sleep(3600)  # the body awaits; the task is cancelled here

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(in_body.wait(), 20)
        await eventually(lambda: len(real_emulator.requests) > 2500, within=20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled = len(real_emulator.requests)
        await asyncio.sleep(0.5)
        trailing = len(real_emulator.requests) - cancelled  # already on the wire
        await asyncio.sleep(0.5)
        later = len(real_emulator.requests) - cancelled - trailing
        assert outcomes is not None  # still referenced: the stream was never closed
    assert trailing <= 50, f"{trailing} requests after the consumer ended (0.1: up to 640)"
    assert later == 0, later


# -- 9. a typo'd host is not blamed on the job ---------------------------------------------


async def test_a_wait_on_a_refused_port_ends_with_connect_error_not_a_timeout(
    vt: VirtualTime,
) -> None:
    async with kd.KooDriveClient(refused_url(), user_id="u", auth=kd.TokenAuth("t"),
                                 clock=vt.clock, sleep=vt.sleep) as client:
        with pytest.raises(kd.ConnectError, match="cannot connect") as caught:
            await client.wait_for_job("1309243162258308352", timeout=900)
        outcomes = dict([item async for item in client.wait_for_jobs(["1", "2", "3"])])
    assert not isinstance(caught.value, kd.WaitTimeoutError)
    # The call's own retries (4 attempts), not the wait's 900 s.
    assert sum(vt.sleeps) < kd.RetryPolicy().max_elapsed, vt.sleeps
    assert len(outcomes) == 3
    assert all(isinstance(o, kd.ConnectError) for o in outcomes.values()), outcomes


async def test_once_answered_a_wait_rides_out_refused_connections(vt: VirtualTime) -> None:
    """The server goes away mid-wait (a deploy): the wait keeps trying to its deadline."""
    emulator = KooDriveEmulator(clock=vt.clock)
    await emulator.start()
    job_id = emulator.add_job(duration=10_000)

    async def go_away(_: kd.JobDetail) -> None:
        await emulator.stop()  # after the first answer, every connection is refused

    async with make_client(emulator, vt) as client:
        with pytest.raises(kd.WaitTimeoutError, match="last seen") as caught:
            await client.wait_for_job(job_id, timeout=120, on_progress=go_away)
    assert caught.value.last is not None
    assert sum(vt.sleeps) >= 120, "ridden out to the deadline"
    assert isinstance(caught.value.__cause__, kd.ConnectError)


async def test_a_timeout_with_no_answer_names_the_last_failure(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job()
    emulator.inject(Fault.status(503, code=13000201, msg="overloaded"), times=None)
    async with make_client(emulator, vt) as client:
        with pytest.raises(kd.WaitTimeoutError, match=r"no answer yet; last failure: "
                                                       r"ServerError: HTTP 503") as caught:
            await client.wait_for_job(job_id, timeout=60)
    assert caught.value.last is None


# -- 10. a garbled answer does not end a long wait -----------------------------------------


GARBLED = b'{"code":0,"data":{"jobInfo":{"status":"<html>'


async def test_a_wait_rides_out_three_garbled_answers_in_a_row_and_ends_on_a_fourth(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=300)
    async with make_client(emulator, vt) as client:
        for _ in range(3):  # three bursts of three, each followed by a good answer
            emulator.inject(Fault.body(GARBLED), times=3)
            emulator.inject(Fault.delay(0), times=1)
        result = await client.wait_for_job(job_id, timeout=3600)
        assert result.ok
        assert emulator.pending_faults == (), "all nine garbled answers were served"
        assert result.polls >= 3, "the good answers in between were polls"
        sent = len(emulator.requests)
        emulator.inject(Fault.body(GARBLED), times=4)
        with pytest.raises(kd.ResponseDecodeError):
            await client.wait_for_job(emulator.add_job(duration=30), timeout=600)
    assert len(emulator.requests) - sent == 4, "ended on the fourth in a row, not later"
    with pytest.raises(kd.ResponseDecodeError):  # a single call still raises at once
        async with make_client(emulator, vt) as client:
            emulator.inject(Fault.body(GARBLED), times=1)
            await client.get_job(job_id)


@pytest.mark.parametrize(
    ("option", "field"),
    [({"files": ["f\udcff"]}, r"files\[0\]\.file_id"),
     ({"files": [kd.FileRef("f", "/a/\udcff.txt")]}, r"files\[0\]\.file_path"),
     ({"src_container_id": "s\ud800"}, "src_container_id"),
     ({"new_file_path": "/x\udcff"}, "new_file_path"),
     ({"uncompress_file_paths": ["ok", "b\udcff"]}, r"uncompress_file_paths\[1\]"),
     ({"password": "p\udcff"}, "password"),
     ({"share_folder_id": "sf\n"}, "share_folder_id")],
)
async def test_a_create_job_string_that_cannot_be_sent_is_a_value_error_naming_it(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, option: dict[str, object],
    field: str,
) -> None:
    arguments: dict[str, object] = {"src_container_id": "s", "dst_container_id": "d",
                                    "files": ["f1"]}
    arguments.update(option)
    with pytest.raises(ValueError, match=field) as caught:
        await client.create_job(kd.TaskType.DECOMPRESS, **arguments)  # type: ignore[arg-type]
    assert not isinstance(caught.value, kd.KooDriveError)
    assert emulator.requests == [], "refused before any request"
