"""KooDriveEmulator: the four batch-task endpoints served by ``aiohttp.web`` on 127.0.0.1.

The class holds the state, the server's life and the credentials; the controls of jobs and
faults come from ``_controls``. Its parts live beside it: the HTTP side in ``_handlers``, the
fault queue in ``_faults``, the background thread in ``_thread``, the header and signature
checks in ``_headers`` and ``_signing`` (written from the spec, not the client's code).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from aiohttp import web

from koodrive_async.testing._clock import Clock, format_x_date
from koodrive_async.testing._controls import FaultControls, JobControls
from koodrive_async.testing._faults import FaultKind, FaultQueue
from koodrive_async.testing._handlers import DOWNLOAD_PREFIX, Handlers, RecordedRequest
from koodrive_async.testing._headers import HeaderPolicy, normalise_token
from koodrive_async.testing._jobs import EmulatedJob, JobDefaults
from koodrive_async.testing._thread import ServerThread

__all__ = ["FIRST_JOB_ID", "KooDriveEmulator", "RecordedRequest"]

FIRST_JOB_ID = 1309243162258308352
# Seconds a stopping server waits for handlers still running (a long Fault.delay) before
# cancelling them: stopping must stay fast in a test teardown.
_SHUTDOWN_TIMEOUT = 0.5


class KooDriveEmulator(JobControls, FaultControls):
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
        self._faults = FaultQueue()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._thread: ServerThread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the server is listening."""
        return self._base_url is not None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server, and the :attr:`path_prefix`.

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
        app = Handlers(self, faults=self._faults, policy=self._header_policy).application()
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
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
        if self.started or self._thread is not None:
            raise RuntimeError("the KooDrive emulator is already started")
        self._thread = ServerThread(self.start, self.stop, name=f"koodrive-emulator-{id(self):x}")
        try:
            with self._thread.serving(startup_timeout=startup_timeout):
                yield self
        finally:
            self._thread = None

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

    def _header_policy(self) -> HeaderPolicy:
        return HeaderPolicy(
            tokens=self._tokens,
            user_ids=self._user_ids,
            apps=self._apps,
            x_date_max_age=self.x_date_max_age,
            x_date_max_ahead=self.x_date_max_ahead,
        )

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

    # -- URLs ------------------------------------------------------------------------------

    def download_path(self, job_id: str) -> str:
        """The path of a job's package zip (for ``inject(..., path=...)``), after the
        :attr:`path_prefix`."""
        return f"{DOWNLOAD_PREFIX}{job_id}/package.zip"

    def download_url(self, job_id: str) -> str:
        """The full URL of a job's package zip, as ``jobInfo.downloadUrl`` gives it."""
        return self.base_url + self.download_path(job_id)
