"""Bounded fan-out: many lookups or waits at once, outcomes in completion order.

Written against the public ``get_job`` / ``cancel_job`` of a JobSource. At most
``concurrency`` lookups at once (one request and its retries each), made by as many worker
tasks; each wait is a task of its own, and waits share a semaphore of ``concurrency`` request
slots (a wait sleeping between polls holds none). Ids are read from the iterable only as
work can start, and each distinct id ends in exactly one outcome: its result, or the
KooDriveError that ended it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import logging
import random
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
)
from typing import Any, Final, Protocol, TypeVar

from ._poll import Clock, JobSource, Random, Sleep
from .config import USE_CLIENT_DEFAULT, PollPolicy, UseClientDefault, check_count, check_seconds
from .errors import KooDriveError, RequestTimeoutError
from .models import JobDetail, JobResult
from .waiter import CheckpointCallback, ProgressCallback, WaitOptions
from .waiter import wait as waiter_wait

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_WAITS", "get_jobs", "wait_for_jobs"]

logger: Final = logging.getLogger("koodrive_async.http")

T = TypeVar("T")
# Marks the end of the ids: None could be an (invalid) id the caller must hear about.
_END: Final[Any] = object()

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
        return await self._held(self._source.get_job, job_id, total_timeout)

    async def poll_job(self, job_id: str, *, total_timeout: float | None = None) -> JobDetail:
        poll = getattr(self._source, "poll_job", self._source.get_job)
        return await self._held(poll, job_id, total_timeout)

    async def cancel_job(self, job_id: str, *, total_timeout: float | None = None) -> None:
        await self._held(self._source.cancel_job, job_id, total_timeout)

    async def _held(
        self, call: Callable[..., Awaitable[T]], job_id: str, total_timeout: float | None
    ) -> T:
        queued = self._clock()
        async with self._slots:
            left = _left(total_timeout, self._clock() - queued)
            return await call(job_id, total_timeout=left)


def _slots(concurrency: int, pool: int | None) -> int:
    """``concurrency``, checked, and capped at the connection pool's size: more requests in
    flight than the pool holds would only queue inside aiohttp, where queued requests starve
    (p99 in seconds)."""
    check_count("concurrency", concurrency)
    if pool is not None and concurrency > pool:
        logger.debug("concurrency %d capped at the connection pool's %d", concurrency, pool)
        return pool
    return concurrency


def _left(total_timeout: float | None, waited: float) -> float | None:
    # Time queued for a slot counts against the caller's budget.
    if total_timeout is None:
        return None
    left = total_timeout - waited
    if left <= 0:
        raise RequestTimeoutError("the time budget ran out while waiting for a request slot")
    return left


class _Ids:
    """The ids of a fan-out, read one at a time as work can start: each distinct string once
    (an id asked twice is looked up once, answered once), any other value as it is, for the
    work to refuse (InvalidJobIdError)."""

    def __init__(self, job_ids: Iterable[str]) -> None:
        if isinstance(job_ids, str | bytes):
            raise ValueError("job_ids must be an iterable of job ids, not one string")
        self._ids = iter(job_ids)
        self._seen: set[str] = set()
        self.exhausted = False

    def take(self) -> Any:
        """The next id to work on, or _END once there is none (the iterable is not read
        again after its end)."""
        while not self.exhausted:
            job_id = next(self._ids, _END)
            if job_id is _END:
                self.exhausted = True
            elif not isinstance(job_id, str):
                return job_id
            elif job_id not in self._seen:
                self._seen.add(job_id)
                return job_id
        return _END


class _Owned:
    """The tasks of a fan-out (its own collection, as it grows and shrinks), for as long as
    the stream is consumed.

    On exit (the iteration ended, left early or failed) they are cancelled and awaited; and
    when the task consuming the stream is cancelled while the stream waits at a yield (in
    the loop's body, say), at once, as the generator may stay suspended there, unclosed, for
    as long as anything references it; resumed after that, the stream raises
    ``_abandoned()``. The consumer is the task that last resumed the stream: one
    that handed it on and ended normally (``asyncio.wait_for(anext(stream), ...)`` on 3.11
    runs each ``anext`` in a task of its own) stops nothing. A class, not a generator: at
    the loop's shutdown a generator inside the fan-out's could be closed before it.
    """

    def __init__(self, tasks: Collection[asyncio.Task[Any]]) -> None:
        self._tasks = tasks
        self._consumer: asyncio.Task[Any] | None = None
        self._stopped = False

    def adopt(self) -> None:
        """Bind the tasks to the task now resuming the stream; raise ``_abandoned()`` if
        they were cancelled with the one before (before any work is handed over or begun)."""
        if self._stopped:
            raise _abandoned()
        task = asyncio.current_task()
        if task is not self._consumer:
            if self._consumer is not None:
                self._consumer.remove_done_callback(self._ended)
            self._consumer = task
            if task is not None:
                task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._stopped = True
            self._stop()

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def __aenter__(self) -> _Owned:
        self.adopt()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            self._consumer.remove_done_callback(self._ended)
        self._stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _abandoned() -> KooDriveError:
    return KooDriveError(
        "this fan-out's work was cancelled with the task consuming it: the stream cannot "
        "go on (start a new one for the ids without an outcome)"
    )


async def _fan_out(
    job_ids: Iterable[str],
    work: Callable[[str], Coroutine[Any, Any, T]],
    *,
    max_active: int,
) -> AsyncGenerator[tuple[str, T | KooDriveError], None]:
    """Run ``work`` on each distinct id, at most ``max_active`` at once, yielding outcomes
    as they complete.

    Each id's work is a task of its own, named by the id, whose done callback queues it for
    the consumer: no coroutine of ours sits between a wait and its task (about 350 bytes a
    waiting job). An id is taken only when an outcome slot is free (at most ``max_active``
    taken and not yet yielded), so a slow consumer holds the work back instead of piling
    outcomes up. Leaving the iteration early cancels and awaits the work, and so does the
    end of the task that consumes the stream (cancelled in the loop's body, say), even while
    the generator is still referenced.
    """
    ids = _Ids(job_ids)
    finished: asyncio.Queue[asyncio.Task[T]] = asyncio.Queue()
    # One bound method and one context for every task's callback, not one of each per task.
    finish, quiet = finished.put_nowait, contextvars.Context()
    running: set[asyncio.Task[T]] = set()
    odd: dict[asyncio.Task[T], Any] = {}  # ids that are not strings, so cannot be a name
    loop = asyncio.get_running_loop()

    def fill() -> None:
        while len(running) < max_active:
            job_id = ids.take()
            if job_id is _END:
                return
            if isinstance(job_id, str):
                start(job_id, job_id)
            else:
                odd[start(job_id, None)] = job_id

    def start(job_id: Any, name: str | None) -> asyncio.Task[T]:
        task = loop.create_task(work(job_id), name=name)
        task.add_done_callback(finish, context=quiet)
        running.add(task)
        return task

    async with _Owned(running) as owned:
        fill()
        while running:
            task = await finished.get()
            running.discard(task)
            fill()  # the slot frees as the outcome is handed over
            job_id = odd.pop(task) if odd and task in odd else task.get_name()
            try:
                outcome: T | KooDriveError = task.result()
            except KooDriveError as exc:  # invalid ids included: InvalidJobIdError
                outcome = exc
            # Anything else is a bug, or an error of the caller's callback: it stops all.
            yield job_id, outcome
            owned.adopt()


class _Raised:
    """What a lookup raised that is not a KooDriveError (a bug, or the ids' own iterator
    failing): handed to the consumer, which raises it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _pooled(
    job_ids: Iterable[str],
    work: Callable[[str], Coroutine[Any, Any, T]],
    *,
    max_active: int,
) -> AsyncGenerator[tuple[str, T | KooDriveError], None]:
    """``_fan_out`` for short work (lookups), by at most ``max_active`` worker tasks that
    each take the next id as they finish one: the same outcomes and clean-up; at most
    ``max_active`` at work and as many finished, not yet handed over.

    A task per lookup, or a wait per lookup for the consumer to free a slot, made the garbage
    collector run about 20 times as often: 13 % of a lookup's CPU. A worker lives for many
    lookups and waits only while the consumer is slower than they are. Waits stay a task
    each (``_fan_out``).
    """
    ids = _Ids(job_ids)
    finished: asyncio.Queue[tuple[Any, Any] | _Raised | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    queued = 0  # outcomes not yet handed over: a worker waits while there are max_active
    # Workers waiting for the consumer, woken one per handover.
    blocked: collections.deque[asyncio.Future[None]] = collections.deque()

    async def worker(job_id: Any) -> None:
        nonlocal queued
        try:
            while job_id is not _END:
                try:
                    outcome: Any = await work(job_id)
                except KooDriveError as exc:  # invalid ids included: InvalidJobIdError
                    outcome = exc
                finished.put_nowait((job_id, outcome))
                queued += 1
                while queued >= max_active and not ids.exhausted:
                    room = loop.create_future()
                    blocked.append(room)
                    await room
                job_id = ids.take()
            finished.put_nowait(None)
        except BaseException as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Anything else is a bug, an error of the ids' iterator, or a callback's: it
            # stops all.
            finished.put_nowait(_Raised(exc))

    workers: list[asyncio.Task[None]] = []
    async with _Owned(workers) as owned:
        while len(workers) < max_active:
            first = ids.take()
            if first is _END:
                break
            workers.append(loop.create_task(worker(first)))
        working = len(workers)
        while working:
            item = await finished.get()
            if item is None:
                working -= 1
            elif type(item) is _Raised:
                raise item.error
            else:
                queued -= 1
                while blocked:
                    room = blocked.popleft()
                    if not room.done():
                        room.set_result(None)
                        break
                yield item  # type: ignore[misc]
                owned.adopt()


# get_jobs and wait_for_jobs return _pooled's and _fan_out's generators themselves, not ones
# of their own wrapping them: a generator inside a generator may be closed by the loop's
# shutdown before its parent is (both at once), and each layer costs a frame switch per
# outcome.


class Lookups(Protocol):
    """What ``get_jobs`` needs of a client: KooDriveClient is one."""

    async def get_job(
        self,
        job_id: str,
        *,
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> JobDetail:
        """GetJobDetail: ``timeout`` per attempt, all retries within ``total_timeout``."""
        ...


def get_jobs(
    source: Lookups,
    job_ids: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    pool: int | None = None,
    timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
    total_timeout: float | None = None,
) -> AsyncGenerator[tuple[str, JobDetail | KooDriveError], None]:
    """Look up many jobs; see ``KooDriveClient.get_jobs``. Arguments are checked at once
    (``pool``: the connection pool's size, which caps ``concurrency``)."""
    concurrency = _slots(concurrency, pool)
    if not isinstance(timeout, UseClientDefault):
        check_seconds("timeout", timeout)
    check_seconds("total_timeout", total_timeout)
    # get_job validates the id (InvalidJobIdError): a partial spares a frame per lookup.
    lookup = functools.partial(source.get_job, timeout=timeout, total_timeout=total_timeout)
    # At most concurrency lookups at work, and as many outcomes waiting for the consumer.
    return _pooled(job_ids, lookup, max_active=concurrency)


def wait_for_jobs(
    source: JobSource,
    job_ids: Iterable[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    pool: int | None = None,
    max_waits: int = DEFAULT_MAX_WAITS,
    timeout: float | None,
    poll: PollPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    stall_timeout: float | None = None,
    cancel_job_on_exit: bool = False,
    check: bool = False,
    clock: Clock,
    sleep: Sleep,
    rng: Random = random.random,
    wall_clock: Clock = time.time,
) -> AsyncGenerator[tuple[str, JobResult | KooDriveError], None]:
    """Wait for many jobs; see ``KooDriveClient.wait_for_jobs``. Arguments are checked at
    once (``pool``: the connection pool's size, which caps ``concurrency``)."""
    throttled = _Throttled(source, _slots(concurrency, pool), clock)
    check_count("max_waits", max_waits)
    check_seconds("timeout", timeout)
    check_seconds("stall_timeout", stall_timeout)

    # A partial, not a wrapper coroutine: one frame less per waiting job (about 400 bytes);
    # and one WaitOptions for all the waits, not a dozen arguments in each one's frame.
    options = WaitOptions(
        timeout=timeout, poll=poll, on_progress=on_progress, on_checkpoint=on_checkpoint,
        stall_timeout=stall_timeout, cancel_job_on_exit=cancel_job_on_exit, check=check,
        clock=clock, sleep=sleep, rng=rng, wall_clock=wall_clock,
    )
    wait = functools.partial(waiter_wait, throttled, options=options)
    return _fan_out(job_ids, wait, max_active=max_waits)
