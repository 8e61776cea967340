"""KooDriveClient: the endpoints of SessionClient, plus waiting on jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from . import waiter
from ._schedule import PollPolicy
from ._session import SessionClient
from .models import JobDetail, JobResult

__all__ = ["KooDriveClient"]


class KooDriveClient(SessionClient):
    """An asyncio client for the KooDrive batch-task API.

    Use it as an async context manager (or call ``aclose()``). It owns one
    ``aiohttp.ClientSession`` (created on first use, closed on exit) unless one is lent with
    ``session=``, which it never closes. Every request carries ``X-User-Id``, a fresh
    ``X-Date`` corrected by the server clock offset learned from each answer's ``Date``
    header, a unique ``X-Traceid``, ``Host`` and, when configured, ``language``.

    Args:
        base_url: The service root, e.g. ``https://intl.myhuaweicloud-koodrive.com``. Plain
            http is refused except for loopback addresses or with ``allow_insecure_http``.
        user_id: The KooDrive user id, sent as ``X-User-Id``.
        auth: ``TokenAuth(token_or_async_provider)`` or ``AppAuth(app_id, app_secret)``.
        language: Sent as the ``language`` header (e.g. ``"en-US"``), when given.
        timeout: Seconds for one HTTP attempt, default 30; None for no limit. Each method
            takes ``timeout=`` to override it per call.
        retry: The RetryPolicy for transient failures.
        max_connections: Connection pool size of the session the client creates.
        session: An aiohttp session to borrow; the client never closes it.
        max_response_bytes: Larger answers are refused with ResponseDecodeError.
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
