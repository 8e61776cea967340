"""The public API's types, checked by ``mypy --strict`` and ``pyright`` in the test command.

Never run: a signature change that breaks a caller shows here as a type error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, assert_type

import koodrive_async as kd


async def calls(client: kd.KooDriveClient) -> None:
    assert_type(await client.get_job("1", timeout=5, total_timeout=30), kd.JobDetail)
    assert_type(await client.poll_job("1", timeout=5, total_timeout=30), kd.JobDetail)
    assert_type(
        await client.create_job("copy", src_container_id="s", dst_container_id="d",
                                files=["f", kd.FileRef("f2", "/a")], new_file_path="/b"),
        str,
    )
    assert_type(await client.cancel_job("1", total_timeout=10), None)
    assert_type(client.list_jobs(status="processing", task_type=kd.TaskType.COPY),
                AsyncGenerator[kd.JobInfo, None])
    result = await client.wait_for_job("1", timeout=900, poll=kd.PollPolicy(max_interval=5))
    assert_type(result, kd.JobResult)
    assert_type(result.ok, bool)
    assert_type(result.download_url, str | None)
    assert_type(result.succeeded, tuple[kd.TaskInfo, ...])
    assert_type(result.polls, int)
    assert_type(result.elapsed, float)
    assert_type(client.watch_job("1", timeout=None), AsyncGenerator[kd.JobDetail, None])
    assert_type(client.get_jobs(["1"], concurrency=8, timeout=5, total_timeout=30),
                AsyncGenerator[tuple[str, kd.JobDetail | kd.KooDriveError], None])
    assert_type(client.wait_for_jobs(["1"], concurrency=8, timeout=600),
                AsyncGenerator[tuple[str, kd.JobResult | kd.KooDriveError], None])
    # Each can be closed at once, as the README says to when leaving a loop early.
    async with contextlib.aclosing(client.get_jobs(["1"])) as outcomes:
        async for job_id, outcome in outcomes:
            assert_type(job_id, str)
            assert_type(outcome, kd.JobDetail | kd.KooDriveError)
            break
    async with contextlib.aclosing(client.wait_for_jobs(["1"], timeout=60)) as results:
        async for _ in results:
            break
    async with contextlib.aclosing(client.watch_job("1")) as details:
        async for _ in details:
            break
    async with contextlib.aclosing(client.list_jobs()) as infos:
        async for _ in infos:
            break


def models(detail: kd.JobDetail, error: kd.WaitTimeoutError) -> None:
    assert_type(detail.job_info, kd.JobInfo | None)
    assert_type(detail.task_infos, tuple[kd.TaskInfo, ...])
    assert_type(detail.terminal, bool)
    assert_type(error.last, kd.JobDetail | None)
    assert_type(error.state, dict[str, Any] | None)
    assert_type(kd.RetryPolicy.disabled(), kd.RetryPolicy)


def construction() -> kd.KooDriveClient:
    def provider() -> str:
        return "token"

    async def async_provider() -> str:
        return "token"

    kd.TokenAuth(provider)
    kd.TokenAuth(async_provider)
    return kd.KooDriveClient("https://example.invalid", user_id="u",
                             auth=kd.AppAuth("app", "secret"), timeout=None,
                             retry=kd.RetryPolicy(max_attempts=2))
