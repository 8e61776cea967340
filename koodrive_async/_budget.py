"""The client-wide retry budget: a token bucket, after botocore's standard retry quota.

Every retry spends tokens from one bucket per client; every success puts some back. When a
server fails everything, the bucket empties after a bounded number of retries and requests
fail at their first error instead of multiplying the load: the whole client slows down
together, rather than each caller retrying blindly. Pure logic, no I/O.
"""

from __future__ import annotations

__all__ = ["RetryBudget"]


class RetryBudget:
    """A bucket of retry tokens shared by all requests of one client.

    Args:
        capacity: Tokens when full (the bucket starts full); None for an unlimited budget.
        retry_cost: Tokens one retry spends.
        timeout_retry_cost: Tokens a retry after a timeout spends (a timeout costs the
            server more than a quick error).
        success_refund: Tokens a success without retries puts back.
    """

    def __init__(
        self,
        *,
        capacity: int | None,
        retry_cost: int,
        timeout_retry_cost: int,
        success_refund: int,
    ) -> None:
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_retry_cost = timeout_retry_cost
        self.success_refund = success_refund
        self.available = capacity if capacity is not None else 0
        self.denied = 0
        """Retries refused because the bucket was empty, since the client started."""

    def acquire(self, *, after_timeout: bool) -> int | None:
        """Spend the tokens of one retry; return them, or None when the budget is exhausted."""
        cost = self.timeout_retry_cost if after_timeout else self.retry_cost
        if self.capacity is None:
            return cost
        if cost > self.available:
            self.denied += 1
            return None
        self.available -= cost
        return cost

    def succeeded(self, spent: int) -> None:
        """A request succeeded after spending ``spent`` tokens on retries: refund them (or
        ``success_refund`` when it needed no retry)."""
        if self.capacity is None:
            return
        refund = spent if spent else self.success_refund
        self.available = min(self.capacity, self.available + refund)

    def __repr__(self) -> str:
        if self.capacity is None:
            return "RetryBudget(unlimited)"
        return f"RetryBudget({self.available}/{self.capacity} tokens, {self.denied} denied)"
