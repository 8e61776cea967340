"""The job waiter: one poll loop, three views.

``wait_for_job`` returns the JobResult, ``watch_job`` yields each distinct snapshot, and
``on_progress`` is called with each distinct snapshot of ``wait_for_job``. All three run
``_snapshots``, written against the public ``get_job`` / ``cancel_job`` of any JobSource
(the client, or a simulation in the benchmark), with an injectable clock and sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import attrs

from ._protocol import is_retryable, validate_job_id
from ._schedule import PollPolicy, PollSchedule
from .config import check_seconds
from .errors import (
    APIError,
    CallbackError,
    ConnectError,
    JobStalledError,
    KooDriveError,
    ResponseDecodeError,
    TokenProviderError,
    WaitTimeoutError,
)
from .models import JobDetail, JobResult

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "FINAL_POLL_TIMEOUT",
    "REMOTE_CANCEL_TIMEOUT",
    "JobSource",
    "ProgressCallback",
    "Schedule",
    "wait_for_job",
    "watch_job",
]

logger: Final = logging.getLogger("koodrive_async")

#: Seconds a whole wait may take by default.
DEFAULT_WAIT_TIMEOUT: Final = 900.0
#: Seconds granted to the last poll, made at the deadline: a wait may overrun by this much.
FINAL_POLL_TIMEOUT: Final = 5.0
#: Seconds granted to the CancelJob sent by ``cancel_job_on_exit``.
REMOTE_CANCEL_TIMEOUT: Final = 10.0
_STATE_VERSION: Final = 1
# After consecutive failed polls the next one waits at least 1, 2, 4 ... up to this many
# seconds (times a jitter in [0.5, 1]), whatever the schedule predicts.
_MAX_FAILURE_DELAY: Final = 30.0
#: Malformed answers in a row that a wait rides out (a proxy's garbled page); the next ends it.
MAX_MALFORMED_POLLS: Final = 3

ProgressCallback = Callable[[JobDetail], Awaitable[None] | None]
# How the loop hands a snapshot over: awaited before the next poll, given the wait's seconds
# left (None: no limit).
_Emit = Callable[[JobDetail, float | None], Awaitable[None]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Strong references to shielded CancelJob tasks, so none is collected mid-flight.
_background: set[asyncio.Task[None]] = set()


class Schedule(Protocol):
    """When to poll next: PollSchedule, or a stand-in in a simulation."""

    def observe(self, now: float, status: int | None, progress: int | None) -> None:
        """Take in the answer of a poll made at ``now``."""
        ...

    def next_delay(self, now: float) -> float:
        """Seconds until the next poll."""
        ...

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable state to resume from."""
        ...


class JobSource(Protocol):
    """What the waiter needs of a client: KooDriveClient is one."""

    async def get_job(self, job_id: str, *, total_timeout: float | None = None) -> JobDetail:
        """GetJobDetail, all retries within ``total_timeout`` seconds."""
        ...

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        """CancelJob, all retries within ``total_timeout`` seconds."""
        ...


@attrs.frozen
class _Limits:
    """The time bounds of one wait, checked: None is no limit (infinity included)."""

    timeout: float | None
    stall_timeout: float | None
    max_pause: float


@attrs.define
class _Tally:
    """What one wait has seen so far, shared between the loop and its views."""

    polls: int = 0
    elapsed_before: float = 0.0
    started: float = 0.0
    last: JobDetail | None = None


def _state(job_id: str, tally: _Tally, schedule: Schedule, now: float) -> dict[str, Any]:
    last = tally.last
    return {
        "version": _STATE_VERSION,
        "job_id": job_id,
        "polls": tally.polls,
        "elapsed": tally.elapsed_before + (now - tally.started),
        "last_status": None if last is None or last.status is None else int(last.status),
        "last_progress": None if last is None else last.progress,
        "schedule": schedule.to_state(),
    }


