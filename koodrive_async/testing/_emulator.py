"""KooDriveEmulator: the four batch-task endpoints served by ``aiohttp.web`` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Self

import attrs
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from koodrive_async.testing import _wire
from koodrive_async.testing._clock import Clock, format_http_date, format_x_date
from koodrive_async.testing._download import package_response
from koodrive_async.testing._faults import Fault, FaultKind, FaultMix, FaultRule
from koodrive_async.testing._headers import (
    HeaderPolicy,
    RequestView,
    check_request,
    normalise_token,
)
from koodrive_async.testing._jobs import (
    PENDING,
    PROCESSING,
    EmulatedJob,
    JobDefaults,
    JobFile,
    JobState,
)
from koodrive_async.testing._validation import (
    parse_cancel_job,
    parse_create_job,
    parse_list_query,
)

API_PREFIX = "/koodrive/ose/v1/"
DOWNLOAD_PREFIX = "/download/"
FIRST_JOB_ID = 1309243162258308352
# Seconds a stopping server waits for handlers still running (a long Fault.delay) before
# cancelling them: stopping must stay fast in a test teardown.
_SHUTDOWN_TIMEOUT = 0.5

_Handler = Callable[[web.Request, bytes], web.Response]


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the emulator received it (copies, safe to keep)."""

    method: str
    path: str
    """The decoded path."""
    raw_path: str
    """The path and query exactly as sent."""
    query: MultiDict[str]
    headers: CIMultiDict[str]
    body: bytes
    at: float
    """Wall-clock epoch seconds (without ``clock_skew``) when it arrived."""

    @property
    def language(self) -> str | None:
        """The ``language`` header, if sent."""
        return self.headers.get("language")

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class KooDriveEmulator:
    """An in-process KooDrive batch-task API for tests and demos, over real sockets.

    Serves GetJobDetail, CreateJob, GetJobList and CancelJob under ``/koodrive/ose/v1/``
    with the header checks of the real service, jobs whose progress follows the emulator
    clock, package-download zips under ``/download/``, and injectable faults.

    Use ``async with KooDriveEmulator() as emu:`` in async code, or
    ``with KooDriveEmulator().run_in_thread() as emu:`` from synchronous code. Settings
    and state may be changed while it serves, also from another thread in thread mode.

    Args:
        token: An accepted access token (sent as ``Bearer+<token>``, ``Bearer <token>``
            or ``AT <token>``); more with :meth:`add_token`.
        user_id: The accepted ``X-User-Id``; more with :meth:`add_user`.
        app_id: The accepted app id for HMAC-SHA256 app authentication.
        app_secret: Its signing secret.
        tenant_id: ``tenantId`` of every job.
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one (see :attr:`port`).
        clock: Monotonic seconds for job life; default ``time.monotonic``. Pass a
            :class:`ManualClock` to move jobs along without sleeping.
        wall_clock: Epoch seconds for ``Date``, ``X-Date`` checks and job times; default
            ``time.time``. :attr:`clock_skew` is added to it.
        job_defaults: Timing of jobs created over the wire.
        x_date_max_age: Seconds an ``X-Date`` may lag the server clock (documented: 15 min).
        x_date_max_ahead: Seconds an ``X-Date`` may run ahead of the server clock.
        first_job_id: The id CreateJob hands out first; later ids count up.
        path_prefix: Serve everything under this path, as a gateway mounting the API at
            ``https://gw/prefix`` would: ``base_url`` ends with it, every route and every
            signature check sees the full path. Fault rules and :meth:`download_path`
            stay relative to it (``/koodrive/ose/v1/...``), so tests read the same.
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        user_id: str = "test-user",
        app_id: str = "test-app",
        app_secret: str = "test-secret",
        tenant_id: str = "test-tenant",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        job_defaults: JobDefaults | None = None,
        x_date_max_age: float = 900.0,
        x_date_max_ahead: float = 0.0,
        first_job_id: int = FIRST_JOB_ID,
        path_prefix: str = "",
    ) -> None:
        prefix = path_prefix.rstrip("/")
        if prefix and (not prefix.startswith("/") or any(c in prefix for c in "?#% ")):
            raise ValueError(
                f"path_prefix must be an absolute path such as '/gw', got {path_prefix!r}"
            )
        self.path_prefix = prefix
        """The path everything is served under ("" for the root)."""
        self.token = token
        """The default access token."""
        self.user_id = user_id
        """The default user id."""
        self.app_id = app_id
        """The default app id."""
        self.app_secret = app_secret
        """The default app secret."""
        self.tenant_id = tenant_id
        self.host = host
        self.clock: Clock = clock or time.monotonic
        self.wall_clock: Clock = wall_clock or time.time
        self.clock_skew = 0.0
        """Seconds added to ``wall_clock`` for the server's own time (negative: behind)."""
        self.job_defaults = job_defaults or JobDefaults()
        self.x_date_max_age = x_date_max_age
        self.x_date_max_ahead = x_date_max_ahead
        self.requests: list[RecordedRequest] = []
        """Every request to the API (``/koodrive/ose/v1/...``), in arrival order."""
        self.download_requests: list[RecordedRequest] = []
        """Every request to the package-download route."""
        self.fault_counts: Counter[FaultKind] = Counter()
        """Faults served so far, by kind (queued and random ones)."""
        self.in_flight = 0
        """API requests being handled right now."""
        self.max_in_flight = 0
        """The highest :attr:`in_flight` seen."""

        self._port = port
        # Replaced, never mutated, so a request handled in the server thread sees one
        # consistent set while another thread rotates credentials.
        self._tokens = frozenset({normalise_token(token)})
        self._user_ids = frozenset({user_id})
        self._apps = {app_id: app_secret}
        self._jobs: dict[str, EmulatedJob] = {}
        self._next_id = first_job_id
        self._rules: list[FaultRule] = []
        self._mix: FaultMix | None = None
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._thread_stop: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the server is listening."""
        return self._base_url is not None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server.

        Raises:
            RuntimeError: the emulator is not started.
        """
        if self._base_url is None:
            raise RuntimeError("the KooDrive emulator is not started")
        return self._base_url

    @property
    def port(self) -> int:
        """The listening port (the one picked when constructed with ``port=0``)."""
        if self._base_url is None:
            raise RuntimeError("the KooDrive emulator is not started")
        return self._port

    async def start(self) -> None:
        """Start listening.

        Raises:
            RuntimeError: already started.
            OSError: the port is taken.
        """
        if self._runner is not None:
            raise RuntimeError("the KooDrive emulator is already started")
        app = web.Application()
        app.on_response_prepare.append(self._set_date)
        prefix = self.path_prefix
        app.router.add_route("*", prefix + API_PREFIX + "{tail:.*}", self._api)
        app.router.add_get(prefix + DOWNLOAD_PREFIX + "{job_id}/package.zip", self._download)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._base_url = f"http://{self.host}:{self._port}{self.path_prefix}"

    async def stop(self) -> None:
        """Stop listening and close every connection. Does nothing when not started."""
        runner, self._runner = self._runner, None
        self._base_url = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self, *, startup_timeout: float = 10.0) -> Iterator[Self]:
        """Serve from a background thread with its own event loop, for synchronous code.

        Use as ``with emu.run_in_thread() as emu:``; on exit the server stops and the
        thread is joined.

        Args:
            startup_timeout: Seconds to wait for the server to listen.

        Raises:
            RuntimeError: already started, or the server did not start in time.
            OSError: the port is taken.
        """
        if self.started or self._thread_stop is not None:
            raise RuntimeError("the KooDrive emulator is already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=lambda: asyncio.run(self._serve_in_thread(ready, failure)),
            name=f"koodrive-emulator-{id(self):x}",
            daemon=True,
        )
        thread.start()
        if not ready.wait(startup_timeout):
            self._stop_thread(thread, timeout=startup_timeout)
            raise RuntimeError("the KooDrive emulator did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            self._stop_thread(thread)

    async def _serve_in_thread(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def request_stop() -> None:
            loop.call_soon_threadsafe(stop.set)

        self._thread_stop = request_stop
        try:
            await self.start()
        except BaseException as exc:  # handed to the starting thread, which re-raises it
            failure.append(exc)
            self._thread_stop = None
            ready.set()
            return
        ready.set()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _stop_thread(self, thread: threading.Thread, *, timeout: float | None = None) -> None:
        stop, self._thread_stop = self._thread_stop, None
        if stop is not None:
            stop()
        thread.join(timeout)

    # -- credentials and time -------------------------------------------------------------

    def add_token(self, token: str) -> None:
        """Accept another access token (a scheme prefix such as ``Bearer+`` is ignored)."""
        self._tokens = self._tokens | {normalise_token(token)}

    def revoke_token(self, token: str) -> None:
        """Stop accepting an access token: requests with it get 401."""
        self._tokens = self._tokens - {normalise_token(token)}

    def add_user(self, user_id: str) -> None:
        """Accept another ``X-User-Id``. Each user sees only its own jobs."""
        self._user_ids = self._user_ids | {user_id}

    def add_app(self, app_id: str, app_secret: str) -> None:
        """Accept another app for HMAC-SHA256 app authentication."""
        self._apps = {**self._apps, app_id: app_secret}

    def server_time(self) -> float:
        """The server's wall clock: ``wall_clock() + clock_skew``, epoch seconds."""
        return self.wall_clock() + self.clock_skew

    def auth_headers(
        self, *, token: str | None = None, user_id: str | None = None
    ) -> dict[str, str]:
        """Headers that pass the checks now: ``Authorization``, ``X-User-Id``, ``X-Date``.

        For tests that talk to the emulator with a plain HTTP client. ``X-Date`` is taken
        from the server clock, skew included.
        """
        return {
            "Authorization": "Bearer+" + normalise_token(token or self.token),
            "X-User-Id": user_id or self.user_id,
            "X-Date": format_x_date(self.server_time()),
        }

    # -- jobs -----------------------------------------------------------------------------

    @property
    def jobs(self) -> Mapping[str, EmulatedJob]:
        """Every job by id, oldest first (read-only view)."""
        return MappingProxyType(self._jobs)

    def add_job(
        self,
        *,
        task_type: int = 1,
        action_type: int | None = None,
        files: int | Sequence[str | JobFile] = 1,
        failed_files: int = 0,
        duration: float | None = None,
        pending_for: float | None = None,
        cancel_after: float | None = None,
        user_id: str | None = None,
        container_id: str | None = "test-dst-container",
        src_container_id: str | None = "test-src-container",
        task_name: str | None = None,
        new_file_path: str | None = None,
        uncompress_paths: Sequence[str] = (),
        job_id: str | None = None,
    ) -> str:
        """Create a job directly, as if CreateJob had been called now.

        Args:
            task_type: 1 copy ... 5 decompression, 6 package download, 7 empty recycle bin.
            action_type: Optional ``actionType``.
            files: A number of generated files, or file ids / :class:`JobFile` objects. An
                id containing ``"fail"`` fails.
            failed_files: How many of the last files fail.
            duration: Seconds of processing (status 1); default from :attr:`job_defaults`.
            pending_for: Seconds pending (status 0) first; default from :attr:`job_defaults`.
            cancel_after: Cancel the job this many seconds after creation, if it is still
                running then; default from :attr:`job_defaults`.
            user_id: The owner; default :attr:`user_id`.
            container_id: ``containerId`` (the destination space).
            src_container_id: ``srcContainerId`` of each file.
            task_name: Optional ``taskName``.
            new_file_path: Destination folder for ``newFilePath``.
            uncompress_paths: For decompression, the paths to extract (default: a small tree).
            job_id: An explicit id; default the next counter value.

        Returns:
            The job id.

        Raises:
            ValueError: a bad count, or ``job_id`` already exists.
        """
        if isinstance(files, int):
            if files < 0:
                raise ValueError(f"files must be >= 0, got {files!r}")
            items = [
                JobFile(file_id=f"file-{i}", file_path=f"/emulator/file-{i}.txt")
                for i in range(1, files + 1)
            ]
        else:
            items = [
                f if isinstance(f, JobFile) else JobFile(file_id=f, fails="fail" in f)
                for f in files
            ]
        if not 0 <= failed_files <= len(items):
            raise ValueError(f"failed_files must be between 0 and {len(items)}")
        if src_container_id is not None:
            items = [
                attrs.evolve(f, src_container_id=f.src_container_id or src_container_id)
                for f in items
            ]
        for index in range(len(items) - failed_files, len(items)):
            items[index] = attrs.evolve(items[index], fails=True)
        defaults = self.job_defaults
        job = self._create(
            job_id=job_id,
            task_type=task_type,
            action_type=action_type,
            files=tuple(items),
            user_id=user_id or self.user_id,
            container_id=container_id,
            pending_for=defaults.pending_for if pending_for is None else pending_for,
            duration=defaults.duration(len(items)) if duration is None else duration,
            cancel_after=defaults.cancel_after if cancel_after is None else cancel_after,
            task_name=task_name,
            new_file_path=new_file_path,
            uncompress_paths=tuple(uncompress_paths),
        )
        return job.job_id

    def _create(self, *, job_id: str | None, **fields: Any) -> EmulatedJob:
        with self._lock:
            if job_id is None:
                job_id = str(self._next_id)
                self._next_id += 1
            elif job_id in self._jobs:
                raise ValueError(f"job {job_id!r} already exists")
            job = EmulatedJob(
                job_id=job_id,
                tenant_id=self.tenant_id,
                created_at=self.clock(),
                created_wall=self.server_time(),
                **fields,
            )
            self._jobs[job_id] = job
        return job

    def cancel_job(self, job_id: str) -> bool:
        """Cancel a job now, as CancelJob would.

        Returns:
            True if it was pending or processing (and is now canceled), else False.

        Raises:
            KeyError: no such job.
        """
        job = self._jobs[job_id]
        now = self.clock()
        if job.state(now).status not in (PENDING, PROCESSING):
            return False
        job.canceled_at = now
        return True

    def job_detail(self, job_id: str) -> dict[str, Any]:
        """The ``data`` GetJobDetail would answer for a job now.

        Raises:
            KeyError: no such job.
        """
        job = self._jobs[job_id]
        state = job.state(self.clock())
        return job.detail(state, self._download_url_for(job, state))

    def download_path(self, job_id: str) -> str:
        """The path of a job's package zip (for ``inject(..., path=...)``), after the
        :attr:`path_prefix`."""
        return f"{DOWNLOAD_PREFIX}{job_id}/package.zip"

    def download_url(self, job_id: str) -> str:
        """The full URL of a job's package zip, as ``jobInfo.downloadUrl`` gives it."""
        return self.base_url + self.download_path(job_id)

    def package_bytes(self, job_id: str) -> bytes:
        """The exact zip the download route serves for a job (to compare a download with).

        Raises:
            KeyError: no such job.
        """
        return self._jobs[job_id].package(self.job_defaults.file_size)

    def _download_url_for(self, job: EmulatedJob, state: JobState) -> str | None:
        if not job.has_package(state) or self._base_url is None:
            return None
        return self.download_url(job.job_id)

    # -- faults ---------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> FaultRule:
        """Queue a fault for the next matching requests, before normal handling.

        Queued faults are consumed in order: a request takes the first rule it matches.

        Args:
            fault: What to do, e.g. ``Fault.status(503)``.
            times: How many matching requests get it; None: every one until
                :meth:`clear_faults`.
            method: Match only this HTTP method.
            path: Match only this path (exact, or an ``fnmatch`` pattern such as
                ``/koodrive/ose/v1/*``). Without a path a fault matches any API request but
                never the download route; give the download path (:meth:`download_path`) to
                cut a download.

        Returns:
            The queued rule; its ``remaining`` counts down.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times!r}")
        rule = FaultRule(fault=fault, remaining=times, method=method, path=path)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._rules.clear()

    @property
    def pending_faults(self) -> tuple[FaultRule, ...]:
        """Queued faults not used up yet."""
        with self._lock:
            return tuple(self._rules)

    def fault_mix(
        self,
        *,
        seed: int,
        status_5xx: float = 0.0,
        rate_limited: float = 0.0,
        drop: float = 0.0,
        delay: float = 0.0,
        malformed: float = 0.0,
        delay_seconds: float = 0.05,
        retry_after: float | str | None = 0,
    ) -> FaultMix:
        """Give every API request without a queued fault a seeded random fault.

        Probabilities are per request and add up to at most 1; the same seed and the same
        request order give the same faults. Replaces any earlier mix.

        Args:
            seed: Seed of the random generator.
            status_5xx: Probability of a 500/502/503/504.
            rate_limited: Probability of a 429 with ``Retry-After: retry_after``.
            drop: Probability of a connection closed without an answer.
            delay: Probability of a normal answer after ``delay_seconds`` (real time).
            malformed: Probability of an HTTP 200 whose body is not a valid envelope.
            delay_seconds: Seconds of a delay.
            retry_after: ``Retry-After`` of a 429 (seconds, a verbatim string, or None).

        Returns:
            The mix now in use.
        """
        mix = FaultMix(
            seed=seed,
            status_5xx=status_5xx,
            rate_limited=rate_limited,
            drop=drop,
            delay=delay,
            malformed=malformed,
            delay_seconds=delay_seconds,
            retry_after=retry_after,
        )
        self._mix = mix
        return mix

    def clear_fault_mix(self) -> None:
        """Stop random faults."""
        self._mix = None

    def _take_fault(self, method: str, path: str, *, is_api: bool) -> Fault | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(method, path, is_api=is_api):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            del self._rules[index]
                    return rule.fault
            mix = self._mix
            return mix.draw() if mix is not None and is_api else None

    async def _with_fault(
        self,
        request: web.Request,
        fault: Fault | None,
        answer: Callable[[], Awaitable[web.Response]],
    ) -> web.StreamResponse:
        if fault is None:
            return await answer()
        self.fault_counts[fault.kind] += 1
        if fault.wait:
            await asyncio.sleep(fault.wait)
        if fault.kind is FaultKind.DROP:
            _close(request)
            return web.Response()  # never sent: aiohttp sees the closed transport
        if fault.kind is FaultKind.TRUNCATE:
            return await _truncated(request, await answer(), fault.after_bytes)
        canned = fault.canned_response()
        return canned if canned is not None else await answer()

    # -- HTTP -----------------------------------------------------------------------------

    def _relative(self, request: web.Request) -> str:
        """The request's path after :attr:`path_prefix` (the routes guarantee it is there)."""
        return request.path[len(self.path_prefix) :]

    async def _set_date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = format_http_date(self.server_time())

    def _record(self, request: web.Request, body: bytes) -> RecordedRequest:
        return RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            at=self.wall_clock(),
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(self._record(request, body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._take_fault(request.method, self._relative(request), is_api=True)

            async def answer() -> web.Response:
                return self._answer(request, body)

            return await self._with_fault(request, fault, answer)
        finally:
            self.in_flight -= 1

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        try:
            check_request(
                RequestView(
                    method=request.method,
                    path=request.path,
                    query=list(request.query.items()),
                    headers=request.headers,
                    body=body,
                ),
                HeaderPolicy(
                    tokens=self._tokens,
                    user_ids=self._user_ids,
                    apps=self._apps,
                    x_date_max_age=self.x_date_max_age,
                    x_date_max_ahead=self.x_date_max_ahead,
                ),
                self.server_time(),
            )
            return self._route(request)(request, body)
        except _wire.ApiError as exc:
            return _wire.error(exc.http_status, exc.code, exc.msg)

    def _route(self, request: web.Request) -> _Handler:
        tail = request.match_info["tail"]
        if tail == "jobs":
            handlers = {"GET": self._list_jobs, "POST": self._create_job}
        elif tail == "cancel":
            handlers = {"POST": self._cancel_job}
        elif tail and "/" not in tail:
            handlers = {"GET": self._get_job}
        else:
            raise _wire.ApiError(404, _wire.BAD_REQUEST, f"no API at {request.path}")
        handler = handlers.get(request.method)
        if handler is None:
            raise _wire.ApiError(405, _wire.BAD_REQUEST, f"{request.method} not allowed here")
        return handler

    def _job_for(self, job_id: str, request: web.Request) -> EmulatedJob:
        job = self._jobs.get(job_id)
        if job is None or job.user_id != request.headers["X-User-Id"]:
            raise _wire.ApiError(404, _wire.JOB_NOT_FOUND, "job not found")
        return job

    def _get_job(self, request: web.Request, body: bytes) -> web.Response:
        job = self._job_for(request.match_info["tail"], request)
        state = job.state(self.clock())
        return _wire.ok(job.detail(state, self._download_url_for(job, state)))

    def _create_job(self, request: web.Request, body: bytes) -> web.Response:
        parsed = parse_create_job(body)
        job = self._create(
            job_id=None,
            task_type=parsed.task_type,
            action_type=parsed.action_type,
            files=parsed.files,
            user_id=request.headers["X-User-Id"],
            container_id=parsed.dst_container_id,
            pending_for=self.job_defaults.pending_for,
            duration=self.job_defaults.duration(len(parsed.files)),
            cancel_after=self.job_defaults.cancel_after,
            new_file_path=parsed.new_file_path,
            uncompress_paths=parsed.uncompress_paths,
            share_folder_id=request.headers.get("x-hw-share-folder-id"),
            language=request.headers.get("language"),
            request_body=parsed.document,
        )
        return _wire.ok(job.job_id)

    def _list_jobs(self, request: web.Request, body: bytes) -> web.Response:
        query = parse_list_query(request.query)
        now = self.clock()
        user_id = request.headers["X-User-Id"]
        page: list[dict[str, Any]] = []
        skipped = 0
        for job in reversed(list(self._jobs.values())):
            if job.user_id != user_id:
                continue
            if query.task_type is not None and job.task_type != query.task_type:
                continue
            state = job.state(now)
            if query.status is not None and state.status != query.status:
                continue
            if skipped < query.offset:
                skipped += 1
                continue
            page.append(job.job_info(state, self._download_url_for(job, state)))
            if len(page) == query.limit:
                break
        return _wire.ok(page)

    def _cancel_job(self, request: web.Request, body: bytes) -> web.Response:
        job = self._job_for(parse_cancel_job(body), request)
        now = self.clock()
        status = job.state(now).status
        if status not in (PENDING, PROCESSING):
            raise _wire.ApiError(
                400, _wire.JOB_NOT_CANCELABLE, f"job cannot be canceled in status {status}"
            )
        job.canceled_at = now
        return _wire.ok(with_data=False)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.download_requests.append(self._record(request, b""))
        fault = self._take_fault(request.method, self._relative(request), is_api=False)

        async def answer() -> web.Response:
            job = self._jobs.get(request.match_info["job_id"])
            if job is None or not job.has_package(job.state(self.clock())):
                return web.Response(status=404, text="NoSuchKey")
            data = job.package(self.job_defaults.file_size)
            return package_response(data, request.headers.get("Range"))

        return await self._with_fault(request, fault, answer)


def _close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


async def _truncated(
    request: web.Request, response: web.Response, after_bytes: int
) -> web.StreamResponse:
    """Send ``response``'s status and headers and ``after_bytes`` of its body, then close."""
    body = response.body
    assert isinstance(body, bytes)
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[:after_bytes])
    _close(request)
    return stream
