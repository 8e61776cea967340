"""The live bars, drawn by rich on stderr; imported (by ``_bars``) only when stderr is a
terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

import koodrive_async as kd

from ._exit import classify
from ._words import STYLES, console, short_label

__all__ = ["MAX_JOB_BARS", "ByteBar", "WaitBars"]

#: Jobs drawn with a bar of their own; beyond that only the overall bar moves.
MAX_JOB_BARS: Final = 20


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _ClockColumn(ProgressColumn):
    """Elapsed time on a job's row; the remaining time (ETA) on the overall row."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("overall"):
            return Text(_hms(task.elapsed or 0), style="yellow")
        if task.finished:
            return Text(f"took {_hms(task.elapsed or 0)}", style="cyan")
        remaining = task.time_remaining
        return Text("ETA -:--:--" if remaining is None else f"ETA {_hms(remaining)}", style="cyan")


class _Live:
    """Starts and stops a rich Progress with the context."""

    progress: Progress

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def update(self, detail: kd.JobDetail) -> None:
        """Not a wait display: ignore."""

    def finish(self, job_id: str, outcome: kd.JobResult | kd.KooDriveError) -> None:
        """Not a wait display: ignore."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """Not a download display: ignore."""

    def advance(self, count: int) -> None:
        """Not a download display: ignore."""


class WaitBars(_Live):
    """One bar per job (percentage, status, elapsed time) and an overall one with an ETA."""

    def __init__(self, job_ids: Sequence[str]) -> None:
        self._ids = list(dict.fromkeys(job_ids))
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=28),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}", markup=True),
            _ClockColumn(),
            console=console(sys.stderr),
            redirect_stdout=False,
            redirect_stderr=True,
            speed_estimate_period=10.0,
        )
        self._tasks: dict[str, TaskID] = {}
        for job_id in self._ids:
            self._tasks[job_id] = self.progress.add_task(
                job_id, total=100, status="waiting", visible=len(self._tasks) < MAX_JOB_BARS
            )
        self._overall = self.progress.add_task(
            f"[bold]all {len(self._ids)} jobs[/]", total=100 * len(self._ids),
            status=f"0/{len(self._ids)} ended", overall=True,
        )
        self._percent: dict[str, int] = {}
        self._ended: set[str] = set()

    def _tally(self, job_id: str, percent: int) -> None:
        self._percent[job_id] = percent
        self.progress.update(
            self._overall, completed=sum(self._percent.values()),
            status=f"{len(self._ended)}/{len(self._ids)} ended",
        )

    def update(self, detail: kd.JobDetail) -> None:
        """A new snapshot of a job (the waiter's ``on_progress``)."""
        info = detail.job_info
        if info is None or info.task_id not in self._tasks or info.task_id in self._ended:
            return
        percent = max(0, min(100, info.progress or 0))
        self.progress.update(
            self._tasks[info.task_id], completed=percent,
            status=short_label(kd.JobStatus, info.status),
        )
        self._tally(info.task_id, percent)

    def finish(self, job_id: str, outcome: kd.JobResult | kd.KooDriveError) -> None:
        """A job's wait ended: show its outcome and stop its clock."""
        task = self._tasks.get(job_id)
        if task is None:
            return
        kind = classify(outcome)
        # A canceled or timed-out job keeps the progress it had; every other one is full.
        percent = 100
        if isinstance(outcome, kd.JobResult) and outcome.canceled:
            percent = outcome.detail.progress or 0
        elif isinstance(outcome, kd.WaitEndedError):
            percent = outcome.last.progress or 0 if outcome.last is not None else 0
        self.progress.update(task, completed=percent, status=f"[{STYLES[kind]}]{kind.value}[/]")
        self.progress.stop_task(task)
        self._ended.add(job_id)
        # The overall bar counts an ended job as whole, however it ended.
        self._tally(job_id, 100)


class ByteBar(_Live):
    """A download bar: bytes, rate, ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=28),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console(sys.stderr),
            redirect_stdout=False,
            redirect_stderr=True,
        )
        self._task: TaskID | None = None

    def start(self, name: str, total: int | None, done: int) -> None:
        """A (re)started transfer of ``total`` bytes, ``done`` already on disk."""
        if self._task is None:
            self._task = self.progress.add_task(name, total=total, completed=done)
        else:
            self.progress.reset(self._task, total=total, completed=done, description=name)

    def advance(self, count: int) -> None:
        """More bytes written."""
        if self._task is not None:
            self.progress.advance(self._task, count)
