"""Defaults as named constants, the retry policy, and the "use the client default" sentinel."""

from __future__ import annotations

import enum
import math
import re
from typing import Any, Final, TypeVar

import attrs

__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "RetryPolicy",
    "UseClientDefault",
    "check_header_value",
    "check_seconds",
    "enum_value",
]

E = TypeVar("E", bound=enum.IntEnum)

#: Seconds allowed for one HTTP attempt (connect, send, read the whole answer).
DEFAULT_TIMEOUT: Final = 30.0
#: Size of the connection pool of a session the client owns.
DEFAULT_MAX_CONNECTIONS: Final = 100
#: Bodies larger than this are refused, so a broken server cannot exhaust memory.
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
#: Sent as ``language`` only when the caller asks; the service's default is en-US.
DEFAULT_LANGUAGE: Final = "en-US"


class UseClientDefault(enum.Enum):
    """Tells "use the client's setting" apart from ``timeout=None`` (no timeout)."""

    TOKEN = enum.auto()

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault.TOKEN

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def check_seconds(name: str, value: object) -> float | None:
    """A duration the caller gave, as float seconds; None (and infinity) mean no limit.

    Raises:
        TypeError: ``value`` is not a number (a bool is not one).
        ValueError: ``value`` is not > 0, or is NaN.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if not value > 0:  # NaN included
        raise ValueError(f"{name} must be > 0 seconds or None, got {value!r}")
    return None if math.isinf(value) else float(value)


def enum_value(name: str, cls: type[E], value: object) -> E | int:
    """The member of ``cls`` a caller means: a member, its int value, or its name in any case
    with ``-`` or ``_`` (``"processing"``, ``"package-download"``).

    An int the enum does not know is kept as it is (the service may know it).

    Raises:
        ValueError: A name that is not one, naming ``name`` and the choices.
        TypeError: Neither an int nor a str.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        member = cls.__members__.get(key)
        if member is not None:
            return member
        if key.isdigit():
            return enum_value(name, cls, int(key))
        choices = ", ".join(m.lower() for m in cls.__members__)
        raise ValueError(f"{name} must be one of {choices} (or its number), got {value!r:.40}")
    raise TypeError(f"{name} must be a {cls.__name__}, an int or a name, not "
                    f"{type(value).__name__}")


def check_header_value(name: str, value: object) -> str:
    """``value`` if it can travel in an HTTP header as given; ValueError naming ``name``.

    Control characters (CR, LF, NUL ...) would let a value split the request or be refused
    deep inside aiohttp; they are refused here, before any request.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    if _CONTROL.search(value):
        raise ValueError(f"{name} contains a control character (CR, LF, NUL ...)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a mis-decoded environment or file
        raise ValueError(f"{name} is not valid Unicode (a lone surrogate)") from None
    return value


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How one request is retried after a transient failure.

    Retried: connection errors, timeouts, 408, 429, 5xx, and the business code 13000201.
    Never retried: other 4xx. ``create_job`` is retried only when the request certainly did
    not reach the service (see ``KooDriveClient.create_job``). Each retry waits an
    exponential, fully jittered delay, or exactly the server's ``Retry-After`` when it sent
    one (capped by ``max_retry_after``). Every retry is bounded by attempts and by time.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial_delay: Seconds; the ceiling of the first jittered delay.
        multiplier: Growth of the delay ceiling per retry.
        max_delay: Seconds; the largest delay ceiling.
        max_elapsed: Seconds; no retry starts after this long since the first attempt.
        max_retry_after: Seconds; a longer ``Retry-After`` is not waited for: the error is
            raised at once.
        jitter: Draw each delay uniformly between 0 and its ceiling ("full jitter"), so
            clients that failed together do not retry together. False only for tests.
        budget: Retry tokens shared by every request of the client (botocore's retry
            quota): a retry spends ``retry_cost`` (``timeout_retry_cost`` after a timeout),
            a success gives back what it spent (``success_refund`` if it spent nothing).
            Once empty, requests fail at their first error until successes refill it, so a
            failing server does not get a retry storm. None: no budget.
    """

    max_attempts: int = attrs.field(default=4, validator=_at_least_one)
    initial_delay: float = attrs.field(default=0.5, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_delay: float = attrs.field(default=8.0, validator=_positive)
    max_elapsed: float = attrs.field(default=60.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    jitter: bool = True
    budget: int | None = attrs.field(default=500)
    retry_cost: int = attrs.field(default=5, validator=_at_least_one)
    timeout_retry_cost: int = attrs.field(default=10, validator=_at_least_one)
    success_refund: int = attrs.field(default=1, validator=_non_negative)

    @budget.validator
    def _check_budget(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"budget must be >= 0 or None, got {value!r}")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)
