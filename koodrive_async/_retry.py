"""The retry loop of one call, the client-wide retry budget and pause, and the one back-off.

Everything here is bounded: by the policy's attempts and ``max_elapsed``, by the caller's
deadline, and by the budget every call of one client shares. No I/O but the injected sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

import backoff

from . import _telemetry as telemetry
from ._protocol import is_retryable
from .config import RetryPolicy
from .errors import (
    APIError,
    ClientClosedError,
    ConnectError,
    KooDriveError,
    RateLimitError,
    RequestTimeoutError,
    TransportError,
)

__all__ = [
    "BUDGET_RETRY_COST",
    "BUDGET_SUCCESS_REFUND",
    "BUDGET_TIMEOUT_RETRY_COST",
    "Backoff",
    "Retrier",
    "RetryBudget",
    "retry_reason",
]

logger: Final = logging.getLogger("koodrive_async.http")

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]

# botocore's standard retry quota: what a retry costs the shared bucket, and what a success
# gives back. Constants there too: a user reasons in attempts and seconds, not in tokens.
#: Tokens one retry spends.
BUDGET_RETRY_COST: Final = 5
#: Tokens a retry after a timeout spends (a timeout costs the server more than an error).
BUDGET_TIMEOUT_RETRY_COST: Final = 10
#: Tokens a success that needed no retry gives back.
BUDGET_SUCCESS_REFUND: Final = 1


class Backoff:
    """Growing, fully jittered delays: the one back-off curve of the client.

    Ceilings from python-backoff's ``expo`` (``initial``, ``initial * multiplier`` ... up to
    ``maximum``); each delay drawn uniformly below its ceiling with ``rng`` ("full jitter"),
    so callers that failed together do not come back together. Used by the retry loop and by
    the waiter after a failed poll.
    """

    __slots__ = ("_ceilings", "_rng")

    def __init__(self, *, initial: float, multiplier: float, maximum: float, rng: Random) -> None:
        self._ceilings: Iterator[float] = backoff.expo(
            base=multiplier, factor=initial, max_value=maximum
        )
        next(self._ceilings)  # the generator's first value only primes it
        self._rng = rng

    def next_delay(self) -> float:
        """Seconds to wait before the next try."""
        return next(self._ceilings) * self._rng()


class RetryBudget:
    """A bucket of retry tokens shared by all requests of one client (botocore's quota).

    Every retry spends tokens; every success puts some back. When a server fails everything,
    the bucket empties after a bounded number of retries and requests fail at their first
    error instead of multiplying the load.

    Args:
        capacity: Tokens when full (the bucket starts full); None for an unlimited budget.
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.available = capacity if capacity is not None else 0
        self.denied = 0
        """Retries refused because the bucket was empty, since the client started."""

    def acquire(self, *, after_timeout: bool) -> int | None:
        """Spend the tokens of one retry; return them, or None when the budget is exhausted."""
        cost = BUDGET_TIMEOUT_RETRY_COST if after_timeout else BUDGET_RETRY_COST
        if self.capacity is None:
            return cost
        if cost > self.available:
            self.denied += 1
            return None
        self.available -= cost
        return cost

    def succeeded(self, spent: int) -> None:
        """A request succeeded after spending ``spent`` tokens: refund them (or
        ``BUDGET_SUCCESS_REFUND`` when it needed no retry)."""
        if self.capacity is None:
            return
        available = self.available + (spent if spent else BUDGET_SUCCESS_REFUND)
        self.available = available if available < self.capacity else self.capacity

    def __repr__(self) -> str:
        if self.capacity is None:
            return "RetryBudget(unlimited)"
        return f"RetryBudget({self.available}/{self.capacity} tokens, {self.denied} denied)"


class _Call:
    """The retry state of one call: attempts made, tokens spent, its back-off (made at the
    first retry: most calls never need one)."""

    __slots__ = ("attempts", "backoff", "spent", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempts = 1
        self.spent = 0
        self.backoff: Backoff | None = None


class Retrier:
    """Runs one call's attempts as a RetryPolicy says, sharing a budget and a pause.

    A ``Retry-After`` on a 429 or 503 pauses every call of the client (never longer than
    ``max_retry_after``, on the monotonic clock from that answer), so the whole client slows
    down together instead of each caller hitting the limit again.
    """

    def __init__(
        self, policy: RetryPolicy | None, *, clock: Clock, sleep: Sleep, rng: Random
    ) -> None:
        if policy is None:
            policy = RetryPolicy()
        elif not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, not {type(policy).__name__}")
        self.policy = policy
        self.budget = RetryBudget(policy.budget)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._paused_until = float("-inf")

    async def run(
        self,
        attempt: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        *,
        method: str,
        path: str,
        deadline: float | None,
        idempotent: bool,
        closed: Callable[[], bool],
        operation: str = "",
    ) -> T:
        """``attempt(*args, number)`` (number 1, 2 ...) until it succeeds or an error is not
        worth retrying.

        Args:
            attempt, args: One try; it bounds itself by ``deadline``.
            method, path: The request, for messages.
            operation: Its API operation (GetJobDetail ...), for logs.
            deadline: On ``clock``: no retry starts after it, no pause runs past it.
            idempotent: False for a request that must not be sent twice: then only a
                connection that could not be opened, or a 429, is retried.
            closed: Whether the client was closed meanwhile (the error is then a
                ClientClosedError).
        """
        started = now = self._clock()
        call: _Call | None = None  # made at the first failure: most calls never have one
        while True:
            try:
                if self._paused_until > now:
                    await self._wait_for_pause(started, deadline)
                result = await attempt(*args, 1 if call is None else call.attempts)
            except ClientClosedError:
                raise
            except KooDriveError as exc:
                if closed():  # aclose() while this call was in flight
                    raise ClientClosedError(f"{method} {path}: the client was closed") from exc
                if isinstance(exc, APIError) and exc.retry_after:
                    self._pause(exc.retry_after)
                if call is None:
                    call = _Call(started)
                delay = self._delay(exc, call, deadline, idempotent=idempotent,
                                    operation=operation or path)
                if delay is None:
                    raise
                reason = retry_reason(exc)
                telemetry.retried(reason)
                logger.debug(
                    "%s %s: %s; attempt %d in %.2f s", method, path, exc, call.attempts, delay,
                    extra={"koodrive.operation": operation, "koodrive.attempt": call.attempts,
                           "koodrive.reason": reason, "koodrive.delay": delay},
                )
                await self._sleep(delay)
                now = self._clock()
            else:
                self.budget.succeeded(0 if call is None else call.spent)
                return result

    def _delay(
        self, exc: KooDriveError, call: _Call, deadline: float | None, *, idempotent: bool,
        operation: str,
    ) -> float | None:
        """Seconds to wait before retrying after ``exc``, or None to raise it."""
        policy = self.policy
        if not is_retryable(exc) or call.attempts >= policy.max_attempts:
            return None
        if not idempotent and not isinstance(exc, ConnectError | RateLimitError):
            return None
        retry_after = exc.retry_after if isinstance(exc, APIError) else None
        if retry_after is not None:
            if retry_after > policy.max_retry_after:
                return None
            delay = retry_after
        else:
            if call.backoff is None:
                call.backoff = Backoff(
                    initial=policy.initial_delay, multiplier=policy.multiplier,
                    maximum=policy.max_delay, rng=self._rng,
                )
            delay = call.backoff.next_delay()
        now = self._clock()
        if now + delay - call.started > policy.max_elapsed:
            return None
        if deadline is not None and now + delay >= deadline:
            return None
        cost = self.budget.acquire(after_timeout=isinstance(exc, RequestTimeoutError))
        if cost is None:
            logger.warning(
                "%s: retry budget exhausted (%r): not retrying %s", operation, self.budget, exc,
                extra={"koodrive.operation": operation, "koodrive.attempt": call.attempts,
                       "koodrive.reason": retry_reason(exc)},
            )
            return None
        call.spent += cost
        call.attempts += 1
        return delay

    def _pause(self, retry_after: float) -> None:
        until = self._clock() + min(retry_after, self.policy.max_retry_after)
        self._paused_until = max(self._paused_until, until)

    async def _wait_for_pause(self, started: float, deadline: float | None) -> None:
        """Wait out the client-wide pause, or raise RateLimitError if it outlasts the call.

        A call's time is its deadline, or else its policy's ``max_elapsed``: a pause is
        never waited past either.
        """
        now = self._clock()
        pause = self._paused_until - now
        if pause <= 0:
            return
        limit = started + self.policy.max_elapsed
        if deadline is not None:
            limit = min(limit, deadline)
        if now + pause >= limit:
            raise RateLimitError(
                f"the server asked this client to pause {pause:.1f} s more, past this call's"
                " time", http_status=429, retry_after=pause,
            )
        await self._sleep(pause)


def retry_reason(exc: KooDriveError) -> str:
    """Why a request is sent again, as ``koodrive.client.retries`` counts it: ``429``,
    ``5xx``, ``transport`` (no answer), or another status (``408``)."""
    if isinstance(exc, RateLimitError):
        return "429"
    if isinstance(exc, APIError):
        return "5xx" if exc.http_status >= 500 else str(exc.http_status)
    return "transport" if isinstance(exc, TransportError) else type(exc).__name__
