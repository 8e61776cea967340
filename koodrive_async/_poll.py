"""One wait's poll loop, with no view of its own: the snapshots it yields, which failures
end it, its time bounds, and the state it can be resumed from.

``waiter`` builds ``wait_for_job``, ``watch_job`` and ``on_progress`` on ``snapshots``, written
against the public ``get_job`` of any JobSource (the client, or a simulation in the
benchmark), with an injectable clock, sleep and rng.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import attrs

from ._protocol import is_retryable, validate_job_id
from ._retry import Backoff
from ._schedule import PollSchedule
from ._state import ScheduleState, WaitState
from .config import PollPolicy, check_seconds
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
from .models import JobDetail, JobStatus

__all__ = [
    "FINAL_POLL_TIMEOUT", "MAX_MALFORMED_POLLS", "Checkpoint", "Clock", "JobSource", "Limits",
    "Random", "Schedule", "Sleep", "Tally", "call_back", "describe", "prepare", "snapshots",
]

logger: Final = logging.getLogger("koodrive_async.wait")

#: Seconds granted to the last poll, made at the deadline: a wait may overrun by this much.
FINAL_POLL_TIMEOUT: Final = 5.0
# After consecutive failed polls the next one waits at least a delay drawn below 1, 2, 4 ...
# up to 30 s (the client's one back-off curve), whatever the schedule predicts.
_FAILURE_DELAY: Final = 1.0
_MAX_FAILURE_DELAY: Final = 30.0
#: Malformed answers in a row that a wait rides out (a proxy's garbled page); the next ends it.
MAX_MALFORMED_POLLS: Final = 3

Clock = Callable[[], float]
Random = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
#: How the loop hands over the state after each answered poll, with the wait's seconds left.
Checkpoint = Callable[[dict[str, Any], float | None], Awaitable[None]]


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
    """What the waiter needs of a client: KooDriveClient is one. It may also have
    ``poll_job`` (as ``get_job``, taskInfos of an unfinished job left out): see ``snapshots``."""

    async def get_job(self, job_id: str, *, total_timeout: float | None = None) -> JobDetail:
        """GetJobDetail, all retries within ``total_timeout`` seconds."""
        ...

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        """CancelJob, all retries within ``total_timeout`` seconds."""
        ...


@attrs.frozen
class Limits:
    """The time bounds of one wait, checked (None is no limit, infinity included), and the wall
    clock its saved states are stamped with."""

    timeout: float | None
    stall_timeout: float | None
    max_pause: float
    wall_clock: Clock = time.time
    """Epoch seconds: what a saved state's ``saved_at`` is stamped with."""


@attrs.define
class Tally:
    """What one wait has seen so far, shared between the loop and its views."""

    polls: int = 0
    elapsed_before: float = 0.0
    started: float = 0.0
    last: JobDetail | None = None


