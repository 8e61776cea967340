"""Clocks and the time formats of the KooDrive wire."""

from __future__ import annotations

import asyncio
import calendar
import email.utils
import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""A source of seconds: monotonic for job life, epoch seconds for wall time."""

X_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_TIME14_FORMAT = "%Y%m%d%H%M%S"


class ManualClock:
    """A clock that only moves when told to, for tests in virtual time.

    Pass it as ``clock=`` (job life) and, if wanted, as ``wall_clock=`` (epoch seconds)
    of :class:`~koodrive_async.testing.KooDriveEmulator`. Calling it returns the current
    reading. It is safe to advance from another thread than the one serving requests.

    Its :meth:`sleep` advances it instead of waiting: give the client ``clock=clock,
    sleep=clock.sleep`` and the emulator ``clock=clock``, and a wait of hours runs in
    milliseconds over real sockets.

    Args:
        start: the first reading, in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        """The seconds of every :meth:`sleep`, in order."""

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """The current reading, in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward.

        Args:
            seconds: how far, >= 0.

        Returns:
            The new reading.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        with self._lock:
            self._now += seconds
            return self._now

    async def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` and record it in :attr:`sleeps`, instead of
        waiting; then yield to the event loop once, as a real sleep would.

        A drop-in for ``asyncio.sleep`` wherever a ``sleep`` is injectable.

        Raises:
            ValueError: ``seconds`` is negative (a clock cannot go back).
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: sleep({seconds!r})")
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


def format_time14(epoch: float) -> str:
    """Format epoch seconds as the wire's ``yyyyMMddHHmmss`` (UTC)."""
    return time.strftime(_TIME14_FORMAT, time.gmtime(epoch))


def format_x_date(epoch: float) -> str:
    """Format epoch seconds as an ``X-Date`` header value (``yyyyMMdd'T'HHmmss'Z'``)."""
    return time.strftime(X_DATE_FORMAT, time.gmtime(epoch))


def parse_x_date(value: str) -> float | None:
    """Parse an ``X-Date`` header value to epoch seconds; None when malformed."""
    if len(value) != 16:
        return None
    try:
        parsed = time.strptime(value, X_DATE_FORMAT)
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def format_http_date(epoch: float) -> str:
    """Format epoch seconds as an RFC 7231 ``Date`` header value."""
    return email.utils.formatdate(epoch, usegmt=True)
