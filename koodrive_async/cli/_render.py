"""What the command line shows: live bars on stderr (a terminal only), tables and summaries.

rich is imported only when something is drawn on a terminal; in a pipe or CI the output is
plain text in stable columns and nothing is drawn on stderr while waiting.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Final, Protocol, Self

from koodrive_async.errors import KooDriveError
from koodrive_async.models import (
    JobDetail,
    JobInfo,
    JobResult,
    JobStatus,
    TaskResultCode,
    TaskStatus,
    TaskType,
)

from ._exit import Outcome, classify

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "STYLES",
    "Bars",
    "NoBars",
    "byte_bar",
    "console",
    "describe_detail",
    "format_table",
    "label",
    "print_table",
    "short_label",
    "summary_rows",
    "wait_bars",
]

#: Failed files listed per job under the summary.
MAX_FAILED_LISTED: Final = 10
STYLES: Final = {
    Outcome.OK: "green",
    Outcome.PARTIALLY_FAILED: "yellow",
    Outcome.FAILED: "red",
    Outcome.CANCELED: "magenta",
    Outcome.TIMEOUT: "red",
    Outcome.ERROR: "red",
}


def label(enum_cls: type[enum.Enum], value: object) -> str:
    """``package download (6)`` for a known enum value, the raw value otherwise."""
    if value is None:
        return "-"
    try:
        member = enum_cls(value)
    except ValueError:
        return str(value)
    return f"{member.name.lower().replace('_', ' ')} ({member.value})"


def short_label(enum_cls: type[enum.Enum], value: object) -> str:
    try:
        return enum_cls(value).name.lower().replace("_", " ")
    except ValueError:
        return "-" if value is None else str(value)


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def console(stream: IO[str]) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Plain columns, two spaces apart, the last one unpadded: stable for scripts and diffs."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)),
                   row[-1]]).rstrip()
        for row in table
    ]


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, stream: IO[str], fancy: bool
) -> None:
    """A table on ``stream``: drawn by rich when ``fancy``, plain columns otherwise."""
    if not fancy:
        for line in format_table(headers, rows):
            print(line, file=stream)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for index, header in enumerate(headers):
        # The last column holds URLs and messages: folded, never cut with an ellipsis.
        last = index == len(headers) - 1
        table.add_column(header, overflow="fold" if last else "ellipsis", no_wrap=not last)
    for row in rows:
        style = next((s for o, s in STYLES.items() if len(row) > 1 and row[1] == o.value), None)
        table.add_row(*row, style=style)
    console(stream).print(table)


def describe_detail(job_id: str, detail: JobDetail) -> list[str]:
    """A readable summary of one job (``get`` without ``--json``)."""
    info = detail.job_info or JobInfo()
    tasks = detail.task_infos
    failed = [t for t in tasks if t.status == TaskStatus.FAILED]
    succeeded = sum(1 for t in tasks if t.status == TaskStatus.SUCCEEDED)
    lines = [
        f"job {info.task_id or job_id}",
        f"  type        {label(TaskType, info.task_type)}",
        f"  status      {label(JobStatus, info.status)}",
        f"  progress    {'-' if info.progress is None else f'{info.progress} %'}",
        f"  result      {label(TaskResultCode, info.task_result_code)}",
        f"  files       {len(tasks)}: {succeeded} succeeded, {len(failed)} failed,"
        f" {len(tasks) - succeeded - len(failed)} pending",
        f"  created     {_time(info.create_time)}",
        f"  began       {_time(info.begin_time)}",
        f"  ended       {_time(info.end_time)}",
    ]
    if info.task_name:
        lines.insert(1, f"  name        {info.task_name}")
    if info.download_url:
        lines.append(f"  download    {info.download_url}")
    for task in failed[:MAX_FAILED_LISTED]:
        lines.append(
            f"  failed      {task.file_id} {task.file_path or ''}: {task.result_code or ''}"
            f" {task.result_desc or ''}".rstrip()
        )
    if len(failed) > MAX_FAILED_LISTED:
        lines.append(f"  failed      ... and {len(failed) - MAX_FAILED_LISTED} more")
    if detail.uncompressed_file_list:
        lines.append(f"  archive     {len(detail.uncompressed_file_list)} top-level entries")
    return lines


def _error_line(error: KooDriveError) -> str:
    # One line whatever the error says: a table cell must not break the columns.
    return " ".join(str(error).split())


def summary_rows(
    outcomes: Sequence[tuple[str, JobResult | KooDriveError]],
) -> tuple[list[str], list[list[str]], list[str]]:
    """The summary table of ``wait`` (headers, rows) and the failed files to list under it."""
    headers = ["JOB", "OUTCOME", "FILES OK/FAILED", "ELAPSED", "DOWNLOAD URL / ERROR"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for job_id, outcome in outcomes:
        kind = classify(outcome)
        if isinstance(outcome, JobResult):
            files = f"{len(outcome.succeeded)}/{len(outcome.failed)}"
            rows.append([job_id, kind.value, files, f"{outcome.elapsed:.1f} s",
                         outcome.download_url or ""])
            for task in outcome.failed[:MAX_FAILED_LISTED]:
                notes.append(
                    f"{job_id}  {task.file_id}  {task.file_path or '-'}  {task.result_code or '-'}"
                    f"  {task.result_desc or ''}".rstrip()
                )
            if len(outcome.failed) > MAX_FAILED_LISTED:
                notes.append(f"{job_id}  ... and {len(outcome.failed) - MAX_FAILED_LISTED} more")
        else:
            rows.append([job_id, kind.value, "-", "-", _error_line(outcome)])
    return headers, rows, notes


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

    def update(self, detail: JobDetail) -> None:
        """Ignore a snapshot."""

    def finish(self, job_id: str, outcome: JobResult | KooDriveError) -> None:
        """Ignore an outcome."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """Ignore a transfer start."""

    def advance(self, count: int) -> None:
        """Ignore bytes."""


class Bars(Protocol):
    """Live bars of waits, or of a download; NoBars or the rich ones of ``_bars``."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(self, detail: JobDetail) -> None:
        """A new snapshot of a job (the waiter's ``on_progress``)."""

    def finish(self, job_id: str, outcome: JobResult | KooDriveError) -> None:
        """A job's wait ended."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """A (re)started transfer of ``total`` bytes, ``done`` already on disk."""

    def advance(self, count: int) -> None:
        """More bytes written."""


def wait_bars(job_ids: Sequence[str], *, enabled: bool) -> Bars:
    """Bars for waiting on ``job_ids``: rich ones on stderr when ``enabled``."""
    if not enabled:
        return NoBars()
    from ._bars import WaitBars

    return WaitBars(job_ids)


def byte_bar(*, enabled: bool) -> Bars:
    """A download bar (bytes, rate, ETA) on stderr when ``enabled``."""
    if not enabled:
        return NoBars()
    from ._bars import ByteBar

    return ByteBar()
