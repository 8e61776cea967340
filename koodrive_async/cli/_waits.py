"""``wait``: wait for jobs with live bars, then the summary; shared by ``create --wait``,
``download`` and the demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import koodrive_async as kd

from . import _json
from ._args import invalid_id, job_ids, poll_policy
from ._bars import wait_bars
from ._config import Context
from ._exit import exit_code, worst
from ._output import Output
from ._render import SUMMARY_HEADERS, print_table, summary_rows
from ._words import about

__all__ = ["DEFAULT_WAIT_TIMEOUT", "WAIT_CONCURRENCY", "cmd_wait", "report", "wait_and_report"]

#: The client's own default for a whole wait, in seconds (``wait_for_jobs(timeout=)``).
DEFAULT_WAIT_TIMEOUT: Final = kd.DEFAULT_WAIT_TIMEOUT
#: Requests in flight at most while waiting, unless ``--concurrency`` says otherwise.
WAIT_CONCURRENCY: Final = 16

Outcomes = list[tuple[str, kd.JobResult | kd.KooDriveError]]


async def wait_and_report(
    client: kd.KooDriveClient,
    ids: Sequence[str],
    out: Output,
    *,
    timeout: float | None,
    concurrency: int = WAIT_CONCURRENCY,
    cancel_on_exit: bool = False,
    poll: kd.PollPolicy | None = None,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[int, Outcomes]:
    """Wait for jobs with live bars, then print the summary; return the exit code and outcomes.

    A job id the client refuses (``kd.InvalidJobIdError``, before any request) is said at
    once on stderr and is that id's usage error; the other jobs are still waited on.

    Args:
        during: A coroutine function run alongside the waits (the demo cancels a job in it).
    """
    outcomes: dict[str, kd.JobResult | kd.KooDriveError] = {}
    with wait_bars(ids, enabled=out.bars) as bars:
        side = asyncio.ensure_future(during()) if during is not None else None
        try:
            async for job_id, outcome in client.wait_for_jobs(
                ids, concurrency=concurrency, timeout=timeout, on_progress=bars.update,
                cancel_job_on_exit=cancel_on_exit, poll=poll,
            ):
                outcomes[job_id] = outcome
                bars.finish(job_id, outcome)
                if isinstance(outcome, kd.InvalidJobIdError):
                    out.note(f"error: {invalid_id(outcome)}")
        except asyncio.CancelledError:
            left = [job_id for job_id in ids if job_id not in outcomes]
            if cancel_on_exit and left:
                out.note(f"interrupted: sent CancelJob for {len(left)} unfinished job(s)")
            raise
        finally:
            if side is not None:
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)
    ordered = [(job_id, outcomes[job_id]) for job_id in ids]
    report(ordered, out)
    return worst([exit_code(outcome) for _, outcome in ordered]), ordered


def report(outcomes: Sequence[tuple[str, kd.JobResult | kd.KooDriveError]], out: Output) -> None:
    """The summary of waits: a table (and the failed files), or JSON lines."""
    if out.json:
        for job_id, outcome in outcomes:
            out.document(_json.outcome_document(job_id, outcome))
        return
    rows, failed = summary_rows(outcomes)
    if out.fancy:
        out.line()
    print_table(SUMMARY_HEADERS, rows, stream=sys.stdout, fancy=out.fancy, long_column=4)
    if failed:
        out.line()
        out.line("failed files (job, file id, path, code, reason):")
        for text in failed:
            out.line(f"  {text}")
    for job_id, outcome in outcomes:
        if isinstance(outcome, kd.WaitEndedError):
            out.note(about(job_id, outcome))


async def cmd_wait(args: argparse.Namespace, context: Context) -> int:
    """Wait for jobs, then summarise how they ended."""
    ids = job_ids(args.job_ids)
    poll = poll_policy(args.poll)
    async with context.connect(args) as client:
        code, _ = await wait_and_report(
            client, ids, context.out, timeout=args.timeout, concurrency=args.concurrency,
            cancel_on_exit=args.cancel_on_exit, poll=poll,
        )
    return code