def _state(
    job_id: str, tally: Tally, schedule: Schedule, now: float, *,
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The wait's state as JSON values (``WaitState.to_json``), saved at ``wall_clock()``."""
    last = tally.last
    if isinstance(schedule, PollSchedule):
        inner = schedule.state()
    else:  # a stand-in of a simulation: keep its state if it is one, else resume blind
        try:
            inner = ScheduleState.from_json(schedule.to_state())
        except ValueError:
            inner = PollSchedule(PollPolicy()).state()
    return WaitState(
        job_id=job_id,
        polls=tally.polls,
        elapsed=tally.elapsed_before + (now - tally.started),
        saved_at=wall_clock(),
        last_status=None if last is None or last.status is None else int(last.status),
        last_progress=None if last is None else last.progress,
        schedule=inner,
    ).to_json()


def _resume(
    job_id: str, state: Mapping[str, Any], policy: PollPolicy, now: float, *,
    wall_clock: Callable[[], float] = time.time,
) -> tuple[PollSchedule, int, float]:
    """The schedule, polls and elapsed seconds of a saved wait state; ValueError if bad.

    The time the state lay saved (from its ``saved_at`` to ``wall_clock()``) counts as waited.
    """
    saved = WaitState.from_json(state, job_id=job_id)
    elapsed = saved.elapsed
    if saved.saved_at is not None:
        elapsed += max(wall_clock() - saved.saved_at, 0.0)
    schedule = PollSchedule.from_state(
        policy, saved.schedule, now=now, polls=saved.polls, elapsed=elapsed
    )
    return schedule, saved.polls, elapsed


def _ends_wait(exc: KooDriveError, *, answered: bool, malformed: int) -> bool:
    """Whether a failed poll ends the wait, or is ridden out until the deadline.

    Transient: no answer, 408, 429, a 5xx but 501 and 505, a token provider's failure, and
    up to MAX_MALFORMED_POLLS malformed answers in a row. A connection that cannot be opened before
    any poll was answered is a wrong address, not a busy server: it ends the wait at once.
    """
    if isinstance(exc, ResponseDecodeError):
        return malformed >= MAX_MALFORMED_POLLS
    if isinstance(exc, ConnectError):
        return not answered
    return not (is_retryable(exc) or isinstance(exc, TokenProviderError))


async def snapshots(
    source: JobSource,
    job_id: str,
    *,
    limits: Limits,
    schedule: Schedule,
    clock: Clock,
    sleep: Sleep,
    rng: Random,
    tally: Tally,
    checkpoint: Checkpoint | None = None,
    light: bool = False,
) -> AsyncGenerator[JobDetail, None]:
    """Poll until the job is terminal; yield each distinct snapshot, the terminal one last.

    ``light``: poll with the source's ``poll_job`` where it has one (the snapshots before
    the terminal one may then have no taskInfos).

    The next poll waits until the consumer asks for the next snapshot. Bounded by
    ``limits.timeout`` (one last poll at the deadline, then WaitTimeoutError) and by
    ``limits.stall_timeout``; with neither, it polls until the job ends, as the caller asked.
    A server's ``Retry-After`` delays the next poll by ``limits.max_pause`` seconds at most.
    """
    timeout, stall_timeout = limits.timeout, limits.stall_timeout
    deadline = None if timeout is None else tally.started + timeout
    # The last distinct (status, progress), as two locals: a tuple would be held all along.
    last_status: int | None = None
    last_progress: int | None = None
    last_change = tally.started
    malformed = 0
    answered = False
    failures: Backoff | None = None  # made at the first failed poll
    last_failure: KooDriveError | None = None
    # A flag, not the bound method: that would be held by every sleeping wait (64 bytes).
    light = light and hasattr(source, "poll_job")
    while True:
        left = None if deadline is None else deadline - clock()
        final = left is not None and left <= 0
        least = 0.0  # the least delay a failed poll imposes
        try:
            detail = await (getattr(source, "poll_job") if light else source.get_job)(  # noqa: B009
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
                    job_id, tally, schedule, clock(), limits, last_failure
                ) from exc
            logger.debug("job %s: poll failed (%s); polling again later", job_id, exc,
                         extra={"koodrive.job_id": job_id, "koodrive.polls": tally.polls,
                                "koodrive.error": type(exc).__name__})
            if failures is None:
                failures = Backoff(initial=_FAILURE_DELAY, multiplier=2.0,
                                   maximum=_MAX_FAILURE_DELAY, rng=rng)
            least = failures.next_delay()
            if isinstance(exc, APIError) and exc.retry_after is not None:
                least = max(least, min(exc.retry_after, limits.max_pause))
            now = clock()
        else:
            failures, malformed, answered = None, 0, True
            tally.polls += 1
            now = clock()
            status = detail.status
            schedule.observe(now, int(status), detail.progress)
            if logger.isEnabledFor(logging.DEBUG):
                _log_poll(job_id, tally.polls, detail)
            code, progress = int(status), detail.progress
            changed = code != last_status or progress != last_progress or detail.terminal
            if changed:
                last_status, last_progress, last_change = code, progress, now
                tally.last = detail
            if checkpoint is not None:  # after every answered poll, before it is handed on
                state = _state(job_id, tally, schedule, now, wall_clock=limits.wall_clock)
                await checkpoint(state, None if deadline is None else deadline - now)
                now = clock()
            if changed:
                yield detail
                now = clock()
            if detail.terminal:
                return
            if stall_timeout is not None and now - last_change >= stall_timeout:
                raise JobStalledError(
                    f"job {job_id}: no change for {stall_timeout:g} s ({describe(detail)})",
                    job_id=job_id, last=tally.last,
                    state=_state(job_id, tally, schedule, now, wall_clock=limits.wall_clock),
                )
            if final:
                raise _timeout_error(job_id, tally, schedule, now, limits, None)
        delay = max(schedule.next_delay(now), least)
        if stall_timeout is not None:
            delay = min(delay, max(last_change + stall_timeout - now, 0.0))
        if deadline is not None:
            delay = min(delay, max(deadline - now, 0.0))
        await sleep(delay)


async def call_back(
    callback: Callable[[Any], Awaitable[None] | None],
    what: str,
    job_id: str,
    value: Any,
    left: float | None,
) -> None:
    """Call a user's ``callback`` (``what``: on_progress, on_checkpoint) with ``value``, plain
    or coroutine function alike, within the wait's time (the last poll's grace included).

    Its error becomes a CallbackError. One that outlasts the wait is cancelled, and the
    wait goes on to its last poll. The grace is one for the whole wait, the last poll's:
    ``left`` (to the deadline) is negative once it has begun.
    """
    bound = None if left is None else max(left + FINAL_POLL_TIMEOUT, 0.0)
    try:
        async with asyncio.timeout(bound) as scope:
            outcome = callback(value)
            if outcome is not None and inspect.isawaitable(outcome):
                await outcome
    except TimeoutError as exc:
        if not scope.expired():
            raise CallbackError(
                f"job {job_id}: {what} raised TimeoutError: {exc}", job_id=job_id
            ) from exc
        logger.warning("job %s: %s outlasted the wait; cancelled", job_id, what,
                       extra={"koodrive.job_id": job_id})
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():  # the wait itself is cancelled
            raise
        # The callback's own (it awaited something cancelled elsewhere): its error.
        raise CallbackError(f"job {job_id}: {what} raised CancelledError", job_id=job_id) from exc
    except Exception as exc:
        raise CallbackError(
            f"job {job_id}: {what} raised {type(exc).__name__}: {exc}", job_id=job_id
        ) from exc


def _log_poll(job_id: str, polls: int, detail: JobDetail) -> None:
    # The snapshot in words only: never its download URL, whose query is a credential.
    logger.debug(
        "job %s: poll %d: %s", job_id, polls, describe(detail),
        extra={"koodrive.job_id": job_id, "koodrive.polls": polls,
               "koodrive.status": None if detail.status is None else int(detail.status),
               "koodrive.progress": detail.progress},
    )


def describe(detail: JobDetail) -> str:
    """A snapshot in words: ``processing, 9 %``, ``completed``, ``status 7, 40 %``."""
    status = detail.status
    if isinstance(status, JobStatus):
        words = status.name.lower()
    else:
        words = "no status" if status is None else f"status {status}"
    return words if detail.progress is None else f"{words}, {detail.progress} %"


def _timeout_error(
    job_id: str,
    tally: Tally,
    schedule: Schedule,
    now: float,
    limits: Limits,
    failure: KooDriveError | None,
) -> WaitTimeoutError:
    last = tally.last
    if last is not None:
        seen = f"last seen: {describe(last)}"
    elif failure is not None:
        seen = f"no answer yet; last failure: {type(failure).__name__}: {failure}"
    else:
        seen = "no answer yet"
    return WaitTimeoutError(
        f"job {job_id} did not end within {limits.timeout:g} s ({seen})",
        job_id=job_id, last=last,
        state=_state(job_id, tally, schedule, now, wall_clock=limits.wall_clock),
    )


# Limits are immutable and a fan-out's waits share theirs: one object, not one per wait
# (72 bytes each).
_limits: Final = functools.lru_cache(maxsize=64)(Limits)


def prepare(
    job_id: str,
    *,
    timeout: float | None,
    stall_timeout: float | None,
    poll: PollPolicy | None,
    resume: Mapping[str, Any] | None,
    schedule: Schedule | None,
    clock: Clock,
    wall_clock: Clock = time.time,
) -> tuple[Schedule, Tally, Limits]:
    """Check the arguments (ValueError before any request) and set up the schedule."""
    validate_job_id(job_id)
    if poll is not None and not isinstance(poll, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, not {type(poll).__name__}")
    policy = poll if poll is not None else PollPolicy()
    limits = _limits(
        check_seconds("timeout", timeout), check_seconds("stall_timeout", stall_timeout),
        policy.max_interval, wall_clock,
    )
    tally = Tally(started=clock())
    if resume is not None:
        if schedule is not None:
            raise ValueError("give resume or schedule, not both")
        schedule, tally.polls, tally.elapsed_before = _resume(
            job_id, resume, policy, tally.started, wall_clock=wall_clock
        )
        logger.info(
            "job %s: resuming a wait after %d polls and %.1f s", job_id, tally.polls,
            tally.elapsed_before,
            extra={"koodrive.job_id": job_id, "koodrive.polls": tally.polls,
                   "koodrive.elapsed": tally.elapsed_before},
        )
    elif schedule is None:
        schedule = PollSchedule(policy)
    return schedule, tally, limits
