"""KooDriveClient: the endpoints of SessionClient, plus waiting on jobs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final

from . import fanout, waiter
from ._schedule import PollPolicy
from ._session import SessionClient
from .config import USE_CLIENT_DEFAULT, UseClientDefault, check_seconds
from .errors import KooDriveError
from .models import JobDetail, JobResult

logger: Final = logging.getLogger("koodrive_async")

__all__ = ["KooDriveClient"]


class KooDriveClient(SessionClient):
    """An asyncio client for the KooDrive batch-task API.

    Use it as an async context manager (or call ``aclose()``). It owns one
    ``aiohttp.ClientSession`` (created on first use, closed on exit) unless one is lent with
    ``session=``, which it never closes. Every request carries ``X-User-Id``, a fresh
    ``X-Date`` corrected by the server clock offset learned from each answer's ``Date``
    header, a unique ``X-Traceid``, ``Host`` and, when configured, ``language``.

    A client belongs to the event loop that first used it (like the aiohttp session inside
    it): a call from another loop raises ClientClosedError before anything is sent. Make one
    client per loop.

    Args:
        base_url: The service root, e.g. ``https://intl.myhuaweicloud-koodrive.com``. A path
            (``https://gw.example/koodrive-proxy``) is kept as the prefix of every request
            path. Plain http is refused except for loopback addresses or with
            ``allow_insecure_http``.
        user_id: The KooDrive user id, sent as ``X-User-Id`` (no control characters).
        auth: ``TokenAuth(token_or_async_provider)`` or ``AppAuth(app_id, app_secret)``.
        language: Sent as the ``language`` header (e.g. ``"en-US"``), when given.
        timeout: Seconds for one HTTP attempt, default 30; None for no limit. Each method
            takes ``timeout=`` to override it per call.
        retry: The RetryPolicy for transient failures.
        max_connections: Connection pool size of the session the client creates.
        session: An aiohttp session to borrow; the client never closes it.
        max_response_bytes: Answers larger than this once decoded (error answers included)
            are refused with ResponseDecodeError, and not retried.
        allow_insecure_http: Allow a non-loopback ``http://`` base URL.
        clock: Monotonic seconds, for retry and wait budgets (injectable for tests).
        wall_clock: Epoch seconds, for ``X-Date`` (injectable for tests).
        sleep: Coroutine function used for every wait (injectable for tests).
    """

    async def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT,
        poll: PollPolicy | None = None,
        on_progress: waiter.ProgressCallback | None = None,
        stall_timeout: float | None = None,
        cancel_job_on_exit: bool = False,
        resume: Mapping[str, Any] | None = None,
        check: bool = False,
    ) -> JobResult:
        """Poll a job until it is completed or canceled, and return how it ended.

        The first poll is immediate; later ones follow ``poll`` (a PollPolicy): a growing
        interval, and once progress moves, a poll near the predicted finish. Transient
        failures (no answer, 429, 5xx) are retried within the time budget and do not end the
        wait; a 401 gets the token provider asked again.

        Args:
            job_id: The job to wait for.
            timeout: Seconds for the whole wait (default 900), None for no limit. One last
                poll is made at the deadline (granted ``FINAL_POLL_TIMEOUT`` seconds).
            poll: The PollPolicy; the default suits jobs from seconds to hours.
            on_progress: Called (plain function or coroutine function) with each distinct
                snapshot: a change of status or progress.
            stall_timeout: Seconds; raise JobStalledError when neither status nor progress
                changes for this long.
            cancel_job_on_exit: When the wait ends by timeout, stall or cancellation, send
                CancelJob (shielded, time-boxed) so no orphan job keeps running.
            resume: The ``state`` of an earlier WaitTimeoutError or JobStalledError (plain
                JSON), to carry on where that wait stopped, in this process or another.
            check: Raise JobCanceledError / JobFailedError instead of returning a result
                that is not ``ok``.

        Returns:
            The JobResult: ``ok``, ``canceled``, ``download_url``, ``succeeded``, ``failed``.

        Raises:
            ValueError: A bad job id, timeout or resume state, before any request.
            WaitTimeoutError: The deadline passed; ``.last`` and ``.state`` say where.
            JobStalledError: No change for ``stall_timeout`` seconds.
            APIError, ResponseDecodeError: A definitive error (400, 401 after a token
                refresh, 404, a malformed answer) ends the wait.
        """
        return await waiter.wait_for_job(
            self, job_id, timeout=timeout, poll=poll, on_progress=on_progress,
            stall_timeout=stall_timeout, cancel_job_on_exit=cancel_job_on_exit,
            resume=resume, check=check, clock=self.clock, sleep=self.sleep,
        )

    def watch_job(
        self,
        job_id: str,
        *,
        timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT,
        poll: PollPolicy | None = None,
        stall_timeout: float | None = None,
        cancel_job_on_exit: bool = False,
        resume: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[JobDetail]:
        """Yield each distinct snapshot of a job (a change of status or progress), the
        terminal one last. Same polling, budget and errors as ``wait_for_job``."""
        return waiter.watch_job(
            self, job_id, timeout=timeout, poll=poll, stall_timeout=stall_timeout,
            cancel_job_on_exit=cancel_job_on_exit, resume=resume, clock=self.clock,
            sleep=self.sleep,
        )

    def _bounded_concurrency(self, concurrency: int) -> int:
        # More requests in flight than the pool holds would only queue inside aiohttp, where
        # queued requests starve (p99 in seconds): the bound must be the pool's size at most.
        fanout.check_concurrency(concurrency)
        pool = self.max_connections
        if pool is not None and concurrency > pool:
            logger.info("concurrency %d capped at the connection pool's %d", concurrency, pool)
            return pool
        return concurrency

    def get_jobs(
        self,
        job_ids: Iterable[str],
        *,
        concurrency: int = fanout.DEFAULT_CONCURRENCY,
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> AsyncIterator[tuple[str, JobDetail | KooDriveError]]:
        """Look up many jobs at once; yield ``(job_id, JobDetail or error)`` as each ends.

        Every distinct id ends in exactly one outcome: its JobDetail, or the KooDriveError
        that ended its lookup (NotFoundError, InvalidJobIdError ...); one failure never stops
        the others, and an id given twice is looked up once. Ids are read from ``job_ids``
        (any iterable, a large generator included) only as lookups can start. Leaving the
        ``async for`` early cancels the lookups still running (wrap the iterator in
        ``contextlib.aclosing`` to have that happen at once, not when it is collected).

        Args:
            job_ids: The jobs to look up.
            concurrency: Requests in flight at most (>= 1); capped at the connection pool.
            timeout: Seconds for each HTTP attempt, as on ``get_job``; None for no limit.
            total_timeout: Seconds for each lookup with all its retries, as on ``get_job``.

        Raises:
            ValueError: ``concurrency`` below 1 or a bad timeout, at once.
        """
        if not isinstance(timeout, UseClientDefault):
            check_seconds("timeout", timeout)
        check_seconds("total_timeout", total_timeout)
        return fanout.get_jobs(
            self, job_ids, concurrency=self._bounded_concurrency(concurrency), timeout=timeout,
            total_timeout=total_timeout,
        )

    def wait_for_jobs(
        self,
        job_ids: Iterable[str],
        *,
        concurrency: int = fanout.DEFAULT_CONCURRENCY,
        max_waits: int = fanout.DEFAULT_MAX_WAITS,
        timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT,
        poll: PollPolicy | None = None,
        on_progress: waiter.ProgressCallback | None = None,
        stall_timeout: float | None = None,
        cancel_job_on_exit: bool = False,
        check: bool = False,
    ) -> AsyncIterator[tuple[str, JobResult | KooDriveError]]:
        """Wait for many jobs at once; yield ``(job_id, JobResult or error)`` as each ends.

        Each job is waited on as by ``wait_for_job`` (same ``timeout``, ``poll``,
        ``on_progress``, ``stall_timeout``, ``cancel_job_on_exit``, ``check``). Every distinct
        id ends in exactly one outcome: its JobResult, or the KooDriveError that ended its
        wait (WaitTimeoutError, NotFoundError ...). ``concurrency`` bounds the requests in
        flight, not the waits: a job sleeping between polls holds no slot. Polls are spread
        by the schedule's jitter, and the client's retry budget and ``Retry-After`` pauses
        slow every waiter down together when the server struggles.

        Args:
            job_ids: The jobs to wait for (any iterable, read as waits can start).
            concurrency: Requests in flight at most (>= 1); capped at the connection pool.
            max_waits: Jobs waited on at once at most; further ids are read as waits end.

        Raises:
            ValueError: ``concurrency`` or ``max_waits`` below 1, at once.
        """
        fanout.check_concurrency(max_waits, "max_waits")
        return fanout.wait_for_jobs(
            self, job_ids, concurrency=self._bounded_concurrency(concurrency), max_waits=max_waits,
            timeout=timeout, poll=poll, on_progress=on_progress, stall_timeout=stall_timeout,
            cancel_job_on_exit=cancel_job_on_exit, check=check, clock=self.clock,
            sleep=self.sleep,
        )
