"""One API request: the retry loop around attempts, each authorized and sent.

``Caller`` holds the three parts a request goes through (the auth flow, the transport and
the retry loop) and the one deadline passed down: each attempt derives its time left once.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import orjson

from . import _envelope as envelope
from . import _protocol as proto
from . import _telemetry as telemetry
from ._redact import Secret
from ._retry import Retrier
from ._transport import Transport
from .auth import AuthFlow
from .config import USE_CLIENT_DEFAULT, UseClientDefault, check_seconds
from .errors import AuthenticationError, RequestTimeoutError

__all__ = ["Caller", "Timeout", "operation_name"]

logger: Final = logging.getLogger("koodrive_async.http")
# An auth flow's reason to send again after a 401, as koodrive.client.retries counts it.
_RESEND_REASONS: Final = {"clock": "skew", "token": "token"}

Timeout = float | UseClientDefault | None


class Caller:
    """Sends API requests through an auth flow, a transport and a retry loop.

    Args:
        timeout: The default seconds for one HTTP attempt (None: no limit).
        clock: Monotonic seconds: every deadline is on it.
    """

    def __init__(
        self,
        *,
        auth_flow: AuthFlow,
        transport: Transport,
        retrier: Retrier,
        timeout: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.auth_flow = auth_flow
        self.transport = transport
        self.retrier = retrier
        self.timeout = timeout
        self._clock = clock

    def secrets(self) -> tuple[Secret, ...]:
        """What an error quoting server text must redact (worked out when one does)."""
        return envelope.secrets_of(self.auth_flow.auth, self.auth_flow.header)

    def job_detail(
        self, job_id: str, timeout: Timeout, total_timeout: float | None, *, skim: bool
    ) -> Awaitable[Any]:
        """GetJobDetail of ``job_id`` (checked); await it for the envelope's data."""
        path = proto.job_path(job_id)
        return self.send("GET", path, timeout=timeout, deadline=self.deadline(total_timeout),
                         skim=skim, name="GetJobDetail")

    def deadline(self, total_timeout: float | None) -> float | None:
        """The deadline, on ``clock``, of a call given ``total_timeout`` seconds (checked)."""
        if total_timeout is None:  # the usual case, without a call more
            return None
        seconds = check_seconds("total_timeout", total_timeout)
        return None if seconds is None else self._clock() + seconds

    def send(
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
        skim: bool = False,
        name: str | None = None,
    ) -> Awaitable[Any]:
        """Send one API request, retrying as the policy says; await it for the envelope's data.

        ``deadline`` (on ``clock``) bounds every attempt and every wait between attempts.
        Arguments are checked at once; the request goes out when the result is awaited.
        ``skim``: see ``Transport.send``; ``name``: the operation, when the caller knows it.
        """
        limit = self.timeout if isinstance(timeout, UseClientDefault) else check_seconds(
            "timeout", timeout
        )
        self.transport.check_loop()
        payload = orjson.dumps(body) if body is not None else b""
        if name is None:
            name = operation_name(method, path)
        traced = telemetry.AVAILABLE and telemetry.tracing()
        # The attempt's arguments as one tuple: no closure or coroutine of ours (a frame more
        # per request), and no partial of a bound method (two objects more to collect).
        attempt_args = (
            self, method, path, name, query, payload, extra_headers, limit, deadline, skim,
            traced,
        )
        call = self.retrier.run(
            Caller._attempt, attempt_args, method=method, path=path, deadline=deadline,
            idempotent=idempotent, closed=self.transport.is_closed, operation=name,
        )
        if traced:  # else no span, and no frame more
            return telemetry.operation(name, _job_id(name, path, body), call)
        return call

    async def _attempt(
        self,
        method: str,
        path: str,
        name: str,
        query: Sequence[tuple[str, str]],
        payload: bytes,
        extra_headers: dict[str, str] | None,
        limit: float | None,
        deadline: float | None,
        skim: bool,
        traced: bool,
        number: int,
    ) -> Any:
        """Attempt ``number`` of the retry loop: authorized, sent, and sent again after a 401
        the auth flow explains (clock skew, an expired token), each send within the time
        left."""
        auth_flow = self.auth_flow
        transport = self.transport
        resent: list[str] | None = None  # the re-sends after a 401 so far, made at the first
        while True:
            left = limit
            if deadline is not None:
                left = deadline - self._clock()
                if left <= 0:
                    raise RequestTimeoutError(
                        "no time left for the request before the deadline"
                    )
                if limit is not None and limit < left:
                    left = limit
            headers = transport.headers(payload)
            if extra_headers:
                headers.update(extra_headers)
            generation = auth_flow.generation
            if not auth_flow.authorize_now(
                method, path, query, headers, payload, transport.signed_path
            ):
                # The provider is asked for a token: its wait comes out of this send's time.
                started = self._clock()
                await auth_flow.authorize(headers, timeout=left)
                if left is not None:
                    left -= self._clock() - started
                    if left <= 0:
                        raise RequestTimeoutError(
                            f"{method} {path}: no time left after the token"
                        )
            try:
                return await transport.send(
                    method, path, query, payload, headers, timeout=left, operation=name,
                    attempt=number, skim=skim,
                    trace_request_ctx=telemetry.attempt(headers["X-Traceid"]) if traced else None,
                )
            except AuthenticationError as exc:
                # Rejected before any work was done: safe to send again, even a CreateJob.
                if resent is None:
                    resent = []
                if not auth_flow.resend_after_401(exc, generation=generation, resent=resent):
                    raise
                reason = _RESEND_REASONS.get(resent[-1], resent[-1])
                telemetry.retried(reason)
                logger.debug(
                    "%s: 401 (%s); sending again", name, resent[-1],
                    extra={"koodrive.operation": name, "koodrive.attempt": number,
                           "koodrive.reason": reason},
                )


def operation_name(method: str, path: str) -> str:
    """The API operation a request is: GetJobDetail, GetJobList, CreateJob, CancelJob."""
    if path == proto.JOBS_PATH:
        return "CreateJob" if method == "POST" else "GetJobList"
    if path == proto.CANCEL_PATH:
        return "CancelJob"
    return "GetJobDetail"


def _job_id(name: str, path: str, body: Any) -> str | None:
    if name == "GetJobDetail":
        return urllib.parse.unquote(path[len(proto.API_PREFIX):])
    if name == "CancelJob" and isinstance(body, dict):
        job_id = body.get("jobId")
        return job_id if isinstance(job_id, str) else None
    return None

