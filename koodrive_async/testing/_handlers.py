"""The emulator's HTTP side: the aiohttp application, its routes and how faults are served.

The handlers do what the service does to a request (record it, take a fault, check the
headers, validate the input) and leave the jobs to the emulator's public methods, so a job
behaves the same whether a test made it with ``add_job`` or a client with CreateJob.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from koodrive_async.testing import _wire
from koodrive_async.testing._clock import format_http_date
from koodrive_async.testing._download import package_response
from koodrive_async.testing._faults import Fault, FaultKind, FaultQueue
from koodrive_async.testing._headers import HeaderPolicy, RequestView, check_request
from koodrive_async.testing._jobs import CANCELED, COMPLETED, EmulatedJob, JobState
from koodrive_async.testing._validation import (
    parse_cancel_job,
    parse_create_job,
    parse_list_query,
)

if TYPE_CHECKING:
    from koodrive_async.testing._emulator import KooDriveEmulator

API_PREFIX = "/koodrive/ose/v1/"
DOWNLOAD_PREFIX = "/download/"
# Why CancelJob refuses a job that has ended, in words rather than a status number.
_ALREADY = {COMPLETED: "it is already completed", CANCELED: "it is already canceled"}

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


class Handlers:
    """The routes of one emulator.

    Args:
        emulator: Whose jobs, clocks and records these are.
        faults: The emulator's fault queue.
        policy: The header checks' credentials and limits as they are now.
    """

    def __init__(
        self,
        emulator: KooDriveEmulator,
        *,
        faults: FaultQueue,
        policy: Callable[[], HeaderPolicy],
    ) -> None:
        self._emu = emulator
        self._faults = faults
        self._policy = policy

    def application(self) -> web.Application:
        """A new ``aiohttp.web`` application serving the API and the package downloads."""
        app = web.Application()
        app.on_response_prepare.append(self._set_date)
        prefix = self._emu.path_prefix
        app.router.add_route("*", prefix + API_PREFIX + "{tail:.*}", self._api)
        app.router.add_get(prefix + DOWNLOAD_PREFIX + "{job_id}/package.zip", self._download)
        return app

    # -- every request ------------------------------------------------------------------

    async def _set_date(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = format_http_date(self._emu.server_time())

    def _record(self, request: web.Request, body: bytes) -> RecordedRequest:
        return RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            at=self._emu.wall_clock(),
        )

    def _take_fault(self, request: web.Request, *, is_api: bool) -> Fault | None:
        # Fault rules see the path after the prefix, so tests read the same with one.
        path = request.path[len(self._emu.path_prefix) :]
        fault = self._faults.take(request.method, path, is_api=is_api)
        if fault is not None:
            self._emu.fault_counts[fault.kind] += 1
        return fault

    async def _api(self, request: web.Request) -> web.StreamResponse:
        emu = self._emu
        body = await request.read()
        emu.requests.append(self._record(request, body))
        emu.in_flight += 1
        emu.max_in_flight = max(emu.max_in_flight, emu.in_flight)
        try:
            fault = self._take_fault(request, is_api=True)

            async def answer() -> web.Response:
                return self._answer(request, body)

            return await serve_fault(request, fault, answer)
        finally:
            emu.in_flight -= 1

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        try:
            view = RequestView(
                method=request.method,
                raw_target=request.raw_path,
                headers=request.headers,
                body=body,
            )
            check_request(view, self._policy(), self._emu.server_time())
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

    # -- the four endpoints -------------------------------------------------------------

    def _job_for(self, job_id: str, request: web.Request) -> EmulatedJob:
        job = self._emu.jobs.get(job_id)
        if job is None or job.user_id != request.headers["X-User-Id"]:
            raise _wire.ApiError(404, _wire.JOB_NOT_FOUND, "job not found")
        return job

    def _get_job(self, request: web.Request, body: bytes) -> web.Response:
        job = self._job_for(request.match_info["tail"], request)
        return _wire.ok(self._emu.job_detail(job.job_id))

    def _create_job(self, request: web.Request, body: bytes) -> web.Response:
        parsed = parse_create_job(body)
        job_id = self._emu.add_job(
            task_type=parsed.task_type,
            action_type=parsed.action_type,
            files=parsed.files,
            user_id=request.headers["X-User-Id"],
            container_id=parsed.dst_container_id,
            src_container_id=None,  # each parsed file carries the body's srcContainerId
            new_file_path=parsed.new_file_path,
            uncompress_paths=parsed.uncompress_paths,
        )
        # What only a request has; set before the answer, so no client sees the job without.
        job = self._emu.jobs[job_id]
        job.share_folder_id = request.headers.get("x-hw-share-folder-id")
        job.language = request.headers.get("language")
        job.request_body = parsed.document
        return _wire.ok(job_id)

    def _list_jobs(self, request: web.Request, body: bytes) -> web.Response:
        query = parse_list_query(request.query)
        emu = self._emu
        now = emu.clock()
        user_id = request.headers["X-User-Id"]
        page: list[dict[str, Any]] = []
        skipped = 0
        for job in reversed(list(emu.jobs.values())):
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
            page.append(job.job_info(state, self._download_url(job, state)))
            if len(page) == query.limit:
                break
        return _wire.ok(page)

    def _download_url(self, job: EmulatedJob, state: JobState) -> str | None:
        if not job.has_package(state) or not self._emu.started:
            return None
        return self._emu.download_url(job.job_id)

    def _cancel_job(self, request: web.Request, body: bytes) -> web.Response:
        job = self._job_for(parse_cancel_job(body), request)
        if not self._emu.cancel_job(job.job_id):
            status = job.state(self._emu.clock()).status
            why = _ALREADY.get(status, f"its status is {status}")
            raise _wire.ApiError(400, _wire.JOB_NOT_CANCELABLE, f"job cannot be canceled: {why}")
        return _wire.ok(with_data=False)

    # -- package downloads --------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        emu = self._emu
        emu.download_requests.append(self._record(request, b""))
        fault = self._take_fault(request, is_api=False)

        async def answer() -> web.Response:
            job = emu.jobs.get(request.match_info["job_id"])
            if job is None or not job.has_package(job.state(emu.clock())):
                return web.Response(status=404, text="NoSuchKey")
            return package_response(emu.package_bytes(job.job_id), request.headers.get("Range"))

        return await serve_fault(request, fault, answer)


async def serve_fault(
    request: web.Request,
    fault: Fault | None,
    answer: Callable[[], Awaitable[web.Response]],
) -> web.StreamResponse:
    """Answer ``request`` as ``fault`` says; ``answer()`` makes the normal answer."""
    if fault is None:
        return await answer()
    if fault.wait:
        await asyncio.sleep(fault.wait)
    if fault.kind is FaultKind.DROP:
        _close(request)
        return web.Response()  # never sent: aiohttp sees the closed transport
    if fault.kind is FaultKind.TRUNCATE:
        return await _truncated(request, await answer(), fault.after_bytes)
    canned = fault.canned_response()
    return canned if canned is not None else await answer()


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
