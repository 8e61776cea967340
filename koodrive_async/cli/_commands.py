"""The command table, and the short commands: get, list, cancel, emulator.

Every command is an entry of COMMANDS: an async ``run(args, context)`` returning its exit
code, or (the emulator, whose options are its own) a ``forward(argv, prog)`` given its
arguments unparsed. Expected failures are raised as CliError (one line, no traceback) or
KooDriveError, mapped to exit codes by ``cli.main``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import attrs

import koodrive_async as kd

from . import _json
from ._args import STATUS_NAMES, TASK_TYPES, enum_arg, invalid_id, job_ids
from ._config import Context
from ._create import cmd_create
from ._exit import EXIT_ERROR, EXIT_OK, EXIT_USAGE, worst
from ._fetch import cmd_download
from ._render import describe_detail, print_table
from ._waits import cmd_wait
from ._words import about, short_label

__all__ = ["COMMANDS", "Command"]

_REMOTE_TIMEOUT: Final = 60.0


def _failed(context: Context, job_id: str, error: kd.KooDriveError) -> int:
    """Say that one job's call failed; its exit code (2 for an id the client refused)."""
    if isinstance(error, kd.InvalidJobIdError):
        context.out.note(f"error: {invalid_id(error)}")
        return EXIT_USAGE
    context.out.note(f"error: {about(job_id, error)}")
    return EXIT_ERROR


async def cmd_get(args: argparse.Namespace, context: Context) -> int:
    """Show jobs' details."""
    out = context.out
    ids = job_ids(args.job_ids)
    found: dict[str, kd.JobDetail | kd.KooDriveError] = {}
    async with context.connect(args) as client:
        async for job_id, outcome in client.get_jobs(ids, concurrency=args.concurrency):
            found[job_id] = outcome
    codes = []
    shown = 0
    for job_id in ids:
        outcome = found[job_id]
        if isinstance(outcome, kd.KooDriveError):
            codes.append(_failed(context, job_id, outcome))
            if out.json:
                out.document({"jobId": job_id, "error": _json.error_document(outcome)})
            continue
        codes.append(EXIT_OK)
        if out.json:
            out.document({"jobId": job_id, **kd.to_wire(outcome)})
            continue
        if shown:
            out.line()
        shown += 1
        for text in describe_detail(job_id, outcome):
            out.line(text)
    return worst(codes)


async def cmd_list(args: argparse.Namespace, context: Context) -> int:
    """List jobs, every page, newest first as the service sends them."""
    out = context.out
    task_type = None if args.type is None else enum_arg(
        args.type, TASK_TYPES, "task type", "--type")
    status = None if args.status is None else enum_arg(
        args.status, STATUS_NAMES, "status", "--status")
    rows: list[list[str]] = []
    listed = 0
    async with context.connect(args) as client:
        async for info in client.list_jobs(task_type=task_type, status=status):
            listed += 1
            if out.json:
                out.document(kd.to_wire(info))
            else:
                rows.append([
                    info.task_id or "-",
                    short_label(kd.TaskType, info.task_type),
                    short_label(kd.JobStatus, info.status),
                    "-" if info.progress is None else f"{info.progress} %",
                    short_label(kd.TaskResultCode, info.task_result_code),
                    "-" if info.create_time is None else f"{info.create_time:%Y-%m-%d %H:%M:%S}",
                ])
            if args.limit is not None and listed >= args.limit:
                break
    if not out.json:
        headers = ["JOB", "TYPE", "STATUS", "PROGRESS", "RESULT", "CREATED"]
        print_table(headers, rows, stream=sys.stdout, fancy=out.fancy)
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace, context: Context) -> int:
    """Cancel jobs, one request each; a failure does not stop the others."""
    out = context.out
    ids = job_ids(args.job_ids)
    codes = []
    async with context.connect(args) as client:
        for job_id in ids:
            try:
                await client.cancel_job(job_id, total_timeout=_REMOTE_TIMEOUT)
            except kd.KooDriveError as exc:
                codes.append(_failed(context, job_id, exc))
                if out.json:
                    out.document(
                        {"jobId": job_id, "canceled": False, "error": _json.error_document(exc)}
                    )
                continue
            codes.append(EXIT_OK)
            if out.json:
                out.document({"jobId": job_id, "canceled": True})
            else:
                out.line(f"canceled {job_id}")
    return worst(codes)


async def cmd_demo(args: argparse.Namespace, context: Context) -> int:
    """The tour on the embedded emulator."""
    from ._demo import run_demo

    return await run_demo(args, context.out)


def forward_emulator(argv: Sequence[str], prog: str) -> int:
    """``emulator``: the standalone emulator's own command line, given its arguments."""
    from koodrive_async.testing import serve_emulator

    return serve_emulator(argv, prog=prog)


Run = Callable[[argparse.Namespace, Context], Awaitable[int]]
Forward = Callable[[Sequence[str], str], int]


@attrs.frozen
class Command:
    """One command: ``run`` on its parsed arguments, or ``forward`` of its raw ones."""

    run: Run | None = None
    forward: Forward | None = None


#: Every command of the command line, by name.
COMMANDS: Final[Mapping[str, Command]] = {
    "get": Command(run=cmd_get),
    "wait": Command(run=cmd_wait),
    "list": Command(run=cmd_list),
    "create": Command(run=cmd_create),
    "cancel": Command(run=cmd_cancel),
    "download": Command(run=cmd_download),
    "emulator": Command(forward=forward_emulator),
    "demo": Command(run=cmd_demo),
}
