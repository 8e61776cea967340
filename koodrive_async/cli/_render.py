"""The tables and summaries the command line prints on stdout.

On a terminal they are drawn by rich, every cell on one line: a value too long for the width
(a download URL, an error with its trace id) is never folded or cut in the middle, it moves
out of the table onto a line of its own, which the terminal wraps without breaking it for
copy and paste. In a pipe the output is plain text in stable columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Final

import koodrive_async as kd

from ._exit import classify
from ._words import STYLES, console, label, one_line

__all__ = ["SUMMARY_HEADERS", "describe_detail", "format_table", "print_table", "summary_rows"]

#: Failed files listed per job under the summary.
MAX_FAILED_LISTED: Final = 10
# Between two columns of a rich table drawn with box=None: one space of padding each side.
_GAP: Final = 2


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


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
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    stream: IO[str],
    fancy: bool,
    long_column: int | None = None,
) -> None:
    """A table on ``stream``: drawn by rich when ``fancy``, plain columns otherwise.

    Args:
        long_column: The index of a column of long values (URLs, messages). When the table
            with it is wider than the terminal, it is printed under the table instead, each
            value on a line of its own after its row's first cell.
    """
    if not fancy:
        for line in format_table(headers, rows):
            print(line, file=stream)
        return
    from rich.table import Table

    out = console(stream)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows,
                                                                          strict=True)]
    moved = long_column is not None and sum(widths) + _GAP * (len(widths) - 1) > out.width
    shown = [i for i in range(len(headers)) if not (moved and i == long_column)]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for index in shown:
        # The first column is the job id: never narrowed. No cell is ever wrapped.
        table.add_column(
            headers[index], no_wrap=True, overflow="ellipsis",
            min_width=widths[index] if index == 0 else None,
        )
    for row in rows:
        style = next((s for o, s in STYLES.items() if len(row) > 1 and row[1] == o.value), None)
        table.add_row(*(row[i] for i in shown), style=style)
    out.print(table)
    if moved and long_column is not None:
        long_rows = [row for row in rows if row[long_column]]
        if long_rows:
            print(f"\n{headers[long_column]}:", file=stream)
        for row in long_rows:
            # print(), not rich: rich would fold the value at the width.
            print(f"  {row[0]}\n{row[long_column]}", file=stream)
    stream.flush()


def describe_detail(job_id: str, detail: kd.JobDetail) -> list[str]:
    """A readable summary of one job (``get`` without ``--json``)."""
    info = detail.job_info or kd.JobInfo()
    tasks = detail.task_infos
    failed = [t for t in tasks if t.status == kd.TaskStatus.FAILED]
    succeeded = sum(1 for t in tasks if t.status == kd.TaskStatus.SUCCEEDED)
    lines = [
        f"job {info.task_id or job_id}",
        f"  type        {label(kd.TaskType, info.task_type)}",
        f"  status      {label(kd.JobStatus, info.status)}",
        f"  progress    {'-' if info.progress is None else f'{info.progress} %'}",
        f"  result      {label(kd.TaskResultCode, info.task_result_code)}",
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


def _error_cell(job_id: str, error: kd.KooDriveError) -> str:
    # One line whatever the error says (a cell must not break the columns), and the job id,
    # already in the row's first cell, not said again.
    text = one_line(str(error))
    for prefix in (f"job {job_id}: ", f"job {job_id} "):
        if text.startswith(prefix):
            return text.removeprefix(prefix)
    return text


#: The summary table of ``wait``; its last column holds the long values.
SUMMARY_HEADERS: Final = ["JOB", "OUTCOME", "FILES OK/FAILED", "ELAPSED", "DOWNLOAD URL / ERROR"]


def summary_rows(
    outcomes: Sequence[tuple[str, kd.JobResult | kd.KooDriveError]],
) -> tuple[list[list[str]], list[str]]:
    """The rows of the summary table of ``wait``, and the failed files to list under it."""
    rows: list[list[str]] = []
    notes: list[str] = []
    for job_id, outcome in outcomes:
        kind = classify(outcome)
        if isinstance(outcome, kd.JobResult):
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
            rows.append([job_id, kind.value, "-", "-", _error_cell(job_id, outcome)])
    return rows, notes
