"""SessionClient: the one user of aiohttp's client. One session, retries, clock skew, auth.

It implements the four endpoints; ``client.KooDriveClient`` adds the waiter and the fan-out
on top of it (those are written against these public methods only).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import backoff
import orjson
import yarl

from . import _protocol as proto
from ._budget import RetryBudget
from ._transport import read_capped
from .auth import SIGNED_HEADERS, AppAuth, TokenAuth
from .config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    RetryPolicy,
    UseClientDefault,
    check_header_value,
    check_seconds,
    enum_value,
)
from .errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    KooDriveError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    TokenProviderError,
    TransportError,
)
from .models import ActionType, FileRef, JobDetail, JobInfo, JobStatus, TaskType

__all__ = ["SessionClient"]

logger: Final = logging.getLogger("koodrive_async")

Timeout = float | None | UseClientDefault
Sleep = Callable[[float], Awaitable[None]]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
_MAX_PAGE: Final = 100
_DEFAULT_MAX_PAGES: Final = 10_000
# Retry-After values are kept up to a day, to report them; waiting is capped by the policy.
_RETRY_AFTER_LIMIT: Final = 86_400.0


class _Retry:
    """The retry state of one call: attempts made, tokens spent, the delay sequence."""

    __slots__ = ("_ceilings", "attempts", "policy", "spent", "started")

    def __init__(self, policy: RetryPolicy, started: float) -> None:
        self.policy = policy
        self.started = started
        self.attempts = 1
        self.spent = 0
        self._ceilings: Iterator[float] | None = None  # made at the first retry: most calls
        # never need one

    def next_delay(self) -> float:
        if self._ceilings is None:
            policy = self.policy
            self._ceilings = backoff.expo(
                base=policy.multiplier, factor=policy.initial_delay, max_value=policy.max_delay
            )
            next(self._ceilings)  # the generator's first value only primes it
        ceiling = next(self._ceilings)
        return backoff.full_jitter(ceiling) if self.policy.jitter else ceiling


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> yarl.URL:
    if not isinstance(base_url, str) or not base_url:
        raise ValueError("base_url is required, e.g. 'https://intl.myhuaweicloud-koodrive.com'")
    url = yarl.URL(base_url)
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
    if url.user or url.password:
        raise ValueError("base_url must not carry credentials")
    if url.query_string or url.fragment:
        raise ValueError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not (allow_insecure_http or _is_loopback(url.host)):
        raise ValueError(
            f"base_url {base_url!r} is not https: refused, as tokens would travel in clear "
            "(loopback addresses are allowed; pass allow_insecure_http=True to override)"
        )
    # A path is a prefix every request path goes under (a gateway's mount point), so the
    # API's own path must not be in it: it would be sent twice.
    prefix = url.path.rstrip("/")
    if (prefix + "/").endswith(proto.API_PREFIX):
        raise ValueError(
            f"base_url {base_url!r} ends with the API path {proto.API_PREFIX!r}: give the "
            "service root (a gateway's prefix is fine), the client adds the API path"
        )
    return url.with_path(prefix)


class SessionClient:
    """The KooDrive batch-task endpoints over one aiohttp session.

    Users want ``KooDriveClient``, which adds waiting and fan-out; its docstring documents
    the constructor arguments.
    """

    def __init__(
        self,
        base_url: str,
        *,
        user_id: str,
        auth: TokenAuth | AppAuth,
        language: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._base = _check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValueError("user_id is required (the KooDrive user id sent as X-User-Id)")
        check_header_value("user_id", user_id)
        if language is not None:
            check_header_value("language", language)
        if not isinstance(auth, TokenAuth | AppAuth):
            raise TypeError(f"auth must be TokenAuth or AppAuth, not {type(auth).__name__}")
        _check_count("max_connections", max_connections)
        _check_count("max_response_bytes", max_response_bytes)
        self._user_id = user_id.strip()
        self._auth = auth
        self._language = language
        self._timeout = check_seconds("timeout", timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._max_connections = max_connections
        self._session = session
        self._owns_session = session is None
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._host = self._base.host_port_subcomponent or ""
        self._closed = False
        self._clock_offset = 0.0
        # A static token's header is made once; a provider's is asked for at the first call.
        self._token_header: str | None = (
            auth.header_value(auth.token)
            if isinstance(auth, TokenAuth) and isinstance(auth.token, str)
            else None
        )
        self._token_generation = 0
        self._token_task: asyncio.Future[str] | None = None
        self._token_waiters = 0
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._cooldown_until = float("-inf")
        policy = self._retry
        self._budget = RetryBudget(
            capacity=policy.budget, retry_cost=policy.retry_cost,
            timeout_retry_cost=policy.timeout_retry_cost, success_refund=policy.success_refund,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session the client owns (a borrowed one stays open). Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` ran."""
        return self._closed

    @property
    def base_url(self) -> str:
        """The service root requests go to."""
        return str(self._base)

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the client measures time with (injectable for tests)."""
        return self._clock

    @property
    def sleep(self) -> Sleep:
        """The sleep the client waits with (injectable for tests)."""
        return self._sleep

    @property
    def timeout(self) -> float | None:
        """The default seconds for one HTTP attempt."""
        return self._timeout

    @property
    def retry_budget(self) -> RetryBudget:
        """The client-wide retry budget (tokens available, retries denied)."""
        return self._budget

    @property
    def max_connections(self) -> int | None:
        """Size of the connection pool requests go through (None: unlimited)."""
        if self._session is not None and not self._owns_session:
            limit = self._session.connector.limit if self._session.connector else 0
            return limit or None
        return self._max_connections

    @property
    def clock_offset(self) -> float:
        """Seconds the server's clock is ahead of ours (negative: behind), as last learned."""
        return self._clock_offset

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, user_id={self._user_id!r}, "
            f"auth={self._auth!r}, closed={self._closed})"
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("this client is closed; create a new one")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                auto_decompress=True,
            )
        return self._session

    # -- the four endpoints ----------------------------------------------------------------

    async def get_job(
        self,
        job_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> JobDetail:
        """Look up a job's details (GetJobDetail).

        Args:
            job_id: The job id, as returned by ``create_job``.
            timeout: Seconds for each HTTP attempt; None for no limit.
            total_timeout: Seconds for the whole call, retries and their waits included:
                each attempt is capped to the time left, and no retry starts after it.

        Returns:
            The JobDetail: ``job_info``, ``task_infos``, ``uncompressed_file_list``.

        Raises:
            ValueError: The job id is empty or could change the request path.
            NotFoundError: No such job.
            ResponseDecodeError: A malformed answer, or one about another job.
            APIError, TransportError, ResponseDecodeError: As the names say, after retries.
        """
        path = proto.job_path(proto.validate_job_id(job_id))
        data = await self._call(
            "GET", path, timeout=timeout, deadline=self._deadline(total_timeout)
        )
        # The Authorization sent is not known here: the current token (and the app secret)
        # are what a quoted value could echo.
        return proto.job_detail(data, job_id, authorization=self._token_header, auth=self._auth)

    async def create_job(
        self,
        task_type: TaskType | int | str,
        *,
        src_container_id: str,
        dst_container_id: str,
        files: Iterable[FileRef | str] = (),
        action_type: ActionType | int | str | None = None,
        new_file_path: str | None = None,
        uncompress_file_paths: Sequence[str] | None = None,
        password: str | None = None,
        share_folder_id: str | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
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
            timeout: Seconds for each HTTP attempt; None for no limit.
            total_timeout: Seconds for the whole call, retries included.

        Raises:
            ValueError: A required argument is missing or malformed.
            APIError, TransportError, ResponseDecodeError: As the names say.
        """
        task_type = enum_value("task_type", TaskType, task_type)
        if action_type is not None:
            action_type = enum_value("action_type", ActionType, action_type)
        body = proto.create_job_body(
            task_type,
            src_container_id=src_container_id,
            dst_container_id=dst_container_id,
            files=files,
            action_type=action_type,
            new_file_path=new_file_path,
            uncompress_file_paths=uncompress_file_paths,
            password=password,
        )
        extra = None
        if share_folder_id is not None:
            extra = {"x-hw-share-folder-id": check_header_value("share_folder_id",
                                                                share_folder_id)}
        data = await self._call(
            "POST", proto.JOBS_PATH, body=body, timeout=timeout, idempotent=False,
            extra_headers=extra, deadline=self._deadline(total_timeout),
        )
        return proto.decode_job_id(data)

    async def list_jobs(
        self,
        *,
        task_type: TaskType | int | str | None = None,
        status: JobStatus | int | str | None = None,
        page_size: int = _MAX_PAGE,
        offset: int = 0,
        max_pages: int = _DEFAULT_MAX_PAGES,
        timeout: Timeout = USE_CLIENT_DEFAULT,
    ) -> AsyncIterator[JobInfo]:
        """Every job matching the filters (GetJobList), fetching page after page.

        The service gives no total: paging stops at the first page shorter than
        ``page_size``, after ``max_pages`` pages, or with ResponseDecodeError if the service
        sends the same page twice (it would otherwise never end).

        Args:
            task_type: Only jobs of this TaskType (a member, its number, or its name:
                ``"copy"``, ``"package_download"``).
            status: Only jobs in this JobStatus (``kd.JobStatus.PROCESSING``, 1 or
                ``"processing"``).
            page_size: Jobs per request, 1 to 100.
            offset: Where to start; the carrier flavour wants offsets above 0, so pass 1 there.
            max_pages: Upper bound on the requests made.
            timeout: Seconds for each HTTP attempt; None for no limit.
        """
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be 1 to {_MAX_PAGE}, got {page_size!r}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset!r}")
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages!r}")
        filters: list[tuple[str, str]] = []
        if task_type is not None:
            filters.append(("type", str(int(enum_value("task_type", TaskType, task_type)))))
        if status is not None:
            filters.append(("status", str(int(enum_value("status", JobStatus, status)))))
        previous: list[JobInfo] | None = None
        for _ in range(max_pages):
            query = [*filters, ("offset", str(offset)), ("limit", str(page_size))]
            data = await self._call("GET", proto.JOBS_PATH, query=query, timeout=timeout)
            page = proto.structure_list(
                data, JobInfo, what="GetJobList",
                secrets=proto.secrets_of(self._auth, self._token_header),
            )
            if page and page == previous:
                raise ResponseDecodeError(
                    f"GetJobList sent the same page again at offset {offset}: stopping"
                )
            for info in page:
                yield info
            if len(page) < page_size:
                return
            previous = page
            offset += page_size

    async def cancel_job(
        self,
        job_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        total_timeout: float | None = None,
    ) -> None:
        """Cancel a pending or processing job (CancelJob).

        Args:
            job_id: The job to cancel.
            timeout: Seconds for each HTTP attempt; None for no limit.
            total_timeout: Seconds for the whole call, retries included.

        Raises:
            ValueError: The job id is malformed.
            BadRequestError: The job can no longer be canceled (completed or canceled).
            APIError, TransportError: As the names say.
        """
        proto.validate_job_id(job_id)
        await self._call(
            "POST", proto.CANCEL_PATH, body={"jobId": job_id}, timeout=timeout,
            deadline=self._deadline(total_timeout),
        )

    # -- one request, with retries ---------------------------------------------------------

    def _deadline(self, total_timeout: float | None) -> float | None:
        seconds = check_seconds("total_timeout", total_timeout)
        return None if seconds is None else self._clock() + seconds

    def _attempt_timeout(self, timeout: Timeout, deadline: float | None) -> float | None:
        limit = self._timeout if isinstance(timeout, UseClientDefault) else timeout
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                raise RequestTimeoutError("no time left for the request before the deadline")
            limit = left if limit is None else min(limit, left)
        return limit

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        deadline: float | None = None,
        idempotent: bool = True,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one API request, retrying as the policy says; return the envelope's data.

        ``deadline`` (on ``clock``) bounds every attempt and every wait between attempts.
        """
        if not isinstance(timeout, UseClientDefault):
            timeout = check_seconds("timeout", timeout)
        self._check_loop(self._get_session())
        payload = orjson.dumps(body) if body is not None else b""
        retry = _Retry(self._retry, self._clock())
        clock_retried = token_refreshed = False
        while True:
            generation = self._token_generation
            try:
                if self._cooldown_until > self._clock():
                    await self._wait_for_cooldown(retry, deadline)
                data = await self._attempt(
                    method, path, query, payload, self._attempt_timeout(timeout, deadline),
                    extra_headers,
                )
            except ClientClosedError:
                raise
            except KooDriveError as exc:
                if self._closed:  # aclose() while this call was in flight
                    raise ClientClosedError(f"{method} {path}: the client was closed") from exc
                if isinstance(exc, APIError) and exc.retry_after:
                    self._pause(exc.retry_after)
                if not isinstance(exc, AuthenticationError):
                    delay = self._retry_delay(exc, retry, deadline, idempotent=idempotent)
                    if delay is None:
                        raise
                    logger.debug("%s %s: %s; retry %d in %.2f s", method, path, exc,
                                 retry.attempts, delay)
                    await self._sleep(delay)
                    continue
                # A 401 was answered before any work: safe to send again, even a CreateJob.
                if exc.clock_skew and not clock_retried:
                    clock_retried = True
                    logger.info("%s %s: 401 explained by clock skew; retrying with X-Date "
                                "corrected by %.1f s", method, path, self._clock_offset)
                    continue
                if self._auth_refreshable and not token_refreshed:
                    token_refreshed = True
                    logger.info("%s %s: 401; asking the token provider again", method, path)
                    self._refresh_token(generation)
                    continue
                raise
            else:
                self._budget.succeeded(retry.spent)
                return data

    def _retry_delay(
        self, exc: KooDriveError, retry: _Retry, deadline: float | None, *, idempotent: bool
    ) -> float | None:
        """Seconds to wait before retrying after ``exc``, or None to raise it."""
        policy = retry.policy
        if not proto.is_retryable(exc) or retry.attempts >= policy.max_attempts:
            return None
        if not idempotent and not isinstance(exc, ConnectError | RateLimitError):
            return None
        retry_after = exc.retry_after if isinstance(exc, APIError) else None
        if retry_after is not None:
            if retry_after > policy.max_retry_after:
                return None
            delay = retry_after
        else:
            delay = retry.next_delay()
        now = self._clock()
        if now + delay - retry.started > policy.max_elapsed:
            return None
        if deadline is not None and now + delay >= deadline:
            return None
        cost = self._budget.acquire(after_timeout=isinstance(exc, RequestTimeoutError))
        if cost is None:
            logger.warning("retry budget exhausted (%r): not retrying %s", self._budget, exc)
            return None
        retry.spent += cost
        retry.attempts += 1
        return delay

    def _pause(self, retry_after: float) -> None:
        # The server asked for a pause (429 or 503 only): every request of this client waits
        # it out, so the client slows down together instead of each caller hitting the limit
        # again. Never longer than max_retry_after, on the monotonic clock from this answer.
        until = self._clock() + min(retry_after, self._retry.max_retry_after)
        self._cooldown_until = max(self._cooldown_until, until)

    async def _wait_for_cooldown(self, retry: _Retry, deadline: float | None) -> None:
        """Wait out the client-wide pause, or raise RateLimitError if it outlasts the call.

        A call's time is its deadline, or else its retry policy's ``max_elapsed``: a pause
        is never waited past either.
        """
        now = self._clock()
        pause = self._cooldown_until - now
        if pause <= 0:
            return
        limit = retry.started + retry.policy.max_elapsed
        if deadline is not None:
            limit = min(limit, deadline)
        if now + pause >= limit:
            raise RateLimitError(
                f"the server asked this client to pause {pause:.1f} s more, past this call's"
                " time", http_status=429, retry_after=pause,
            )
        await self._sleep(pause)

    async def _attempt(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        payload: bytes,
        timeout: float | None,
        extra_headers: dict[str, str] | None,
    ) -> Any:
        token = None
        if not isinstance(self._auth, AppAuth):
            token = self._token_header
            if token is None:
                asked = self._clock()
                token = await self._fetch_token(timeout)
                if timeout is not None:  # the provider's time is the attempt's time
                    timeout -= self._clock() - asked
                    if timeout <= 0:
                        raise RequestTimeoutError(
                            f"{method} {path}: no time left after the token provider"
                        )
        headers = self._headers(method, path, query, payload, token)
        if extra_headers:
            headers.update(extra_headers)
        trace_id = headers["X-Traceid"]
        session = self._get_session()
        url = self._base.with_path(self._path_prefix + path, encoded=True)
        if query:
            url = url.with_query(query)
        try:
            async with session.request(
                method,
                url,
                data=payload or None,
                headers=headers,
                timeout=self._client_timeout(timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                date_header = response.headers.get("Date")
                retry_after_header = (
                    response.headers.get("Retry-After")
                    if status in proto.RETRY_AFTER_STATUSES
                    else None
                )
                content = await read_capped(response, self._max_response_bytes)
        except TimeoutError:
            within = "in time" if timeout is None else f"within {timeout:.3g} s"
            raise RequestTimeoutError(
                f"{method} {path}: no answer {within} (trace id {trace_id})"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"{method} {path}: cannot connect: {exc.os_error}") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        except RuntimeError as exc:
            if not session.closed:
                raise
            raise ClientClosedError(
                f"{method} {path}: the client's aiohttp session is closed"
            ) from exc
        self._learn_clock(date_header)
        retry_after = (
            proto.parse_retry_after(
                retry_after_header, now=self._wall_clock(), cap=_RETRY_AFTER_LIMIT
            )
            if retry_after_header is not None
            else None
        )
        try:
            return proto.decode_envelope(
                status, content, trace_id=trace_id, retry_after=retry_after,
                authorization=headers.get("Authorization"), auth=self._auth,
            )
        except AuthenticationError as exc:
            exc.clock_skew = proto.x_date_rejected_for_clock(
                headers.get("X-Date"), date_header
            )
            raise

    def _client_timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(seconds)
        if cached is None:
            cached = aiohttp.ClientTimeout(total=seconds)
            if len(self._timeouts) < 64:  # per-call timeouts near a deadline are all distinct
                self._timeouts[seconds] = cached
        return cached

    def _learn_clock(self, date_header: str | None) -> None:
        # server_clock_offset ignores an implausible Date (a year outside 1970..9998, or more
        # than 7 days from our clock): one bad answer must not push X-Date out of range.
        offset = proto.server_clock_offset(date_header, self._wall_clock())
        if offset is not None:
            self._clock_offset = offset

    @functools.cached_property
    def _path_prefix(self) -> str:
        """The base_url's path (a gateway's mount point, encoded), "" for none: every request
        path goes under it, and AppAuth signs the path with it."""
        return self._base.raw_path.rstrip("/")

    def _signed_path(self, path: str) -> str:
        """The decoded absolute path the server sees, prefix included: what AppAuth signs."""
        full = self._path_prefix + path
        return urllib.parse.unquote(full) if "%" in full else full

    #: The event loop this client belongs to: the first one that used it (see _check_loop).
    _bound_loop: asyncio.AbstractEventLoop | None = None

    def _check_loop(self, session: aiohttp.ClientSession) -> None:
        """Refuse, before anything is sent, a request from another event loop.

        A client, like the aiohttp session inside it, belongs to the event loop that first
        used it: its connections, locks and timers live there. From another loop (a second
        ``asyncio.run``, another thread's loop) aiohttp would fail half-way and leave a
        socket behind, so such a call raises ClientClosedError (a KooDriveError, and a
        RuntimeError as asyncio's own loop errors are) and sends nothing. Costs one
        identity comparison per request.
        """
        loop = asyncio.get_running_loop()
        bound = self._bound_loop
        if loop is bound:
            return
        if bound is None:
            # A session made before the first request (a borrowed one, or the one
            # __aenter__ opened) already belongs to a loop: the client belongs there too.
            owner = getattr(session, "_loop", None)
            bound = self._bound_loop = (
                owner if isinstance(owner, asyncio.AbstractEventLoop) else loop
            )
            if bound is loop:
                return
        raise ClientClosedError(
            "this client belongs to the event loop that first used it and cannot be used "
            "from another one (each asyncio.run() makes a new loop): create one client per "
            "event loop, or submit the call to the client's loop with "
            "asyncio.run_coroutine_threadsafe()"
        )

    # -- headers and auth ------------------------------------------------------------------

    @property
    def _auth_refreshable(self) -> bool:
        return isinstance(self._auth, TokenAuth) and self._auth.refreshable

    def _headers(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        payload: bytes,
        token: str | None,
    ) -> dict[str, str]:
        headers = {
            "Host": self._host,
            "X-User-Id": self._user_id,
            "X-Date": proto.format_x_date(self._wall_clock() + self._clock_offset),
            "X-Traceid": proto.new_trace_id(),
        }
        if payload:
            headers["Content-Type"] = "application/json"
        if self._language:
            headers["language"] = self._language
        auth = self._auth
        if isinstance(auth, AppAuth):
            signed = {name: headers[_HEADER_NAMES[name]] for name in SIGNED_HEADERS}
            headers["Authorization"] = auth.header_value(
                method, self._signed_path(path), query, signed, payload
            )
        elif token is not None:
            headers["Authorization"] = token
        return headers

    async def _fetch_token(self, timeout: float | None) -> str:
        """The Authorization value, asking the provider once for all the calls that need it.

        Each caller waits for the one question in flight within its own ``timeout``; the
        question is dropped when the last caller stops waiting, so a provider that hangs
        holds nobody past their time, and the next call asks again.
        """
        task = self._token_task
        if task is None:
            task = self._token_task = asyncio.ensure_future(self._ask_provider())
        self._token_waiters += 1
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        except TimeoutError:  # ours: the provider's own errors are TokenProviderError
            raise TokenProviderError(
                f"the token provider did not answer within {timeout:g} s"
            ) from None
        finally:
            self._token_waiters -= 1
            if self._token_waiters == 0 and not task.done():
                task.cancel()
            if self._token_task is task and (task.done() or self._token_waiters == 0):
                self._token_task = None

    async def _ask_provider(self) -> str:
        assert isinstance(self._auth, TokenAuth)
        generation = self._token_generation
        header = self._auth.header_value(await self._auth.get_token())
        if generation == self._token_generation:  # not invalidated by a 401 meanwhile
            self._token_header = header
        return header

    def _refresh_token(self, seen_generation: int) -> None:
        # Many requests may see the same 401 at once: only the first drops the token.
        if self._token_generation == seen_generation:
            self._token_header = None
            self._token_generation += 1


_HEADER_NAMES: Final = {"host": "Host", "x-date": "X-Date", "x-user-id": "X-User-Id"}
