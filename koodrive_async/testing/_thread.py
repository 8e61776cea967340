"""Serving from a background thread with its own event loop, for synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator


class ServerThread:
    """Runs ``start()``, then waits for a stop request, then ``stop()``, all in one thread
    with its own event loop.

    Args:
        start: Starts serving; its exception is re-raised in the calling thread.
        stop: Stops serving; called in the serving thread once a stop is requested.
        name: The thread's name.
    """

    def __init__(
        self,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        *,
        name: str,
    ) -> None:
        self._start = start
        self._stop = stop
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False

    @contextlib.contextmanager
    def serving(self, *, startup_timeout: float) -> Iterator[None]:
        """Start the thread and wait until it serves; on exit stop it and join it.

        Raises:
            RuntimeError: it did not start serving within ``startup_timeout`` seconds.
            BaseException: whatever ``start()`` raised.
        """
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready, failure)), name=self._name, daemon=True
        )
        thread.start()
        if not ready.wait(startup_timeout):
            self._request_stop()
            thread.join(startup_timeout)
            raise RuntimeError("the KooDrive emulator did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield
        finally:
            self._request_stop()
            thread.join()

    def _request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(event.set)

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        event = asyncio.Event()
        with self._lock:
            self._loop, self._stop_event = asyncio.get_running_loop(), event
            if self._stop_requested:  # gave up waiting before this thread got going
                event.set()
        try:
            await self._start()
        except BaseException as exc:  # handed to the starting thread, which re-raises it
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await event.wait()
        finally:
            await self._stop()
