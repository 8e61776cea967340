"""Light polls (``poll_job``): an unfinished job's answer is read up to its jobInfo, the
terminal answer in full; over real sockets, against the emulator and a lying server."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import koodrive_async as kd
from koodrive_async.testing import KooDriveEmulator

from .conftest import Answer, Hostile, VirtualTime, make_client

Start = Callable[[Answer], Awaitable[Hostile]]

JOB = "1309243162258308352"


def _answer(status: int, progress: int, *, files: int = 2, garbled: bool = False) -> bytes:
    """A GetJobDetail answer in the API's member order; ``garbled``: its taskInfos broken
    (the head and the tail intact)."""
    info = {"taskId": JOB, "status": status, "progress": progress, "taskType": 1}
    if status == 2:
        info["taskResultCode"] = 1
    tasks = [{"id": str(i), "fileId": f"f{i}", "status": "1"} for i in range(files)]
    body = json.dumps({"data": {"jobInfo": info, "taskInfos": tasks}, "code": 0, "msg": "OK"})
    if garbled:
        body = body.replace('"taskInfos": [', '"taskInfos": [{{{ not json', 1)
    return body.encode()


async def _scripted(hostile: Start, answers: list[bytes]) -> Hostile:
    """A server answering one body a request, from ``answers`` (the last repeated)."""
    given: list[bytes] = []

    def answer(request: web.Request, _: bytes) -> web.Response:
        given.append(answers[min(len(given), len(answers) - 1)])
        return web.Response(body=given[-1], content_type="application/json")

    return await hostile(answer)


def _client(server: Hostile, vt: VirtualTime, **options: Any) -> kd.KooDriveClient:
    return kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                             clock=vt.clock, sleep=vt.sleep, rng=lambda: 1.0, **options)


async def test_poll_job_reads_an_unfinished_job_up_to_its_job_info(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(files=1000, pending_for=0, duration=60)
    async with make_client(emulator, vt) as client:
        vt.advance(10)
        full = await client.get_job(job_id)
        light = await client.poll_job(job_id)
        assert full.status is light.status is kd.JobStatus.PROCESSING
        assert len(full.task_infos) == 1000
        assert light.job_info == full.job_info and light.task_infos == ()
        vt.advance(60)
        done = await client.poll_job(job_id)
        assert done.status is kd.JobStatus.COMPLETED
        assert done == await client.get_job(job_id)  # the terminal answer, whole
        assert len(done.task_infos) == 1000


async def test_a_wait_polls_light_and_its_result_holds_every_task_info(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(files=1000, failed_files=3, pending_for=5, duration=120)
    async with make_client(emulator, vt) as client:
        result = await client.wait_for_job(job_id)
        assert result.polls == len(emulator.requests) > 2
        outcomes = [o async for _, o in client.wait_for_jobs([job_id])]
    assert len(result.succeeded) == 997 and len(result.failed) == 3
    assert isinstance(outcomes[0], kd.JobResult) and outcomes[0].detail == result.detail


async def test_a_garbled_rest_of_an_unfinished_answer_is_not_read_by_a_light_wait(
    hostile: Start, vt: VirtualTime
) -> None:
    # Six answers whose taskInfos are broken, then the whole terminal answer.
    script = [_answer(1, 10 * i, garbled=True) for i in range(6)] + [_answer(2, 100)]
    async with _client(await _scripted(hostile, script), vt) as client:
        result = await client.wait_for_job(JOB, poll=kd.PollPolicy.fixed(1))
    assert result.ok and result.polls == 7
    assert len(result.succeeded) == 2
    async with _client(await _scripted(hostile, script), vt) as client:
        outcomes = [o async for _, o in client.wait_for_jobs([JOB], poll=kd.PollPolicy.fixed(1))]
    assert isinstance(outcomes[0], kd.JobResult) and outcomes[0].polls == 7
    # The same answers read in full, as get_job and a wait whose snapshots are seen read
    # them, are malformed: the fourth in a row ends that wait.
    async with _client(await _scripted(hostile, script), vt) as client:
        with pytest.raises(kd.ResponseDecodeError):
            await client.get_job(JOB)
    server = await _scripted(hostile, script)
    async with _client(server, vt) as client:
        seen: list[kd.JobDetail] = []
        with pytest.raises(kd.ResponseDecodeError):
            await client.wait_for_job(JOB, poll=kd.PollPolicy.fixed(1), on_progress=seen.append)
    assert len(server.requests) == 4 and seen == []


async def test_a_garbled_terminal_answer_is_read_in_full_and_refused(
    hostile: Start, vt: VirtualTime
) -> None:
    server = await _scripted(hostile, [_answer(1, 50), _answer(2, 100, garbled=True)])
    async with _client(server, vt) as client:
        with pytest.raises(kd.ResponseDecodeError):
            await client.wait_for_job(JOB, poll=kd.PollPolicy.fixed(1))
    assert len(server.requests) == 1 + 4  # one light poll, then four malformed in a row


async def test_an_answer_the_skim_cannot_take_is_read_in_full(
    hostile: Start, vt: VirtualTime
) -> None:
    # Members in another order (code first, taskInfos before jobInfo): read in full, so
    # the snapshot keeps its taskInfos.
    info = {"taskId": JOB, "status": 1, "progress": 40}
    body = json.dumps({"code": 0, "msg": "OK", "data": {
        "taskInfos": [{"id": "1", "status": "0"}], "jobInfo": info}}).encode()
    server = await _scripted(hostile, [body])
    async with _client(server, vt) as client:
        detail = await client.poll_job(JOB)
    assert detail.status is kd.JobStatus.PROCESSING and len(detail.task_infos) == 1
