"""Bounded fan-out: many lookups or waits at once, outcomes in completion order.

Written against the public ``get_job`` / ``cancel_job`` of a JobSource. A semaphore bounds the
requests in flight (a lookup holds a slot for its request and that request's retries; a wait
between polls holds none), ids are read from the iterable only as work can start, and each
distinct id ends in exactly one outcome: its result, or the KooDriveError that ended it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable
from contextlib import aclosing
from typing import Any, Final, TypeVar

from ._protocol import validate_job_id
from ._schedule import PollPolicy
from .errors import KooDriveError, RequestTimeoutError
from .models import JobDetail, JobResult
from .waiter import Clock, JobSource, ProgressCallback, Sleep, wait_for_job

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_WAITS",
    "check_concurrency",
    "get_jobs",
    "wait_for_jobs",
]

T = TypeVar("T")
_END: Final[str] = object()  # type: ignore[assignment]

#: Requests in flight at most, by default.
DEFAULT_CONCURRENCY: Final = 64
#: Jobs waited on at once at most, by default (each costs a few KiB while it sleeps).
DEFAULT_MAX_WAITS: Final = 10_000


class _Throttled:
    """A JobSource whose calls each hold one of a fixed number of slots."""

    def __init__(self, source: JobSource, slots: int, clock: Clock) -> None:
        self._source = source
        self._slots = asyncio.Semaphore(slots)
        self._clock = clock

    async def get_job(self, job_id: str, *, total_timeout: float | None = None) -> JobDetail:
        queued = self._clock()
        async with self._slots:
            left = _left(total_timeout, self._clock() - queued)
            return await self._source.get_job(job_id, total_timeout=left)

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        queued = self._clock()
        async with self._slots:
            left = _left(total_timeout, self._clock() - queued)
            await self._source.cancel_job(job_id, total_timeout=left)


def _left(total_timeout: float | None, waited: float) -> float | None:
    # Time queued for a slot counts against the caller's budget.
    if total_timeout is None:
        return None
    left = total_timeout - waited
    if left <= 0:
        raise RequestTimeoutError("the time budget ran out while waiting for a request slot")
    return left


def check_concurrency(concurrency: int, name: str = "concurrency") -> None:
    """Raise ValueError unless ``concurrency`` is an int >= 1."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"{name} must be an int >= 1, got {concurrency!r}")


async def _fan_out(
    job_ids: Iterable[str],
    work: Callable[[str], Coroutine[Any, Any, T]],
    *,
    max_active: int,
) -> AsyncGenerator[tuple[str, T | KooDriveError], None]:
    """Run ``work`` on each distinct id, at most ``max_active`` at once, yielding outcomes
    as they complete. Ids are pulled from ``job_ids`` only when work can start. Leaving the
    iteration early cancels and awaits whatever is still running."""
    if isinstance(job_ids, str | bytes):
        raise ValueError("job_ids must be an iterable of job ids, not one string")
    ids = iter(job_ids)
    seen: set[str] = set()
    done: asyncio.Queue[tuple[str, T | KooDriveError] | BaseException] = asyncio.Queue()
    running: set[asyncio.Task[T]] = set()

    # A done-callback, not a wrapper coroutine around ``work``: a frame less per job.
    def finished(job_id: str, task: asyncio.Task[T]) -> None:
        running.discard(task)
        if task.cancelled():
            done.put_nowait(asyncio.CancelledError(f"the work on job {job_id} was cancelled"))
            return
        error = task.exception()
        if error is None:
            done.put_nowait((job_id, task.result()))
        elif isinstance(error, KooDriveError):  # invalid ids included: InvalidJobIdError
            done.put_nowait((job_id, error))
        else:  # a bug, or an error of the caller's callback: it stops everything
            done.put_nowait(error)

    outstanding = 0  # started and not yet yielded: a task leaves `running` a bit later

    def start_more() -> None:
        nonlocal outstanding
        while outstanding < max_active:
            job_id = next(ids, _END)
            if job_id is _END:
                return
            if isinstance(job_id, str):
                if job_id in seen:  # asked twice: looked up once, answered once
                    continue
                seen.add(job_id)
            task = asyncio.ensure_future(work(job_id))
            outstanding += 1
            running.add(task)
            task.add_done_callback(functools.partial(finished, job_id))

    try:
        start_more()
        while outstanding:
            item = await done.get()
            if isinstance(item, BaseException):
                raise item
            outstanding -= 1
            yield item
            start_more()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def get_jobs(
    source: JobSource,
    job_ids: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    clock: Clock,
) -> AsyncIterator[tuple[str, JobDetail | KooDriveError]]:
    """Look up many jobs; see ``KooDriveClient.get_jobs``."""
    check_concurrency(concurrency)

    async def lookup(job_id: str) -> JobDetail:
        validate_job_id(job_id)
        return await source.get_job(job_id, total_timeout=timeout)

    # Lookups hold a slot from start to end: the task count is the bound.
    async with aclosing(_fan_out(job_ids, lookup, max_active=concurrency)) as outcomes:
        async for item in outcomes:
            yield item


async def wait_for_jobs(
    source: JobSource,
    job_ids: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_waits: int = DEFAULT_MAX_WAITS,
    timeout: float | None,
    poll: PollPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    check: bool = False,
    clock: Clock,
    sleep: Sleep,
) -> AsyncIterator[tuple[str, JobResult | KooDriveError]]:
    """Wait for many jobs; see ``KooDriveClient.wait_for_jobs``."""
    check_concurrency(concurrency)
    check_concurrency(max_waits, "max_waits")
    throttled = _Throttled(source, concurrency, clock)

    # A partial, not a wrapper coroutine: one frame less per waiting job (about 400 bytes).
    wait = functools.partial(
        wait_for_job, throttled, timeout=timeout, poll=poll, on_progress=on_progress,
        stall_timeout=stall_timeout, cancel_job_on_exit=cancel_job_on_exit, check=check,
        clock=clock, sleep=sleep,
    )

    async with aclosing(_fan_out(job_ids, wait, max_active=max_waits)) as outcomes:
        async for item in outcomes:
            yield item
