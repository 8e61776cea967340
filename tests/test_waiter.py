"""The waiter against the emulator over real sockets, in virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import aiohttp
import pytest

import koodrive_async as kd
from koodrive_async import waiter
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import TokenSequence, VirtualTime, client_tasks, eventually, make_client


async def test_completed_package_download_hands_back_a_working_url(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(task_type=kd.TaskType.PACKAGE_DOWNLOAD, files=3, pending_for=5,
                              duration=60)
    started = vt.clock()
    result = await client.wait_for_job(job_id)
    assert result.ok and not result.canceled
    assert result.status is kd.JobStatus.COMPLETED
    assert result.job_id == job_id
    assert result.download_url == emulator.download_url(job_id)
    assert len(result.succeeded) == 3 and result.failed == ()
    assert result.polls == len(emulator.requests)
    assert result.elapsed == pytest.approx(vt.clock() - started)
    assert 65 <= result.elapsed < 65 * 1.2, "detected within 20 % of the job's life"
    assert result.raise_for_outcome() is result
    async with aiohttp.ClientSession() as session, session.get(result.download_url) as response:
        assert await response.read() == emulator.package_bytes(job_id)


async def test_canceled_job_is_a_result_unless_asked(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(files=4, duration=100, cancel_after=30)
    result = await client.wait_for_job(job_id)
    assert result.canceled and not result.ok
    assert result.status is kd.JobStatus.CANCELED
    with pytest.raises(kd.JobCanceledError) as caught:
        result.raise_for_outcome()
    assert caught.value.result is result
    with pytest.raises(kd.JobCanceledError):
        await client.wait_for_job(job_id, check=True)


async def test_partial_failure(emulator: KooDriveEmulator, client: kd.KooDriveClient) -> None:
    job_id = emulator.add_job(files=5, failed_files=2, duration=20)
    result = await client.wait_for_job(job_id)
    assert result.status is kd.JobStatus.COMPLETED and not result.ok
    assert result.task_result_code is kd.TaskResultCode.PARTIALLY_FAILED
    assert len(result.succeeded) == 3 and len(result.failed) == 2
    assert all(t.result_code and t.result_desc for t in result.failed)
    with pytest.raises(kd.JobFailedError, match="2 failed") as caught:
        result.raise_for_outcome()
    assert caught.value.result is result


async def test_all_failed(emulator: KooDriveEmulator, client: kd.KooDriveClient) -> None:
    job_id = emulator.add_job(files=3, failed_files=3, duration=5)
    result = await client.wait_for_job(job_id)
    assert result.task_result_code is kd.TaskResultCode.ALL_FAILED
    assert result.succeeded == () and len(result.failed) == 3
    with pytest.raises(kd.JobFailedError):
        await client.wait_for_job(job_id, check=True)


async def test_decompression_result_lists_the_archive(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(task_type=kd.TaskType.DECOMPRESS, duration=3)
    result = await client.wait_for_job(job_id)
    assert result.ok
    assert result.detail.uncompressed_file_list
    assert any(e.type is kd.FileType.DIRECTORY and e.sub_file_list
               for e in result.detail.uncompressed_file_list)


async def test_timeout_carries_the_last_snapshot_after_a_poll_at_the_deadline(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=10_000)
    started = vt.clock()
    with pytest.raises(kd.WaitTimeoutError) as caught:
        await client.wait_for_job(job_id, timeout=300)
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert vt.clock() - started == pytest.approx(300), "the last poll is at the deadline"
    assert error.last is not None and error.last.status is kd.JobStatus.PROCESSING
    assert error.last.progress == emulator.job_detail(job_id)["jobInfo"]["progress"]
    assert error.job_id == job_id and "300" in str(error)
    assert json.loads(json.dumps(error.state)) == error.state


async def test_each_attempt_is_capped_to_the_time_left(emulator: KooDriveEmulator) -> None:
    job_id = emulator.add_job(duration=10_000)
    emulator.inject(Fault.delay(10.0))  # a hung answer, far longer than the wait
    async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                 auth=kd.TokenAuth(emulator.token), timeout=30) as client:
        began = time.monotonic()
        with pytest.raises(kd.WaitTimeoutError) as caught:
            await client.wait_for_job(job_id, timeout=0.5)
        took = time.monotonic() - began
    assert 0.5 <= took < 3.0, "the hung attempt was cut at the deadline, then one last poll"
    assert caught.value.last is not None, "the last poll at the deadline answered"
    assert len(emulator.requests) == 2


async def test_stall_timeout(emulator: KooDriveEmulator, client: kd.KooDriveClient,
                             vt: VirtualTime) -> None:
    job_id = emulator.add_job(pending_for=10_000, duration=10)
    started = vt.clock()
    with pytest.raises(kd.JobStalledError) as caught:
        await client.wait_for_job(job_id, stall_timeout=120)
    assert vt.clock() - started == pytest.approx(120)
    assert caught.value.last is not None and caught.value.last.status is kd.JobStatus.PENDING


async def test_watch_yields_distinct_snapshots_in_order_terminal_last(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(files=10, pending_for=10, duration=120)
    snapshots = [s async for s in client.watch_job(job_id)]
    keys = [(s.status, s.progress) for s in snapshots]
    assert len(keys) >= 3
    assert all(a != b for a, b in itertools.pairwise(keys))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] or 0))
    assert snapshots[0].status is kd.JobStatus.PENDING
    assert snapshots[-1].terminal and all(not s.terminal for s in snapshots[:-1])
    assert len(emulator.requests) >= len(snapshots)


async def test_on_progress_plain_and_coroutine_callbacks(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(duration=60)
    plain: list[kd.JobDetail] = []
    coroutine: list[kd.JobDetail] = []

    async def record(detail: kd.JobDetail) -> None:
        await asyncio.sleep(0)
        coroutine.append(detail)

    first = await client.wait_for_job(job_id, on_progress=plain.append)
    second = await client.wait_for_job(job_id, on_progress=record)
    assert plain[-1] == first.detail and len(plain) >= 3
    assert coroutine == [second.detail]  # already terminal: one snapshot


async def test_cancelling_the_waiting_task_stops_promptly_with_nothing_left_running(
    emulator: KooDriveEmulator,
) -> None:
    job_id = emulator.add_job(duration=10_000)
    emulator.inject(Fault.delay(30.0))  # the first poll hangs on the server
    async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                 auth=kd.TokenAuth(emulator.token)) as client:
        task = asyncio.create_task(client.wait_for_job(job_id))
        await eventually(lambda: emulator.in_flight > 0)
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - began < 1.0
    await eventually(lambda: emulator.in_flight == 0)
    assert emulator.jobs[job_id].canceled_at is None, "no remote cancel unless asked"


async def test_cancel_job_on_exit_after_a_timeout(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(duration=10_000)
    with pytest.raises(kd.WaitTimeoutError):
        await client.wait_for_job(job_id, timeout=60, cancel_job_on_exit=True)
    assert emulator.requests[-1].path == "/koodrive/ose/v1/cancel"
    assert emulator.job_detail(job_id)["jobInfo"]["status"] == kd.JobStatus.CANCELED


async def test_cancel_job_on_exit_after_task_cancellation(emulator: KooDriveEmulator) -> None:
    job_id = emulator.add_job(duration=10_000)
    async with kd.KooDriveClient(emulator.base_url, user_id=emulator.user_id,
                                 auth=kd.TokenAuth(emulator.token)) as client:
        task = asyncio.create_task(client.wait_for_job(job_id, cancel_job_on_exit=True))
        await eventually(lambda: bool(emulator.requests))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [r.path for r in emulator.requests][-1] == "/koodrive/ose/v1/cancel"
    assert emulator.job_detail(job_id)["jobInfo"]["status"] == kd.JobStatus.CANCELED


async def test_watch_job_cancel_on_exit_when_the_consumer_leaves_before_the_end(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    running, finished, cancelled = (emulator.add_job(duration=10_000),
                                    emulator.add_job(duration=5), emulator.add_job(duration=10_000))
    async with make_client(emulator, vt) as client:
        watch = client.watch_job(running, cancel_job_on_exit=True)
        async with contextlib.aclosing(watch):
            async for _ in watch:
                break  # left with the job still running: it is cancelled
        watch = client.watch_job(finished, cancel_job_on_exit=True)
        async with contextlib.aclosing(watch):
            async for snapshot in watch:
                if snapshot.terminal:
                    break  # left after the terminal snapshot: nothing to cancel

        entered = asyncio.Event()

        async def consume() -> None:
            watch = client.watch_job(cancelled, cancel_job_on_exit=True)
            async with contextlib.aclosing(watch):
                async for _ in watch:
                    entered.set()
                    await asyncio.sleep(3600)  # cancelled here, in the loop's body

        task = asyncio.create_task(consume())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    status = {job_id: emulator.job_detail(job_id)["jobInfo"]["status"]
              for job_id in (running, finished, cancelled)}
    assert status == {running: kd.JobStatus.CANCELED, finished: kd.JobStatus.COMPLETED,
                      cancelled: kd.JobStatus.CANCELED}
    cancels = [r.json()["jobId"] for r in emulator.requests if r.path.endswith("/cancel")]
    assert cancels == [running, cancelled]


async def test_watch_job_cancel_on_exit_after_timeout(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(duration=10_000)
    seen: list[kd.JobDetail] = []

    async def watch() -> None:
        async for snapshot in client.watch_job(job_id, timeout=30, cancel_job_on_exit=True):
            seen.append(snapshot)

    with pytest.raises(kd.WaitTimeoutError):
        await watch()
    assert seen
    assert emulator.job_detail(job_id)["jobInfo"]["status"] == kd.JobStatus.CANCELED


async def test_transient_faults_mid_wait_do_not_end_it(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=120)
    polls = 0

    def inject_faults(_: kd.JobDetail) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            emulator.inject(Fault.status(503), times=3)
            emulator.inject(Fault.drop(), times=2)
            emulator.inject(Fault.rate_limited(retry_after=2), times=1)
            emulator.inject(Fault.status(500, code=13000201), times=4)

    async with make_client(emulator, vt, retry=kd.RetryPolicy(max_attempts=2)) as client:
        result = await client.wait_for_job(job_id, on_progress=inject_faults)
    assert result.ok
    assert emulator.fault_counts and not emulator.pending_faults


async def test_a_server_error_mid_wait_ends_it_only_if_it_can_never_pass(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    # Not the transient business code: the HTTP status alone decides.
    job_id = emulator.add_job(duration=120)
    for status in (502, 507, 520):
        emulator.inject(Fault.status(status, code=13000101), times=2)
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        result = await client.wait_for_job(job_id)
        assert result.ok
        assert not emulator.pending_faults
        emulator.inject(Fault.status(501, code=13000101), times=1)
        before = len(emulator.requests)
        with pytest.raises(kd.ServerError) as caught:
            await client.wait_for_job(emulator.add_job(duration=120))
    assert caught.value.http_status == 501
    assert len(emulator.requests) == before + 1


async def test_retry_after_on_a_poll_is_honoured(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=50)
    emulator.inject(Fault.rate_limited(retry_after=40))
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        result = await client.wait_for_job(job_id)
    assert result.ok
    assert vt.sleeps[0] == 40


async def test_definitive_errors_end_the_wait(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    with pytest.raises(kd.NotFoundError):
        await client.wait_for_job("404404")
    job_id = emulator.add_job(duration=100)
    # Malformed answers are ridden out up to MAX_MALFORMED_POLLS in a row; one more ends it.
    in_a_row = waiter.MAX_MALFORMED_POLLS + 1
    emulator.inject(Fault.body(b'{"code":0,"data":{"jobInfo":{"status":"running"}}}'),
                    times=in_a_row)
    with pytest.raises(kd.ResponseDecodeError, match="status"):
        await client.wait_for_job(job_id)
    emulator.inject(Fault.body(b'{"code":0,"data":{"taskInfos":[]}}'), times=in_a_row)
    with pytest.raises(kd.ResponseDecodeError, match=r"no jobInfo\.status"):
        await client.wait_for_job(job_id)
    emulator.inject(Fault.status(400, code=13000102))
    with pytest.raises(kd.BadRequestError):
        await client.wait_for_job(job_id)


async def test_token_rotation_mid_wait(emulator: KooDriveEmulator, vt: VirtualTime) -> None:
    provider = TokenSequence(emulator, "token-1", "token-2")
    job_id = emulator.add_job(duration=200)

    def expire(detail: kd.JobDetail) -> None:
        if detail.progress and detail.progress > 20:
            emulator.revoke_token("token-1")

    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:
        result = await client.wait_for_job(job_id, on_progress=expire)
    assert result.ok and provider.calls == 2
    statuses = [r.headers["Authorization"] for r in emulator.requests]
    assert statuses[0] == "Bearer+token-1" and statuses[-1] == "Bearer+token-2"


async def test_server_clock_jump_mid_wait_is_relearned(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(duration=200)

    def jump(detail: kd.JobDetail) -> None:
        if detail.progress and detail.progress > 20:
            emulator.clock_skew = -300.0

    result = await client.wait_for_job(job_id, on_progress=jump)
    assert result.ok
    assert -302 < client.clock_offset <= -299


async def test_resume_after_timeout_in_another_client(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=600)
    async with make_client(emulator, vt) as client:
        with pytest.raises(kd.WaitTimeoutError) as caught:
            await client.wait_for_job(job_id, timeout=120)
    saved = json.dumps(caught.value.state)  # e.g. written to a database
    first_polls = len(emulator.requests)
    state: dict[str, Any] = json.loads(saved)
    assert state["job_id"] == job_id and state["polls"] == first_polls
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(job_id, resume=state)
    assert result.ok
    assert result.polls == len(emulator.requests)
    assert result.elapsed >= 600


async def test_bad_arguments_are_refused_before_any_request(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job()
    for options, message in (
        ({"timeout": 0}, "timeout"), ({"timeout": -5}, "timeout"),
        ({"stall_timeout": 0}, "stall_timeout"), ({"poll": "fast"}, "PollPolicy"),
        ({"resume": {"version": 1, "job_id": "other"}}, "not for job"),
        ({"resume": {"version": 99}}, "version"),
        ({"resume": {"version": 1, "job_id": job_id, "polls": -1, "elapsed": 0,
                     "schedule": {}}}, "polls"),
    ):
        with pytest.raises((ValueError, TypeError), match=message):
            await client.wait_for_job(job_id, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        async for _ in client.watch_job(job_id, timeout=0):
            pass
    assert emulator.requests == []


async def test_leaving_watch_job_early_stops_its_polling(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = emulator.add_job(pending_for=0, duration=1000)
    before = client_tasks()
    async with contextlib.aclosing(client.watch_job(job_id)) as snapshots:
        async for snapshot in snapshots:
            assert snapshot.status is kd.JobStatus.PROCESSING
            break
    assert client_tasks() - before == set(), "the poll loop's task is gone"
    polls = len(emulator.requests)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(emulator.requests) == polls


@pytest.mark.parametrize(("status", "code", "files", "outcome"), [
    (2, 1, ["1", "1"], "ok"),
    (2, None, [], "ok"),
    (3, 1, ["1"], "canceled"),
    (2, 2, ["1", "2"], "partially_failed"),
    (2, 3, ["2", "2"], "failed"),
    (2, None, ["2", "2"], "failed"),  # no code: every file failed
    (2, None, ["1", "2"], "partially_failed"),
])
def test_a_result_s_outcome_in_one_word(
    status: int, code: int | None, files: list[str], outcome: str
) -> None:
    info: dict[str, Any] = {"taskId": "1309243162258308352", "status": status, "progress": 100}
    if code is not None:
        info["taskResultCode"] = code
    detail = kd.from_wire(kd.JobDetail, {
        "jobInfo": info,
        "taskInfos": [{"fileId": f"f{i}", "status": s} for i, s in enumerate(files)],
    })
    assert kd.JobResult(job_id="1309243162258308352", detail=detail).outcome == outcome