def _resume(
    job_id: str, state: Mapping[str, Any], policy: PollPolicy, now: float
) -> tuple[PollSchedule, int, float]:
    """The schedule, polls and elapsed seconds of a saved wait state; ValueError if bad."""
    if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
        raise ValueError(f"resume state must be a wait state of version {_STATE_VERSION}")
    if state.get("job_id") != job_id:
        raise ValueError(
            f"resume state is for job {state.get('job_id')!r}, not for job {job_id!r}"
        )
    polls, elapsed = state.get("polls"), state.get("elapsed")
    if not isinstance(polls, int) or polls < 0:
        raise ValueError("resume state: 'polls' must be an int >= 0")
    if not isinstance(elapsed, int | float) or not math.isfinite(elapsed) or elapsed < 0:
        raise ValueError("resume state: 'elapsed' must be a number of seconds >= 0")
    schedule_state = state.get("schedule")
    if not isinstance(schedule_state, Mapping):
        raise ValueError("resume state: 'schedule' must be an object")
    return PollSchedule.from_state(policy, schedule_state, now=now), polls, float(elapsed)


def _ends_wait(exc: KooDriveError, *, answered: bool, malformed: int) -> bool:
    """Whether a failed poll ends the wait, or is ridden out until the deadline.

    Transient: no answer, 408, 429, 5xx, a token provider's failure, and up to
    MAX_MALFORMED_POLLS malformed answers in a row. A connection that cannot be opened before
    any poll was answered is a wrong address, not a busy server: it ends the wait at once.
    """
    if isinstance(exc, ResponseDecodeError):
        return malformed >= MAX_MALFORMED_POLLS
    if isinstance(exc, ConnectError):
        return not answered
    return not (is_retryable(exc) or isinstance(exc, TokenProviderError))


async def _poll(
    source: JobSource,
    job_id: str,
    *,
    timeout: float | None,
    schedule: Schedule,
    stall_timeout: float | None,
    max_pause: float,
    clock: Clock,
    sleep: Sleep,
    tally: _Tally,
    emit: _Emit | None,
) -> JobDetail:
    """Poll until the job is terminal; return the terminal snapshot.

    Each distinct (status, progress) snapshot goes to ``emit``, awaited before the next poll.
    Bounded by ``timeout`` (one last poll at the deadline, then WaitTimeoutError) and by
    ``stall_timeout``; with neither, it polls until the job ends, as the caller asked. A
    server's ``Retry-After`` delays the next poll by ``max_pause`` seconds at most.
    """
    start = tally.started
    deadline = None if timeout is None else start + timeout
    last_key: tuple[int, int | None] | None = None
    last_change = start
    failures = malformed = 0
    answered = False
    last_failure: KooDriveError | None = None
    while True:
        left = None if deadline is None else deadline - clock()
        final = left is not None and left <= 0
        retry_after = 0.0  # the least delay a failed poll imposes
        try:
            detail = await source.get_job(
                job_id, total_timeout=FINAL_POLL_TIMEOUT if final else left
            )
            if detail.status is None:
                raise ResponseDecodeError(
                    f"GetJobDetail {job_id}: the answer has no jobInfo.status"
                )
        except KooDriveError as exc:
            if _ends_wait(exc, answered=answered, malformed=malformed):
                raise
            last_failure = exc
            malformed = malformed + 1 if isinstance(exc, ResponseDecodeError) else 0
            if final:
                raise _timeout_error(
                    job_id, tally, schedule, clock(), timeout, last_failure
                ) from exc
            logger.debug("job %s: poll failed (%s); polling again later", job_id, exc)
            failures += 1
            retry_after = min(_MAX_FAILURE_DELAY, 2.0 ** (failures - 1)) * random.uniform(0.5, 1)
            if isinstance(exc, APIError) and exc.retry_after is not None:
                retry_after = max(retry_after, min(exc.retry_after, max_pause))
            now = clock()
        else:
            failures = malformed = 0
            answered = True
            tally.polls += 1
            now = clock()
            status = detail.status
            schedule.observe(now, int(status), detail.progress)
            key = (int(status), detail.progress)
            if key != last_key:
                last_key, last_change = key, now
                tally.last = detail
                if emit is not None:
                    await emit(detail, None if deadline is None else deadline - now)
                    now = clock()
            if detail.terminal:
                return detail
            if stall_timeout is not None and now - last_change >= stall_timeout:
                raise JobStalledError(
                    f"job {job_id}: no change of status or progress for {stall_timeout:g} s"
                    f" (status {status}, progress {detail.progress})",
                    job_id=job_id, last=tally.last, state=_state(job_id, tally, schedule, now),
                )
            if final:
                raise _timeout_error(job_id, tally, schedule, now, timeout, None)
        delay = max(schedule.next_delay(now), retry_after)
        if stall_timeout is not None:
            delay = min(delay, max(last_change + stall_timeout - now, 0.0))
        if deadline is not None:
            delay = min(delay, max(deadline - now, 0.0))
        await sleep(delay)


