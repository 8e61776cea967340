"""Live bars of waits and downloads: the rich ones of ``_live`` on a terminal, or nothing.

rich is imported only when something is drawn on a terminal; in a pipe or CI nothing is drawn
on stderr while waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

import koodrive_async as kd

__all__ = ["Bars", "NoBars", "byte_bar", "wait_bars"]


class Bars(Protocol):
    """Live bars of waits, or of a download; NoBars or the rich ones of ``_live``."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(self, detail: kd.JobDetail) -> None:
        """A new snapshot of a job (the waiter's ``on_progress``)."""

    def finish(self, job_id: str, outcome: kd.JobResult | kd.KooDriveError) -> None:
        """A job's wait ended."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """A (re)started transfer of ``total`` bytes, ``done`` already on disk."""

    def advance(self, count: int) -> None:
        """More bytes written."""


class NoBars:
    """Stands in for the bars when stderr is not a terminal: draws nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def update(self, detail: kd.JobDetail) -> None:
        """Ignore a snapshot."""

    def finish(self, job_id: str, outcome: kd.JobResult | kd.KooDriveError) -> None:
        """Ignore an outcome."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """Ignore a transfer start."""

    def advance(self, count: int) -> None:
        """Ignore bytes."""


def wait_bars(job_ids: Sequence[str], *, enabled: bool) -> Bars:
    """Bars for waiting on ``job_ids``: rich ones on stderr when ``enabled``."""
    if not enabled:
        return NoBars()
    from ._live import WaitBars

    return WaitBars(job_ids)


def byte_bar(*, enabled: bool) -> Bars:
    """A download bar (bytes, rate, ETA) on stderr when ``enabled``."""
    if not enabled:
        return NoBars()
    from ._live import ByteBar

    return ByteBar()
