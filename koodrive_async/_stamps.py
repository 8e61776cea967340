"""The stamps of each request and each answer, with no I/O: ``X-Date``, ``X-Traceid``, the
``Date`` header, and the server clock offset learned from it.

Plain functions of their inputs (and the clock readings passed in), tested with literals.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "MAX_CLOCK_OFFSET",
    "PLAUSIBLE_YEARS",
    "TRACE_ID_LENGTH",
    "X_DATE_WINDOW",
    "format_x_date",
    "new_trace_id",
    "parse_http_date",
    "parse_x_date",
    "server_clock_offset",
    "x_date_rejected_for_clock",
]

#: The service rejects an X-Date older than this, in seconds.
X_DATE_WINDOW: Final = 15 * 60
TRACE_ID_LENGTH: Final = 58


#: The epoch seconds an ``X-Date`` can spell with a four-digit year: 1970-01-01T00:00:00Z to
#: 9999-12-31T23:59:59Z.
_X_DATE_FIRST: Final = 0
_X_DATE_LAST: Final = 253_402_300_799


@functools.lru_cache(maxsize=4)
def _x_date_of_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def format_x_date(epoch_seconds: float) -> str:
    """``yyyyMMdd'T'HHmmss'Z'`` in UTC, truncated to the second (never rounded up).

    Never raises and always 16 characters: a moment outside 1970..9999 (a broken clock) is
    clamped to the nearest one the format can spell, and NaN is taken as 1970.
    """
    if not _X_DATE_FIRST <= epoch_seconds <= _X_DATE_LAST:  # NaN included
        epoch_seconds = _X_DATE_LAST if epoch_seconds > _X_DATE_LAST else _X_DATE_FIRST
    # Formatting costs microseconds and every request of a second shares the result.
    return _x_date_of_second(math.floor(epoch_seconds))


def parse_x_date(value: str) -> float | None:
    """Epoch seconds of an ``X-Date`` value, or None when malformed."""
    try:
        parsed = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None
    return parsed.timestamp()


# Every answer carries a Date: the answers of one second share one parse (16 us each).
@functools.lru_cache(maxsize=8)
def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP date (``Date``, ``Retry-After``), or None when unusable."""
    if not value or len(value) > 64:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return None


class _TraceIds:
    """Trace ids: a random 128-bit prefix for this process, then a counter.

    Unique without a system call per request (os.urandom costs 2 us under load); the prefix
    is drawn again in a forked child, which would otherwise repeat its parent's ids.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(16).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(4)))

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):026x}"


#: A fresh 58-character ``X-Traceid`` (lower-case hex: letters and digits) at each call.
new_trace_id: Final = _TraceIds()


#: A ``Date`` further than this from our own clock, in seconds (7 days), is taken for a
#: broken ``Date`` rather than a broken clock, and ignored: the offset learned is bounded, and
#: one bad answer (a gateway's, a hostile server's) cannot push X-Date out of range.
MAX_CLOCK_OFFSET: Final = 7 * 86_400.0
#: Years a server ``Date`` may name; any other is ignored (X-Date spells four digits).
PLAUSIBLE_YEARS: Final = range(1970, 9999)
_PLAUSIBLE_FIRST: Final = datetime(PLAUSIBLE_YEARS[0], 1, 1, tzinfo=UTC).timestamp()
_PLAUSIBLE_END: Final = datetime(PLAUSIBLE_YEARS[-1] + 1, 1, 1, tzinfo=UTC).timestamp()


def _server_time(date_header: str | None, our_now: float) -> float | None:
    """The server's clock from its ``Date``, or None when absent, malformed or implausible:
    a year outside PLAUSIBLE_YEARS, or more than MAX_CLOCK_OFFSET from ``our_now``."""
    server_now = parse_http_date(date_header)
    if server_now is None or not _PLAUSIBLE_FIRST <= server_now < _PLAUSIBLE_END:
        return None
    if not abs(server_now - our_now) <= MAX_CLOCK_OFFSET:
        return None
    return server_now


def server_clock_offset(date_header: str | None, local_now: float) -> float | None:
    """Seconds to add to the local wall clock to get the server's, from a ``Date`` header.

    ``Date`` has one-second resolution and is stamped before the answer travels, so the
    estimate errs towards the past: exactly the side on which ``X-Date`` must err. None
    (learn nothing) for a missing or malformed ``Date``, one naming a year outside
    1970..9998, or one more than ``MAX_CLOCK_OFFSET`` (7 days) from ``local_now``.
    """
    server_now = _server_time(date_header, local_now)
    return None if server_now is None else server_now - local_now


def x_date_rejected_for_clock(sent_x_date: str | None, date_header: str | None) -> bool:
    """True when a 401 is explained by our clock: the X-Date we sent was ahead of the
    server's ``Date``, or older than the 15-minute window. A ``Date`` the client would not
    learn from (see ``server_clock_offset``) explains nothing."""
    sent = parse_x_date(sent_x_date) if sent_x_date else None
    if sent is None:
        return False
    server_now = _server_time(date_header, sent)
    if server_now is None:
        return False
    return sent > server_now or server_now - sent > X_DATE_WINDOW
