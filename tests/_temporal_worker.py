"""A Temporal worker process for tests/test_temporal_workers.py: the recipe of
``koodrive_async.contrib.temporal``, one KooDriveClient for the whole worker.

Run: ``python tests/_temporal_worker.py --target HOST:PORT --task-queue Q --base-url URL
--stats FILE [--namespace default] [--graceful 1.0] [--max-activities 2000]
[--sticky-timeout 1.0]``, with the
token and the user id in the environment (``KOODRIVE_TOKEN``, ``KOODRIVE_USER_ID``), never on
the command line. Prints ``ready`` on stdout once the worker runs. SIGTERM (or SIGINT) shuts
it down gracefully (``Worker.shutdown()``: polling stops, running activities get
``--graceful`` seconds, then are cancelled and retried elsewhere from their last heartbeat);
it then writes what its wait activities did to ``--stats`` (JSON) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

import koodrive_async as kd
from koodrive_async.contrib.temporal import (
    WAIT_FOR_JOB,
    KooDriveActivities,
    WaitForJobWorkflow,
    WaitOutcome,
    workflow_runner,
)


class Stats:
    """What this worker's wait activities did, by attempt."""

    def __init__(self) -> None:
        self.started = 0
        self.resumed = 0  # attempts > 1: another worker had the wait before
        self.completed: list[str] = []  # job ids of the waits that completed here
        self.cancelled = 0  # cancelled here (on shutdown): retried elsewhere
        self.failed = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started, "resumed": self.resumed, "completed": self.completed,
            "cancelled": self.cancelled, "failed": self.failed,
        }


class _Counting(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, stats: Stats) -> None:
        super().__init__(next)
        self._stats = stats

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.activity_type != WAIT_FOR_JOB:
            return await self.next.execute_activity(input)
        self._stats.started += 1
        self._stats.resumed += info.attempt > 1
        try:
            result = await self.next.execute_activity(input)
        except asyncio.CancelledError:
            self._stats.cancelled += 1
            raise
        except BaseException:
            self._stats.failed += 1
            raise
        assert isinstance(result, WaitOutcome)
        self._stats.completed.append(result.job_id)
        return result


class CountingInterceptor(Interceptor):
    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next, self._stats)


async def serve(args: argparse.Namespace) -> Stats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stats = Stats()
    temporal = await Client.connect(args.target, namespace=args.namespace)
    async with kd.KooDriveClient(
        args.base_url, user_id=os.environ["KOODRIVE_USER_ID"],
        auth=kd.TokenAuth(os.environ["KOODRIVE_TOKEN"]),
    ) as client:
        worker = Worker(
            temporal, task_queue=args.task_queue, workflows=[WaitForJobWorkflow],
            activities=KooDriveActivities(client).all(), workflow_runner=workflow_runner(),
            interceptors=[CountingInterceptor(stats)],
            max_concurrent_activities=args.max_activities,
            max_concurrent_workflow_tasks=args.max_activities,
            graceful_shutdown_timeout=timedelta(seconds=args.graceful),
            # A killed worker's cached workflows wait this long on its sticky queue before
            # any worker takes their next task (a graceful shutdown tells the server at once).
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=args.sticky_timeout),
        )
        async with worker:  # leaving it calls worker.shutdown()
            print("ready", flush=True)
            await stop.wait()
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--graceful", type=float, default=1.0)
    parser.add_argument("--max-activities", type=int, default=2000)
    parser.add_argument("--sticky-timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    stats = asyncio.run(serve(args))
    Path(args.stats).write_text(json.dumps(stats.to_json()))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The worker has shut down and its stats are written. Skip interpreter finalization:
    # about one exit in five here segfaulted in it (temporalio's Rust threads outliving
    # Python), a crash after the work that would fail the test for nothing it measures.
    os._exit(code)
