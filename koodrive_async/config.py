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
    "PollPolicy",
    "RetryPolicy",
    "UseClientDefault",
    "check_count",
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


def check_count(name: str, value: object) -> int:
    """A count the caller gave (a pool size, a concurrency): an int >= 1.

    Raises:
        TypeError: Not an int (a bool is not one).
        ValueError: Below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


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


def _number(attribute: attrs.Attribute[Any], value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{attribute.name} must be a number of seconds, not {type(value).__name__}"
        )
    return value


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _number(attribute, value) > 0:  # NaN included
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not _number(attribute, value) >= 0:  # NaN included
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _budget(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"budget must be an int or None, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"budget must be >= 0 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How one request is retried after a transient failure.

    Retried: connection errors, timeouts, 408, 429, every 5xx but 501 and 505 (the request
    can never work), and the business code 13000201. Never retried: other 4xx.
    ``create_job`` is retried only when the request certainly did not reach the service (see
    ``KooDriveClient.create_job``). Each retry waits an exponential, fully jittered delay
    (drawn uniformly below its ceiling, so clients that failed together do not retry
    together), or exactly the server's ``Retry-After`` when it sent one (capped by
    ``max_retry_after``). Every retry is bounded by attempts and by time.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial_delay: Seconds; the ceiling of the first jittered delay.
        multiplier: Growth of the delay ceiling per retry.
        max_delay: Seconds; the largest delay ceiling.
        max_elapsed: Seconds; no retry starts after this long since the first attempt.
        max_retry_after: Seconds; a longer ``Retry-After`` is not waited for: the error is
            raised at once.
        budget: Retry tokens shared by every request of the client (botocore's retry
            quota): a retry spends 5 (10 after a timeout), a success gives back what it
            spent (1 if it spent nothing). Once empty, requests fail at their first error
            until successes refill it, so a failing server does not get a retry storm.
            None: no budget.
    """

    max_attempts: int = attrs.field(default=4, validator=_at_least_one)
    initial_delay: float = attrs.field(default=0.5, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_delay: float = attrs.field(default=8.0, validator=_positive)
    max_elapsed: float = attrs.field(default=60.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    budget: int | None = attrs.field(default=500, validator=_budget)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)


# -- PollPolicy: when to poll a job while waiting for it ---------------------------------------
# Only the knobs a user reasons in; the estimator's tuning is private to ``_schedule``.

#: Seconds between the first poll (immediate) and the second one.
DEFAULT_POLL_INITIAL_INTERVAL: Final = 1.0
#: Seconds; no delay between two polls is ever longer.
DEFAULT_POLL_MAX_INTERVAL: Final = 300.0
#: Growth of the interval after each poll that taught nothing new.
DEFAULT_POLL_MULTIPLIER: Final = 1.5
#: Relative jitter: each delay is multiplied by a uniform draw in [1 - jitter, 1 + jitter].
DEFAULT_POLL_JITTER: Final = 0.1


class _Default(float):
    """A bound's default, told apart by its type from the same number given."""

    __slots__ = ()


_DEFAULT_INITIAL: Final = _Default(DEFAULT_POLL_INITIAL_INTERVAL)
_DEFAULT_MAX: Final = _Default(DEFAULT_POLL_MAX_INTERVAL)


def _poll_number(owner: str, name: str, value: object) -> float:
    """``value`` as a float if it is a real number (a bool is not one): TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{name} must be a number, not {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{owner}.{name} must be a number, got nan")
    return float(value)


def _poll_seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    seconds = _poll_number("PollPolicy", attribute.name, value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"PollPolicy.{attribute.name} must be finite seconds > 0, got {value!r}")


def _poll_multiplier(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    factor = _poll_number("PollPolicy", attribute.name, value)
    if not (math.isfinite(factor) and factor >= 1):
        raise ValueError(f"PollPolicy.{attribute.name} must be finite and >= 1, got {value!r}")


def _poll_jitter(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not 0 <= _poll_number("PollPolicy", attribute.name, value) < 1:
        raise ValueError(f"PollPolicy.{attribute.name} must be in [0, 1), got {value!r}")


def _poll_flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"PollPolicy.{attribute.name} must be a bool, not {type(value).__name__}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How often a job is polled while waiting for it.

    The first poll is immediate, the second follows after ``initial_interval``. While nothing
    new is learnt (the job is pending, its progress is unknown or not moving) the interval
    grows by ``multiplier`` after each poll, up to 30 s (or ``max_interval`` if smaller); a
    pending job is polled half as often as a running one, within the same bounds. When
    ``adaptive`` and the progress moves, the finish is predicted from the measured rate and
    the polls close in on it; only a finish predicted far away waits longer than 30 s.
    ``max_interval`` caps every delay, and no delay is shorter than ``initial_interval``
    (or 0.25 s, if that is shorter), so the user's numbers are never overruled.

    Any field may be set alone: ``PollPolicy(max_interval=5)`` never waits more than 5 s
    between polls. When only one of ``initial_interval`` and ``max_interval`` is given and
    they cross, the other follows it (``max_interval=0.5`` alone also starts at 0.5 s); two
    given values that cross are a ValueError, even one equal to its default.

    Attributes:
        initial_interval: Seconds between the first and the second poll.
        max_interval: Seconds; the cap of every delay, a pending job's included.
        multiplier: Growth (>= 1) of the interval after each poll that taught nothing.
        jitter: Relative jitter in [0, 1): 0.1 multiplies each delay by a draw in
            [0.9, 1.1] (then capped by ``max_interval``), so waiters that started together
            do not poll together.
        adaptive: Predict the finish from the progress; False keeps the growing interval.

    Raises:
        TypeError: A field is not a number (a bool is not one; ``adaptive`` must be a bool).
        ValueError: A field is out of its range, NaN, or ``initial_interval > max_interval``.
    """

    initial_interval: float = attrs.field(default=_DEFAULT_INITIAL, validator=_poll_seconds)
    max_interval: float = attrs.field(default=_DEFAULT_MAX, validator=_poll_seconds)
    multiplier: float = attrs.field(default=DEFAULT_POLL_MULTIPLIER, validator=_poll_multiplier)
    jitter: float = attrs.field(default=DEFAULT_POLL_JITTER, validator=_poll_jitter)
    adaptive: bool = attrs.field(default=True, validator=_poll_flag)

    def __attrs_post_init__(self) -> None:
        initial, maximum = self.initial_interval, self.max_interval
        if initial <= maximum:
            return
        # A bound left out is still its marker (attrs.evolve passes it on as it is): it
        # follows the other. Frozen: set here, once, before anyone sees the object.
        if type(maximum) is _Default and type(initial) is not _Default:
            object.__setattr__(self, "max_interval", initial)
        elif type(initial) is _Default:
            object.__setattr__(self, "initial_interval", maximum)
        else:
            raise ValueError(
                f"PollPolicy.initial_interval ({initial!r}) must be <= "
                f"max_interval ({maximum!r})"
            )

    @classmethod
    def fixed(cls, seconds: float) -> PollPolicy:
        """Poll every ``seconds`` exactly, whatever the job's state (pending included): no
        growth, no prediction, no jitter (many waiters started together poll together; a
        policy with ``jitter`` spreads them).

        Args:
            seconds: The interval between two polls, > 0.

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is not finite and > 0.
        """
        seconds = _poll_number("PollPolicy.fixed", "seconds", seconds)
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"PollPolicy.fixed: seconds must be finite and > 0, got {seconds!r}")
        return cls(
            initial_interval=seconds, max_interval=seconds, multiplier=1.0, jitter=0.0,
            adaptive=False,
        )
