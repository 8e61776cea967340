"""KooDriveClient: holds an auth flow, a transport and a retry loop; the four endpoints,
waits and fan-out."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypedDict

import aiohttp

from . import _convert as convert
from . import _protocol as proto
from . import fanout, waiter
from ._calls import Caller, Timeout
from ._pages import job_list
from ._poll import Clock, Random, Sleep
from ._retry import Retrier, RetryBudget
from ._transport import Transport
from .auth import AppAuth, AuthFlow, TokenAuth
from .config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    PollPolicy,
    RetryPolicy,
    check_seconds,
)
from .errors import KooDriveError
from .models import ActionType, FileRef, JobDetail, JobInfo, JobResult, JobStatus, TaskType

__all__ = ["KooDriveClient"]

class _Time(TypedDict):
    clock: Clock
    sleep: Sleep
    rng: Random
    wall_clock: Clock


class KooDriveClient:
    """An asyncio client for the KooDrive batch-task API.

    Use it as an async context manager (or call ``aclose()``). It owns one
    ``aiohttp.ClientSession`` (created on first use, closed on exit) unless one is lent with
    ``session=``, which it never closes. Every request carries ``X-User-Id``, an ``X-Date``
    corrected by the server clock offset learned from each ``Date``, and an ``X-Traceid``.

    A client belongs to the event loop that first used it (like the aiohttp session inside
    it): a call from another loop raises ClientClosedError before anything is sent. Make one
    client per loop.

    Every API call takes ``timeout=``, seconds for each HTTP attempt (None: no limit; by
    default the client's), and the single calls ``total_timeout=``, seconds for the whole
    call with its retries and their waits: each attempt is capped to the time left, and no
    retry starts after it. Past the retries a call raises APIError (its subclass says the
    status), TransportError (no answer) or ResponseDecodeError (not the documented shape);
    a malformed argument is a ValueError or TypeError before anything is sent.

    Args:
        base_url: The service root, e.g. ``https://intl.myhuaweicloud-koodrive.com``. A path
            (``https://gw.example/koodrive-proxy``) is kept as the prefix of every request
            path. Plain http is refused except for loopback addresses or with
            ``allow_insecure_http``.
        user_id: The KooDrive user id, sent as ``X-User-Id`` (no control characters).
        auth: ``TokenAuth(token_or_provider)`` or ``AppAuth(app_id, app_secret)``.
        language: Sent as the ``language`` header (e.g. ``"en-US"``), when given.
        timeout: Seconds for one HTTP attempt, default 30; None for no limit.
        retry: The RetryPolicy for transient failures.
        max_connections: Connection pool size of the session the client creates.
        session: An aiohttp session to borrow; the client never closes it.
        max_response_bytes: Larger answers, once decoded, raise ResponseDecodeError.
        allow_insecure_http: Allow a non-loopback ``http://`` base URL.
        clock: Monotonic seconds, for retry and wait budgets (injectable for tests).
        wall_clock: Epoch seconds, for ``X-Date`` and saved wait states (injectable).
        sleep: Coroutine function used for every wait (injectable for tests).
        rng: A float in [0, 1) per call: every jittered delay (retries, failed polls) is
            drawn with it (injectable for tests; ``lambda: 1.0`` puts each at its ceiling).
    """

    def __init__(
        self, base_url: str, *, user_id: str, auth: TokenAuth | AppAuth,
        language: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep, rng: Callable[[], float] = random.random,
    ) -> None:
        # Each part checks the arguments it takes (ValueError/TypeError, nothing sent).
        auth_flow = AuthFlow(auth)
        self._transport = Transport(
            base_url, allow_insecure_http=allow_insecure_http, user_id=user_id,
            language=language, auth=auth, session=session,
            max_connections=max_connections, max_response_bytes=max_response_bytes,
            wall_clock=wall_clock,
        )
        self._caller = Caller(
            auth_flow=auth_flow, transport=self._transport,
            retrier=Retrier(retry, clock=clock, sleep=sleep, rng=rng),
            timeout=check_seconds("timeout", timeout), clock=clock,
        )
        # What every wait measures and draws time with.
        self._time = _Time(clock=clock, sleep=sleep, rng=rng, wall_clock=wall_clock)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._transport.session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session the client owns (a borrowed one stays open). Idempotent."""
        await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` ran."""
        return self._transport.closed

    @property
    def base_url(self) -> str:
        """The service root requests go to."""
        return str(self._transport.base)

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the client measures time with (injectable for tests)."""
        return self._time["clock"]

    @property
    def sleep(self) -> Sleep:
        """The sleep the client waits with (injectable for tests)."""
        return self._time["sleep"]

    @property
    def timeout(self) -> float | None:
        """The default seconds for one HTTP attempt."""
        return self._caller.timeout

    @property
    def retry_budget(self) -> RetryBudget:
        """The client-wide retry budget (tokens available, retries denied)."""
        return self._caller.retrier.budget

    @property
    def max_connections(self) -> int | None:
        """Size of the connection pool requests go through (None: unlimited)."""
        return self._transport.pool_size

    @property
    def clock_offset(self) -> float:
        """Seconds the server's clock is ahead of ours (negative: behind), as last learned."""
        return self._transport.clock_offset

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"user_id={self._transport.user_id!r}, auth={self._caller.auth_flow.auth!r}, "
            f"closed={self.closed})"
        )

    # -- the four endpoints ----------------------------------------------------------------

    async def get_job(
        self, job_id: str, *, timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> JobDetail:
        """Look up a job's details (GetJobDetail).

        Returns:
            The JobDetail: ``job_info``, ``task_infos``, ``uncompressed_file_list``.

        Raises:
            InvalidJobIdError: The job id is empty or could change the request path.
            NotFoundError: No such job.
            ResponseDecodeError: A malformed answer, or one about another job.
        """
        data = await self._caller.job_detail(job_id, timeout, total_timeout, skim=False)
        # The secrets an error may not quote are worked out only if the answer is refused.
        return convert.job_detail(data, job_id, secrets=self._caller.secrets)

    async def poll_job(
        self, job_id: str, *, timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> JobDetail:
        """``get_job`` as a waiter polls (``wait_for_job`` without ``on_progress``): while the
        job is pending or processing, only ``job_info`` is read (``task_infos`` and
        ``uncompressed_file_list`` come back empty, the rest of the answer unchecked); once it
        is completed or canceled, the whole answer, as by ``get_job``."""
        data = await self._caller.job_detail(job_id, timeout, total_timeout, skim=True)
        return convert.job_detail(data, job_id, secrets=self._caller.secrets)

    async def create_job(
        self, task_type: TaskType | int | str, *, src_container_id: str,
        dst_container_id: str, files: Iterable[FileRef | str] = (),
        action_type: ActionType | int | str | None = None, new_file_path: str | None = None,
        uncompress_file_paths: Sequence[str] | None = None, password: str | None = None,
        share_folder_id: str | None = None, timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> str:
        """Create a batch job (CreateJob) and return its id.

        Never creates a duplicate: the request is retried only when it certainly did not reach
        the service (the connection could not be opened, a 429, or a 401 answered before any
        work: clock skew or an expired token), never after a timeout, a dropped connection or
        a 5xx. Such an error means the job may or may not exist: look with ``list_jobs``.

        Args:
            task_type: A TaskType (copy, delete, move, restore, decompress, package download,
                empty recycle bin), its number, or its name (``"package_download"``).
            src_container_id: The source space id (``taskInfo.srcContainerId``).
            dst_container_id: The destination space id (``dstContainerId``).
            files: The files to act on: FileRef(file_id, file_path), or bare file ids.
            action_type: An ActionType refining the task (e.g. 201 or
                ``"delete_to_recycle_bin"``).
            new_file_path: Destination path (``taskInfo.newFilePath``).
            uncompress_file_paths: Paths inside an archive to extract (action 503).
            password: The archive password; never logged.
            share_folder_id: Sent as ``x-hw-share-folder-id`` to act in a shared folder.
        """
        body, extra = proto.create_job_request(
            task_type, src_container_id=src_container_id, dst_container_id=dst_container_id,
            files=files, action_type=action_type, new_file_path=new_file_path,
            uncompress_file_paths=uncompress_file_paths, password=password,
            share_folder_id=share_folder_id,
        )
        data = await self._caller.send(
            "POST", proto.JOBS_PATH, body=body, timeout=timeout, idempotent=False,
            extra_headers=extra, deadline=self._caller.deadline(total_timeout),
        )
        return convert.decode_job_id(data)

    def list_jobs(
        self, *, task_type: TaskType | int | str | None = None,
        status: JobStatus | int | str | None = None, page_size: int = proto.MAX_PAGE,
        offset: int = 0, max_pages: int = proto.DEFAULT_MAX_PAGES,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> AsyncGenerator[JobInfo, None]:
        """Every job matching the filters (GetJobList), fetching page after page.

        The service gives no total: paging stops at the first page shorter than
        ``page_size``, after ``max_pages`` pages, or with ResponseDecodeError if the service
        sends the same page twice (it would otherwise never end).

        Args:
            task_type: Only jobs of this TaskType (a member, its number, or its name: ``"copy"``).
            status: Only jobs in this JobStatus (a member, 1, or ``"processing"``).
            page_size: Jobs per request, 1 to 100.
            offset: Where to start; the carrier flavour wants offsets above 0, so pass 1 there.
            max_pages: Upper bound on the requests made.
        """
        filters = proto.list_filters(
            task_type=task_type, status=status, page_size=page_size, offset=offset,
            max_pages=max_pages,
        )
        return job_list(
            self._caller, filters, page_size=page_size, offset=offset, max_pages=max_pages,
            timeout=timeout,
        )

    async def cancel_job(
        self, job_id: str, *, timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> None:
        """Cancel a pending or processing job (CancelJob).

        Raises:
            InvalidJobIdError: The job id is malformed.
            BadRequestError: The job can no longer be canceled (completed or canceled).
        """
        proto.validate_job_id(job_id)
        await self._caller.send(
            "POST", proto.CANCEL_PATH, body={"jobId": job_id}, timeout=timeout,
            deadline=self._caller.deadline(total_timeout),
        )

    # -- waits -----------------------------------------------------------------------------

    async def wait_for_job(
        self, job_id: str, *, timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT,
        poll: PollPolicy | None = None, on_progress: waiter.ProgressCallback | None = None,
        on_checkpoint: waiter.CheckpointCallback | None = None,
        stall_timeout: float | None = None, cancel_job_on_exit: bool = False,
        resume: Mapping[str, Any] | None = None, check: bool = False,
    ) -> JobResult:
        """Poll a job until it is completed or canceled, and return how it ended.

        The first poll is immediate; later ones follow ``poll`` (a PollPolicy): a growing
        interval, and once progress moves, a poll near the predicted finish. Transient failures
        (no answer, 429, a 5xx but 501 and 505) do not end the wait; a 401 asks the token again.

        Args:
            job_id: The job to wait for.
            timeout: Seconds for the whole wait (default 900), None for no limit. One last
                poll is made at the deadline (granted ``FINAL_POLL_TIMEOUT`` seconds).
            poll: The PollPolicy; the default suits jobs from seconds to hours.
            on_progress: Called (plain function or coroutine function) with each distinct
                snapshot: a change of status or progress.
            on_checkpoint: Called (plain or coroutine function) after every answered poll
                with the wait's JSON-serialisable state, which ``resume=`` accepts: a wait cut
                short by a crash or a deploy carries on from it (dead time counted).
            stall_timeout: Raise JobStalledError after this many seconds without a change.
            cancel_job_on_exit: Send CancelJob (shielded, time-boxed) when the wait ends by
                timeout, stall or cancellation: no orphan job keeps running.
            resume: A checkpoint, or the ``state`` of an earlier WaitTimeoutError or
                JobStalledError (plain JSON), to carry on where that wait stopped, in this
                process or another.
            check: Raise JobCanceledError / JobFailedError for a result that is not ``ok``.

        Returns:
            The JobResult (``ok``, ``canceled``, ``download_url``, ``succeeded`` ...).

        Raises:
            ValueError: A bad job id, timeout or resume state, before any request.
            WaitTimeoutError: The deadline passed; ``.last`` and ``.state`` say where.
            JobStalledError: No change for ``stall_timeout`` seconds.
            CallbackError: ``on_progress`` or ``on_checkpoint`` raised.
            APIError, ResponseDecodeError: A definitive error (400, 401 after a token
                refresh, 404, four malformed answers in a row) ends the wait.
        """
        return await waiter.wait_for_job(
            self, job_id, timeout=timeout, poll=poll, on_progress=on_progress,
            on_checkpoint=on_checkpoint, stall_timeout=stall_timeout,
            cancel_job_on_exit=cancel_job_on_exit, resume=resume, check=check, **self._time,
        )

    def watch_job(
        self, job_id: str, *, timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT,
        poll: PollPolicy | None = None, on_checkpoint: waiter.CheckpointCallback | None = None,
        stall_timeout: float | None = None, cancel_job_on_exit: bool = False,
        resume: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[JobDetail, None]:
        """Yield each distinct snapshot of a job (a change of status or progress), the
        terminal one last. Same polling, budget, checkpoints and errors as
        ``wait_for_job``."""
        return waiter.watch_job(
            self, job_id, timeout=timeout, poll=poll, on_checkpoint=on_checkpoint,
            stall_timeout=stall_timeout, cancel_job_on_exit=cancel_job_on_exit, resume=resume,
            **self._time,
        )

    # -- many jobs at once -----------------------------------------------------------------

    def get_jobs(
        self, job_ids: Iterable[str], *, concurrency: int = fanout.DEFAULT_CONCURRENCY,
        timeout: Timeout = USE_CLIENT_DEFAULT, total_timeout: float | None = None,
    ) -> AsyncGenerator[tuple[str, JobDetail | KooDriveError], None]:
        """Look up many jobs at once; yield ``(job_id, JobDetail or error)`` as each ends.

        Every distinct id ends in exactly one outcome: its JobDetail, or the KooDriveError
        that ended its lookup (NotFoundError, InvalidJobIdError ...); an id given twice is
        looked up once. ``job_ids`` (any iterable, a large generator included) is read only
        as lookups can start; ``concurrency`` (>= 1, capped at the connection pool) bounds
        the requests in flight; ``timeout`` and ``total_timeout`` bound each lookup as on
        ``get_job``. Leaving the ``async for`` early cancels the lookups still running (wrap
        it in ``contextlib.aclosing`` to have that happen at once, not when collected).
        """
        return fanout.get_jobs(
            self, job_ids, concurrency=concurrency, pool=self.max_connections,
            timeout=timeout, total_timeout=total_timeout,
        )

    def wait_for_jobs(
        self, job_ids: Iterable[str], *, concurrency: int = fanout.DEFAULT_CONCURRENCY,
        max_waits: int = fanout.DEFAULT_MAX_WAITS,
        timeout: float | None = waiter.DEFAULT_WAIT_TIMEOUT, poll: PollPolicy | None = None,
        on_progress: waiter.ProgressCallback | None = None,
        on_checkpoint: waiter.CheckpointCallback | None = None,
        stall_timeout: float | None = None, cancel_job_on_exit: bool = False,
        check: bool = False,
    ) -> AsyncGenerator[tuple[str, JobResult | KooDriveError], None]:
        """Wait for many jobs at once; yield ``(job_id, JobResult or error)`` as each ends.

        Each job is waited on as by ``wait_for_job`` (same ``timeout``, ``poll``,
        ``on_progress``, ``on_checkpoint``, whose ``state["job_id"]`` says which job,
        ``stall_timeout``, ``cancel_job_on_exit``, ``check``). Every distinct id ends in
        exactly one outcome: its JobResult, or the KooDriveError that ended its wait
        (WaitTimeoutError, NotFoundError, a callback's CallbackError ...). ``concurrency``
        (>= 1, capped at the connection pool) bounds the requests in flight, not the waits:
        a job sleeping between polls holds no slot. ``max_waits`` bounds the jobs waited on
        at once; ``job_ids`` is read as waits can start. The client's retry budget and
        ``Retry-After`` pauses slow every waiter down together when the server struggles.
        """
        return fanout.wait_for_jobs(
            self, job_ids, concurrency=concurrency, pool=self.max_connections,
            max_waits=max_waits, timeout=timeout, poll=poll, on_progress=on_progress,
            on_checkpoint=on_checkpoint, stall_timeout=stall_timeout,
            cancel_job_on_exit=cancel_job_on_exit, check=check, **self._time,
        )
