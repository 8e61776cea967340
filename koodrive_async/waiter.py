"""The job waiter: one poll loop, three views.

``wait_for_job`` returns the JobResult, ``watch_job`` yields each distinct snapshot, and
``on_progress`` is called with each distinct snapshot of ``wait_for_job``. All three run
``_poll.snapshots``, an async generator written against the public ``get_job`` /
``cancel_job`` of any JobSource (the client, or a simulation in the benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from contextlib import aclosing
from typing import Any, Final

import attrs

from . import _telemetry as telemetry
from ._poll import (
    FINAL_POLL_TIMEOUT,
    MAX_MALFORMED_POLLS,
    Checkpoint,
    Clock,
    JobSource,
    Random,
    Schedule,
    Sleep,
    call_back,
    prepare,
    snapshots,
)
from .config import PollPolicy
from .errors import KooDriveError, WaitEndedError
from .models import JobDetail, JobResult

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "FINAL_POLL_TIMEOUT",
    "MAX_MALFORMED_POLLS",
    "REMOTE_CANCEL_TIMEOUT",
    "CheckpointCallback",
    "JobSource",
    "ProgressCallback",
    "Schedule",
    "WaitOptions",
    "wait",
    "wait_for_job",
    "watch_job",
]

logger: Final = logging.getLogger("koodrive_async.wait")

#: Seconds a whole wait may take by default.
DEFAULT_WAIT_TIMEOUT: Final = 900.0
#: Seconds granted to the CancelJob sent by ``cancel_job_on_exit``.
REMOTE_CANCEL_TIMEOUT: Final = 10.0

ProgressCallback = Callable[[JobDetail], Awaitable[None] | None]
#: Called with the JSON-serialisable state ``resume=`` accepts, after every answered poll.
CheckpointCallback = Callable[[dict[str, Any]], Awaitable[None] | None]

# Strong references to shielded CancelJob tasks, so none is collected mid-flight.
_background: set[asyncio.Task[None]] = set()


async def _cancel_quietly(source: JobSource, job_id: str) -> None:
    try:
        await source.cancel_job(job_id, total_timeout=REMOTE_CANCEL_TIMEOUT)
    except KooDriveError as exc:
        logger.warning("job %s: CancelJob on exit failed: %s", job_id, exc,
                       extra={"koodrive.job_id": job_id})
    else:
        logger.info("job %s: canceled on the server as the wait ended", job_id,
                    extra={"koodrive.job_id": job_id})


async def _cancel_on_exit(source: JobSource, job_id: str) -> None:
    """Send CancelJob, shielded from the cancellation that may be ending the wait."""
    task = asyncio.ensure_future(_cancel_quietly(source, job_id))
    _background.add(task)
    task.add_done_callback(_background.discard)
    # Cancelled again while cancelling: let the time-boxed CancelJob finish on its own.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def _checkpointer(
    on_checkpoint: CheckpointCallback | None, job_id: str
) -> Checkpoint | None:
    return (
        None if on_checkpoint is None
        else functools.partial(call_back, on_checkpoint, "on_checkpoint", job_id)
    )


@attrs.frozen
class WaitOptions:
    """What the waits of one call share: a fan-out's thousands of waits hold one of these,
    not a dozen arguments each in their frames (about 100 bytes a wait)."""

    timeout: float | None
    poll: PollPolicy | None
    on_progress: ProgressCallback | None
    on_checkpoint: CheckpointCallback | None
    stall_timeout: float | None
    cancel_job_on_exit: bool
    check: bool
    clock: Clock
    sleep: Sleep
    rng: Random
    wall_clock: Clock


def wait_for_job(
    source: JobSource,
    job_id: str,
    *,
    timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    poll: PollPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    resume: Mapping[str, Any] | None = None,
    check: bool = False,
    clock: Clock,
    sleep: Sleep,
    rng: Random = random.random,
    wall_clock: Clock = time.time,
    schedule: Schedule | None = None,
) -> Coroutine[Any, Any, JobResult]:
    """Poll a job until it is completed or canceled; see ``KooDriveClient.wait_for_job``.

    The wait itself (``wait``, a coroutine to await). ``schedule`` replaces the PollSchedule
    built from ``poll`` (the benchmark drives this very loop with other polling strategies).
    """
    options = WaitOptions(
        timeout=timeout, poll=poll, on_progress=on_progress, on_checkpoint=on_checkpoint,
        stall_timeout=stall_timeout, cancel_job_on_exit=cancel_job_on_exit, check=check,
        clock=clock, sleep=sleep, rng=rng, wall_clock=wall_clock,
    )
    return wait(source, job_id, options, resume=resume, schedule=schedule)


async def wait(
    source: JobSource,
    job_id: str,
    options: WaitOptions,
    *,
    resume: Mapping[str, Any] | None = None,
    schedule: Schedule | None = None,
) -> JobResult:
    """One wait with ``options``; see ``wait_for_job``."""
    clock = options.clock
    schedule, tally, limits = prepare(
        job_id, timeout=options.timeout, stall_timeout=options.stall_timeout,
        poll=options.poll, resume=resume, schedule=schedule, clock=clock,
        wall_clock=options.wall_clock,
    )
    terminal: JobDetail | None = None
    with telemetry.start_wait(job_id, resumed=resume is not None, tally=tally, clock=clock):
        try:
            stream = snapshots(
                source, job_id, limits=limits, schedule=schedule, clock=clock,
                sleep=options.sleep, rng=options.rng, tally=tally,
                checkpoint=_checkpointer(options.on_checkpoint, job_id),
                light=options.on_progress is None,  # no one sees a snapshot but the last
            )
            try:  # not aclosing(): its instance and __dict__ cost each wait about 150 bytes
                async for terminal in stream:
                    if options.on_progress is not None:
                        left = (None if limits.timeout is None
                                else tally.started + limits.timeout - clock())
                        await call_back(options.on_progress, "on_progress", job_id, terminal,
                                        left)
            finally:
                await stream.aclose()
        except (WaitEndedError, asyncio.CancelledError):
            if options.cancel_job_on_exit:
                await _cancel_on_exit(source, job_id)
            raise
        assert terminal is not None and terminal.terminal  # the loop ends only there
        result = JobResult(
            job_id=job_id,
            detail=terminal,
            polls=tally.polls,
            elapsed=tally.elapsed_before + (clock() - tally.started),
        )
    return result.raise_for_outcome() if options.check else result


async def watch_job(
    source: JobSource,
    job_id: str,
    *,
    timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    poll: PollPolicy | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    resume: Mapping[str, Any] | None = None,
    clock: Clock,
    sleep: Sleep,
    rng: Random = random.random,
    wall_clock: Clock = time.time,
) -> AsyncGenerator[JobDetail, None]:
    """Yield each distinct snapshot of a job, the terminal one last; see
    ``KooDriveClient.watch_job``. The consumer's pace is its own: the next poll waits until
    it asks for the next snapshot."""
    schedule, tally, limits = prepare(
        job_id, timeout=timeout, stall_timeout=stall_timeout, poll=poll, resume=resume,
        schedule=None, clock=clock, wall_clock=wall_clock,
    )
    # Current only while polling: a context set across a yield would leak into the
    # consumer's code, and be reset in another context if it stops early.
    with telemetry.start_wait(job_id, resumed=resume is not None, tally=tally, clock=clock,
                              current=False) as wait:
        try:
            async with aclosing(snapshots(
                source, job_id, limits=limits, schedule=schedule, clock=clock, sleep=sleep,
                rng=rng, tally=tally, checkpoint=_checkpointer(on_checkpoint, job_id),
            )) as stream:
                while True:
                    with wait.polling():
                        try:
                            detail = await stream.__anext__()
                        except StopAsyncIteration:
                            break
                    yield detail
        except (WaitEndedError, asyncio.CancelledError):
            if cancel_job_on_exit:
                with wait.polling():
                    await _cancel_on_exit(source, job_id)
            raise
        except GeneratorExit:
            # Closed at a yield: the consumer left (a break, an error or a cancellation in
            # its loop's body). Before the terminal snapshot, the job is still running.
            if cancel_job_on_exit and not detail.terminal:
                with wait.polling():
                    await _cancel_on_exit(source, job_id)
            raise