def _timeout_error(
    job_id: str,
    tally: _Tally,
    schedule: Schedule,
    now: float,
    timeout: float | None,
    failure: KooDriveError | None,
) -> WaitTimeoutError:
    last = tally.last
    if last is not None:
        seen = f"last seen: status {last.status}, progress {last.progress}"
    elif failure is not None:
        seen = f"no answer yet; last failure: {type(failure).__name__}: {failure}"
    else:
        seen = "no answer yet"
    return WaitTimeoutError(
        f"job {job_id} did not end within {timeout:g} s ({seen})",
        job_id=job_id, last=last, state=_state(job_id, tally, schedule, now),
    )


async def _notify(
    callback: ProgressCallback, job_id: str, detail: JobDetail, left: float | None
) -> None:
    """Call the user's ``on_progress`` within the wait's time (the last poll's included).

    Its error becomes a CallbackError. One that outlasts the wait is cancelled, and the
    wait goes on to its last poll.
    """
    bound = None if left is None else max(left, 0.0) + FINAL_POLL_TIMEOUT
    try:
        async with asyncio.timeout(bound) as scope:
            outcome = callback(detail)
            if outcome is not None and inspect.isawaitable(outcome):
                await outcome
    except TimeoutError as exc:
        if not scope.expired():
            raise CallbackError(
                f"job {job_id}: on_progress raised TimeoutError: {exc}", job_id=job_id
            ) from exc
        logger.warning("job %s: on_progress outlasted the wait; cancelled", job_id)
    except Exception as exc:
        raise CallbackError(
            f"job {job_id}: on_progress raised {type(exc).__name__}: {exc}", job_id=job_id
        ) from exc


async def _cancel_quietly(source: JobSource, job_id: str) -> None:
    try:
        await source.cancel_job(job_id, total_timeout=REMOTE_CANCEL_TIMEOUT)
    except KooDriveError as exc:
        logger.warning("job %s: CancelJob on exit failed: %s", job_id, exc)
    else:
        logger.info("job %s: canceled on the server as the wait ended", job_id)


