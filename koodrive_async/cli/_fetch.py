"""``download``: a package-download job's zip (waiting for the job if needed), or any URL."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import BinaryIO, Final

import koodrive_async as kd

from ._args import invalid_id, poll_policy
from ._bars import byte_bar, wait_bars
from ._config import Context
from ._download import Download, download
from ._exit import EXIT_OK, CliError, Outcome, UsageError, classify
from ._output import Output
from ._words import short_label

__all__ = ["cmd_download", "download_job"]

_REMOTE_TIMEOUT: Final = 60.0


async def _ended(
    client: kd.KooDriveClient, job_id: str, out: Output, *, timeout: float | None,
    poll: kd.PollPolicy | None,
) -> kd.JobResult:
    """The job's result once it has ended, waiting (with a bar) if it is still packaging."""
    try:
        detail = await client.get_job(job_id, total_timeout=_REMOTE_TIMEOUT)
    except kd.InvalidJobIdError as exc:
        raise invalid_id(exc) from None
    info = detail.job_info
    if info is not None and info.task_type not in (None, kd.TaskType.PACKAGE_DOWNLOAD):
        raise UsageError(
            f"job {job_id} is a {short_label(kd.TaskType, info.task_type)} job: only package"
            " downloads have a file to download"
        )
    if detail.terminal:
        return kd.JobResult(job_id=job_id, detail=detail)
    out.note(f"waiting for job {job_id} to finish packaging ...")
    outcomes: list[kd.JobResult | kd.KooDriveError] = []
    with wait_bars([job_id], enabled=out.bars) as bars:
        async for _, outcome in client.wait_for_jobs(
            [job_id], timeout=timeout, on_progress=bars.update, poll=poll
        ):
            bars.finish(job_id, outcome)
            outcomes.append(outcome)
    if isinstance(outcomes[0], kd.KooDriveError):
        raise outcomes[0]
    return outcomes[0]


async def download_job(
    client: kd.KooDriveClient,
    job_id: str,
    out: Output,
    *,
    output: Path | BinaryIO | None,
    force: bool,
    timeout: float | None,
    retries: int,
    poll: kd.PollPolicy | None = None,
) -> tuple[int, Download | None]:
    """Wait for a package-download job if needed, then download its package (to a file, a
    directory, or a binary stream)."""
    result = await _ended(client, job_id, out, timeout=timeout, poll=poll)
    kind = classify(result)
    if result.download_url is None:
        if kind is Outcome.OK:
            raise CliError(f"job {job_id} completed without a downloadUrl")
        raise CliError(f"job {job_id} ended {kind.value}: nothing to download", kind.exit_code)
    if kind is not Outcome.OK:
        out.note(f"job {job_id} ended {kind.value}: the package lacks {len(result.failed)} file(s)")
    with byte_bar(enabled=out.bars) as bar:
        done = await download(
            result.download_url, output=output, key=f"koodrive-{job_id}", force=force,
            retries=retries, progress=bar,
        )
    return kind.exit_code, done


def _print_download(out: Output, done: Download, job_id: str | None) -> None:
    if done.path is None:  # the zip itself went to stdout: nothing else may
        out.note(f"wrote {done.size} bytes to standard output (sha256 {done.sha256})")
        return
    if out.json:
        document: dict[str, object] = {"jobId": job_id} if job_id else {}
        document.update(
            path=str(done.path), size=done.size, sha256=done.sha256,
            resumedFrom=done.resumed_from, requests=done.requests,
        )
        out.document(document)
        return
    resumed = f", resumed at byte {done.resumed_from}" if done.resumed_from else ""
    out.note(f"saved {done.size} bytes{resumed}")
    out.line(str(done.path))


def _output(raw: str | None, out: Output) -> Path | BinaryIO | None:
    """Where ``-o`` sends the zip: a path, stdout for ``-`` (a pipe or a file), or the default."""
    if raw is None or raw == "":
        return None
    if raw != "-":
        if raw.endswith(("/", os.sep)) and not os.path.isdir(raw):
            raise UsageError(f"no such directory: {raw}")  # Path() would drop the slash
        return Path(raw)
    if out.json:
        raise UsageError("-o - writes the zip to standard output: --json cannot go there too")
    if out.fancy:
        raise UsageError(
            "-o -: standard output is a terminal, not the place for a zip; redirect it"
            " (> file.zip, | unzip ...) or pass -o PATH"
        )
    sys.stdout.flush()
    return sys.stdout.buffer


async def cmd_download(args: argparse.Namespace, context: Context) -> int:
    """Download a package by job id (waiting for the job if needed) or by URL."""
    out = context.out
    output = _output(args.output, out)
    if args.target.startswith(("http://", "https://")):
        with byte_bar(enabled=out.bars) as bar:
            done = await download(
                args.target, output=output, force=args.force, retries=args.retries, progress=bar
            )
        _print_download(out, done, None)
        return EXIT_OK
    job_id = args.target.strip()
    poll = poll_policy(args.poll)
    async with context.connect(args) as client:
        code, saved = await download_job(
            client, job_id, out, output=output, force=args.force, timeout=args.timeout,
            retries=args.retries, poll=poll,
        )
    if saved is not None:
        _print_download(out, saved, job_id)
    return code
