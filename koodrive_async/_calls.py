"""One API request: the retry loop around attempts, each authorized and sent.

``Caller`` holds the three parts a request goes through (the auth flow, the transport and
the retry loop) and the one deadline passed down: each attempt derives its time left once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import orjson

from . import _envelope as envelope
from ._redact import Secret
from ._retry import Retrier
from ._transport import Transport
from .auth import AuthFlow
from .config import USE_CLIENT_DEFAULT, UseClientDefault, check_seconds
from .errors import AuthenticationError, RequestTimeoutError

__all__ = ["Caller", "Timeout"]

logger: Final = logging.getLogger("koodrive_async")

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

    def deadline(self, total_timeout: float | None) -> float | None:
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
    ) -> Awaitable[Any]:
        """Send one API request, retrying as the policy says; await it for the envelope's data.

        ``deadline`` (on ``clock``) bounds every attempt and every wait between attempts.
        Arguments are checked at once; the request goes out when the result is awaited.
        """
        limit = self.timeout if isinstance(timeout, UseClientDefault) else check_seconds(
            "timeout", timeout
        )
        self.transport.check_loop()
        payload = orjson.dumps(body) if body is not None else b""
        # A partial, not a closure or a coroutine of ours: no frame more per request.
        attempt = functools.partial(
            self._attempt, method, path, query, payload, extra_headers, limit, deadline
        )
        return self.retrier.run(
            attempt, method=method, path=path, deadline=deadline, idempotent=idempotent,
            closed=self.transport.is_closed,
        )

    async def _attempt(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        payload: bytes,
        extra_headers: dict[str, str] | None,
        limit: float | None,
        deadline: float | None,
    ) -> Any:
        """One attempt: authorized, sent, and sent again after a 401 the auth flow explains
        (clock skew, an expired token), each send within the time left."""
        resent: list[str] = []
        while True:
            started = self._clock()
            until = None if limit is None else started + limit
            if deadline is not None:
                if deadline <= started:
                    raise RequestTimeoutError(
                        "no time left for the request before the deadline"
                    )
                until = deadline if until is None else min(until, deadline)
            headers = self.transport.headers(payload)
            if extra_headers:
                headers.update(extra_headers)
            generation = self.auth_flow.generation
            await self.auth_flow.authorize(
                method, self.transport.signed_path(path), query, headers, payload,
                timeout=None if until is None else until - started,
            )
            left = None if until is None else until - self._clock()
            if left is not None and left <= 0:
                raise RequestTimeoutError(f"{method} {path}: no time left after the token")
            try:
                return await self.transport.send(
                    method, path, query, payload, headers, timeout=left
                )
            except AuthenticationError as exc:
                # Rejected before any work was done: safe to send again, even a CreateJob.
                if not self.auth_flow.resend_after_401(
                    exc, generation=generation, resent=resent
                ):
                    raise
                logger.info("%s %s: 401 (%s); sending again", method, path, resent[-1])