async def _cancel_on_exit(source: JobSource, job_id: str) -> None:
    """Send CancelJob, shielded from the cancellation that may be ending the wait."""
    task = asyncio.ensure_future(_cancel_quietly(source, job_id))
    _background.add(task)
    task.add_done_callback(_background.discard)
    # Cancelled again while cancelling: let the time-boxed CancelJob finish on its own.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def _prepare(
    job_id: str,
    *,
    timeout: float | None,
    stall_timeout: float | None,
    poll: PollPolicy | None,
    resume: Mapping[str, Any] | None,
    schedule: Schedule | None,
    clock: Clock,
) -> tuple[Schedule, _Tally, _Limits]:
    """Check the arguments (ValueError before any request) and set up the schedule."""
    validate_job_id(job_id)
    if poll is not None and not isinstance(poll, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, not {type(poll).__name__}")
    policy = poll if poll is not None else PollPolicy()
    limits = _Limits(
        timeout=check_seconds("timeout", timeout),
        stall_timeout=check_seconds("stall_timeout", stall_timeout),
        max_pause=policy.max_interval,
    )
    tally = _Tally(started=clock())
    if resume is not None:
        if schedule is not None:
            raise ValueError("give resume or schedule, not both")
        schedule, tally.polls, tally.elapsed_before = _resume(
            job_id, resume, policy, tally.started
        )
    elif schedule is None:
        schedule = PollSchedule(policy)
    return schedule, tally, limits


async def wait_for_job(
    source: JobSource,
    job_id: str,
    *,
    timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    poll: PollPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    resume: Mapping[str, Any] | None = None,
    check: bool = False,
    clock: Clock,
    sleep: Sleep,
    schedule: Schedule | None = None,
) -> JobResult:
    """Poll a job until it is completed or canceled; see ``KooDriveClient.wait_for_job``.

    ``schedule`` replaces the PollSchedule built from ``poll`` (the benchmark drives this
    very loop with other polling strategies).
    """
    schedule, tally, limits = _prepare(
        job_id, timeout=timeout, stall_timeout=stall_timeout, poll=poll, resume=resume,
        schedule=schedule, clock=clock,
    )
    emit = None if on_progress is None else functools.partial(_notify, on_progress, job_id)
    try:
        terminal = await _poll(
            source, job_id, timeout=limits.timeout, schedule=schedule,
            stall_timeout=limits.stall_timeout, max_pause=limits.max_pause, clock=clock,
            sleep=sleep, tally=tally, emit=emit,
        )
    except (WaitTimeoutError, JobStalledError, asyncio.CancelledError):
        if cancel_job_on_exit:
            await _cancel_on_exit(source, job_id)
        raise
    result = JobResult(
        job_id=job_id,
        detail=terminal,
        polls=tally.polls,
        elapsed=tally.elapsed_before + (clock() - tally.started),
    )
    return result.raise_for_outcome() if check else result


async def watch_job(
    source: JobSource,
    job_id: str,
    *,
    timeout: float | None = DEFAULT_WAIT_TIMEOUT,
    poll: PollPolicy | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    resume: Mapping[str, Any] | None = None,
    clock: Clock,
    sleep: Sleep,
) -> AsyncIterator[JobDetail]:
    """Yield each distinct snapshot of a job, the terminal one last; see
    ``KooDriveClient.watch_job``."""
    schedule, tally, limits = _prepare(
        job_id, timeout=timeout, stall_timeout=stall_timeout, poll=poll, resume=resume,
        schedule=None, clock=clock,
    )
    # The loop runs in a task of its own and hands each snapshot over, waiting until the
    # consumer asks for the next one: a generator's pace, with wait_for_job's loop.
    handover: asyncio.Queue[JobDetail | BaseException | None] = asyncio.Queue()
    asked = asyncio.Event()

    async def emit(detail: JobDetail, left: float | None) -> None:
        # The consumer's own pace: not bounded by the wait's time.
        asked.clear()
        handover.put_nowait(detail)
        await asked.wait()

    async def run() -> None:
        try:
            await _poll(
                source, job_id, timeout=limits.timeout, schedule=schedule,
                stall_timeout=limits.stall_timeout, max_pause=limits.max_pause, clock=clock,
                sleep=sleep, tally=tally, emit=emit,
            )
        except Exception as exc:
            handover.put_nowait(exc)
        else:
            handover.put_nowait(None)

    poller = asyncio.ensure_future(run())
    try:
        while (item := await handover.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            asked.set()
    except (WaitTimeoutError, JobStalledError, asyncio.CancelledError):
        if cancel_job_on_exit:
            await _cancel_on_exit(source, job_id)
        raise
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
