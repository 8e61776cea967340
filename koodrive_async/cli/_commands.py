"""The commands that talk to the API: get, wait, list, create, cancel, download.

Each takes the parsed arguments and an Output, and returns its exit code; expected failures
are raised as CliError (one line, no traceback) or KooDriveError, mapped by ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import attrs

from koodrive_async._protocol import validate_job_id
from koodrive_async._schedule import PollPolicy
from koodrive_async.client import KooDriveClient
from koodrive_async.errors import (
    InvalidJobIdError,
    JobStalledError,
    KooDriveError,
    WaitTimeoutError,
)
from koodrive_async.models import (
    ActionType,
    FileRef,
    JobDetail,
    JobResult,
    JobStatus,
    TaskResultCode,
    TaskType,
)

from . import _json
from ._config import INSECURE_HTTP_HINT, Settings, is_utf8, resolve
from ._download import Download, download
from ._exit import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    Outcome,
    UsageError,
    classify,
    worst,
)
from ._render import (
    byte_bar,
    describe_detail,
    label,
    print_table,
    short_label,
    summary_rows,
    wait_bars,
)

__all__ = [
    "COMMANDS",
    "ENV_ARCHIVE_PASSWORD",
    "TASK_TYPES",
    "Output",
    "cmd_download",
    "connect",
    "download_job",
    "poll_policy",
    "wait_and_report",
]

#: Where ``create decompress`` finds an archive password (or ``--password-stdin``).
ENV_ARCHIVE_PASSWORD: Final = "KOODRIVE_ARCHIVE_PASSWORD"
#: Task type names accepted by ``create`` and ``list --type``.
TASK_TYPES: Final = {
    "copy": TaskType.COPY,
    "delete": TaskType.DELETE,
    "move": TaskType.MOVE,
    "restore": TaskType.RESTORE,
    "decompress": TaskType.DECOMPRESS,
    "package": TaskType.PACKAGE_DOWNLOAD,
    "package-download": TaskType.PACKAGE_DOWNLOAD,
    "empty-recycle-bin": TaskType.EMPTY_RECYCLE_BIN,
}
_STATUSES: Final = {status.name.lower(): status for status in JobStatus}
_REMOTE_TIMEOUT: Final = 60.0
_MAX_PASSWORD: Final = 4096


@attrs.frozen
class Output:
    """Where and how results are shown.

    Attributes:
        json: One JSON document per job per line on stdout, instead of text.
        fancy: stdout is a terminal: tables drawn by rich.
        bars: stderr is a terminal (and bars were not turned off): live bars.
    """

    json: bool = False
    fancy: bool = False
    bars: bool = False

    def line(self, text: str = "") -> None:
        """A line of results on stdout."""
        print(text, flush=True)

    def note(self, text: str) -> None:
        """A line for the person watching, on stderr (never machine-read)."""
        print(text, file=sys.stderr, flush=True)

    def document(self, document: object) -> None:
        """One JSON document, one line, on stdout."""
        print(_json.dumps(document), flush=True)


def poll_policy(every: float | None) -> PollPolicy | None:
    """A fixed poll interval of ``every`` seconds; None: the adaptive default."""
    if every is None:
        return None
    if not every > 0:
        raise UsageError(f"--poll must be > 0 seconds, got {every:g}")
    every = max(every, PollPolicy().min_interval)
    return PollPolicy(
        adaptive=False, initial_interval=every, multiplier=1.0, max_fallback_interval=every,
        pending_factor=1.0,
    )


def _client(settings: Settings, *, allow_insecure_http: bool) -> KooDriveClient:
    return KooDriveClient(
        settings.base_url, user_id=settings.user_id, auth=settings.auth,
        allow_insecure_http=allow_insecure_http,
    )


def connect(settings: Settings) -> KooDriveClient:
    """A client for the configured service.

    Raises:
        UsageError: The base URL or user id is not acceptable; a plain-http base URL that
            only ``--allow-insecure-http`` would let through names that flag and its variable.
    """
    try:
        return _client(settings, allow_insecure_http=settings.allow_insecure_http)
    except ValueError as exc:
        error = str(exc)
    if not settings.allow_insecure_http:
        # Asking the client again, rather than repeating its rule of what is loopback, tells
        # whether plain http was the only objection. It opens nothing: the session is lazy.
        try:
            _client(settings, allow_insecure_http=True)
        except ValueError:
            pass
        else:
            error = (
                f"base URL {settings.base_url} is not https: refused, as the credentials would"
                f" travel in clear (loopback addresses are allowed); {INSECURE_HTTP_HINT}"
            )
    raise UsageError(error)


def _job_ids(raw: Sequence[str]) -> list[str]:
    """The ids, checked before any request (a bad one is a usage error), duplicates once."""
    ids = list(dict.fromkeys(item.strip() for item in raw))
    for job_id in ids:
        try:
            validate_job_id(job_id)
        except InvalidJobIdError as exc:
            raise UsageError(f"invalid job id: {exc}") from None
    return ids


def _enum_arg(value: str, names: Mapping[str, int], what: str) -> int:
    key = value.strip().lower().replace("_", "-").replace(" ", "-")
    if key in names:
        return int(names[key])
    if key.isdigit():
        return int(key)
    raise UsageError(f"unknown {what} {value!r}: use one of {', '.join(names)} or a number")


# -- get --------------------------------------------------------------------------------------


async def cmd_get(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Show jobs' details."""
    ids = _job_ids(args.job_ids)
    found: dict[str, JobDetail | KooDriveError] = {}
    async with connect(settings) as client:
        async for job_id, outcome in client.get_jobs(ids, concurrency=args.concurrency):
            found[job_id] = outcome
    codes = []
    for index, job_id in enumerate(ids):
        outcome = found[job_id]
        if isinstance(outcome, KooDriveError):
            codes.append(EXIT_ERROR)
            out.note(f"error: job {job_id}: {outcome}")
            if out.json:
                out.document({"jobId": job_id, "error": _json.error_document(outcome)})
            continue
        codes.append(EXIT_OK)
        if out.json:
            out.document({"jobId": job_id, **_json.to_document(outcome)})
        else:
            if index:
                out.line()
            for text in describe_detail(job_id, outcome):
                out.line(text)
    return worst(codes)


# -- wait -------------------------------------------------------------------------------------


async def wait_and_report(
    client: KooDriveClient,
    ids: Sequence[str],
    out: Output,
    *,
    timeout: float | None,
    concurrency: int = 16,
    cancel_on_exit: bool = False,
    poll: PollPolicy | None = None,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[int, list[tuple[str, JobResult | KooDriveError]]]:
    """Wait for jobs with live bars, then print the summary; return the exit code and outcomes.

    Args:
        during: A coroutine function run alongside the waits (the demo cancels a job in it).
    """
    outcomes: dict[str, JobResult | KooDriveError] = {}
    with wait_bars(ids, enabled=out.bars) as bars:
        side = asyncio.ensure_future(during()) if during is not None else None
        try:
            async for job_id, outcome in client.wait_for_jobs(
                ids, concurrency=concurrency, timeout=timeout, on_progress=bars.update,
                cancel_job_on_exit=cancel_on_exit, poll=poll,
            ):
                outcomes[job_id] = outcome
                bars.finish(job_id, outcome)
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
    return worst([classify(outcome).exit_code for _, outcome in ordered]), ordered


def report(outcomes: Sequence[tuple[str, JobResult | KooDriveError]], out: Output) -> None:
    """The summary of waits: a table (and the failed files), or JSON lines."""
    if out.json:
        for job_id, outcome in outcomes:
            out.document(_json.outcome_document(job_id, outcome))
        return
    headers, rows, failed = summary_rows(outcomes)
    if out.fancy:
        out.line()
    print_table(headers, rows, stream=sys.stdout, fancy=out.fancy)
    if failed:
        out.line()
        out.line("failed files (job, file id, path, code, reason):")
        for text in failed:
            out.line(f"  {text}")
    for job_id, outcome in outcomes:
        if isinstance(outcome, WaitTimeoutError | JobStalledError):
            out.note(f"job {job_id}: {outcome}")


async def cmd_wait(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Wait for jobs, then summarise how they ended."""
    ids = _job_ids(args.job_ids)
    async with connect(settings) as client:
        code, _ = await wait_and_report(
            client, ids, out, timeout=args.timeout, concurrency=args.concurrency,
            cancel_on_exit=args.cancel_on_exit, poll=poll_policy(args.poll),
        )
    return code


# -- list -------------------------------------------------------------------------------------


async def cmd_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """List jobs, every page, newest first as the service sends them."""
    task_type = None if args.type is None else _enum_arg(args.type, TASK_TYPES, "task type")
    status = None if args.status is None else _enum_arg(args.status, _STATUSES, "status")
    rows: list[list[str]] = []
    async with connect(settings) as client:
        async for info in client.list_jobs(task_type=task_type, status=status):
            if out.json:
                out.document(_json.to_document(info))
            else:
                rows.append([
                    info.task_id or "-",
                    short_label(TaskType, info.task_type),
                    short_label(JobStatus, info.status),
                    "-" if info.progress is None else f"{info.progress}%",
                    short_label(TaskResultCode, info.task_result_code),
                    "-" if info.create_time is None else f"{info.create_time:%Y-%m-%d %H:%M:%S}",
                ])
            if args.limit is not None and len(rows) >= args.limit:
                break
    if not out.json:
        headers = ["JOB", "TYPE", "STATUS", "PROGRESS", "RESULT", "CREATED"]
        print_table(headers, rows, stream=sys.stdout, fancy=out.fancy)
    return EXIT_OK


# -- create -----------------------------------------------------------------------------------


def _file_refs(raw: Sequence[str]) -> list[FileRef]:
    refs = []
    for item in raw:
        file_id, _, path = item.partition(":")
        if not file_id:
            raise UsageError(f"bad file {item!r}: give FILE_ID or FILE_ID:/path")
        refs.append(FileRef(file_id, path or None))
    return refs


def _action(args: argparse.Namespace, task_type: int) -> int | None:
    if args.action is not None:
        return int(args.action)
    if task_type == TaskType.COPY:
        return int(ActionType.COPY)
    if task_type == TaskType.MOVE:
        return int(ActionType.MOVE)
    if task_type == TaskType.DELETE:
        return int(
            ActionType.DELETE_PERMANENTLY if args.permanent else ActionType.DELETE_TO_RECYCLE_BIN
        )
    if task_type == TaskType.DECOMPRESS:
        if args.list_only:
            return int(ActionType.LIST_ARCHIVE)
        return int(ActionType.EXTRACT_SELECTED if args.extract else ActionType.EXTRACT_ALL)
    if task_type == TaskType.EMPTY_RECYCLE_BIN:
        return int(ActionType.EMPTY_RECYCLE_BIN)
    return None


def _password(args: argparse.Namespace) -> str | None:
    """The archive password, from standard input or the environment; never shown."""
    if args.password_stdin:
        return _password_from_stdin()
    password = os.environ.get(ENV_ARCHIVE_PASSWORD)
    if password and not is_utf8(password):
        raise UsageError(f"${ENV_ARCHIVE_PASSWORD} is not valid UTF-8")
    return password or None


def _password_from_stdin() -> str:
    # Bytes, decoded here: the text layer's decoding depends on the locale, and a password
    # must be a clear error, not a surrogate that breaks the request body later.
    stream: BinaryIO | None = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise UsageError("--password-stdin: standard input is closed")
    line = stream.readline(_MAX_PASSWORD + 2).rstrip(b"\r\n")  # bounded: stdin may be endless
    if len(line) > _MAX_PASSWORD:
        raise UsageError(f"--password-stdin: the password is longer than {_MAX_PASSWORD} bytes")
    try:
        password = line.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("--password-stdin: the password is not valid UTF-8") from None
    if not password:
        raise UsageError("--password-stdin: no password on standard input")
    return password


async def cmd_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Create a batch job; print its id; with ``--wait``, wait for it."""
    task_type = _enum_arg(args.task_type, TASK_TYPES, "task type")
    files = _file_refs(args.files)
    if task_type == TaskType.DELETE and not args.permanent and args.action is None:
        missing = [ref.file_id for ref in files if ref.file_path is None]
        if missing:
            raise UsageError(
                f"delete to the recycle bin needs each file's path (FILE_ID:/path), missing for"
                f" {', '.join(missing)}; or pass --permanent"
            )
    password = _password(args) if task_type == TaskType.DECOMPRESS else None
    async with connect(settings) as client:
        try:
            job_id = await client.create_job(
                task_type,
                src_container_id=args.src,
                dst_container_id=args.dst or args.src,
                files=files,
                action_type=_action(args, task_type),
                new_file_path=args.to,
                uncompress_file_paths=args.extract or None,
                password=password,
                share_folder_id=args.share_folder,
                total_timeout=_REMOTE_TIMEOUT,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not args.wait:
            if out.json:
                out.document({"jobId": job_id})
            else:
                out.line(job_id)
            return EXIT_OK
        out.note(f"created job {job_id} ({label(TaskType, task_type)})")
        code, _ = await wait_and_report(
            client, [job_id], out, timeout=args.timeout, cancel_on_exit=args.cancel_on_exit,
            poll=poll_policy(args.poll),
        )
    return code


# -- cancel -----------------------------------------------------------------------------------


async def cmd_cancel(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Cancel jobs, one request each."""
    ids = _job_ids(args.job_ids)
    codes = []
    async with connect(settings) as client:
        for job_id in ids:
            try:
                await client.cancel_job(job_id, total_timeout=_REMOTE_TIMEOUT)
            except KooDriveError as exc:
                codes.append(EXIT_ERROR)
                out.note(f"error: job {job_id}: {exc}")
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


# -- download ---------------------------------------------------------------------------------


async def download_job(
    client: KooDriveClient,
    job_id: str,
    out: Output,
    *,
    output: Path | BinaryIO | None,
    force: bool,
    timeout: float | None,
    retries: int,
    poll: PollPolicy | None = None,
) -> tuple[int, Download | None]:
    """Wait for a package-download job if needed, then download its package (to a file, a
    directory, or a binary stream)."""
    detail = await client.get_job(job_id, total_timeout=_REMOTE_TIMEOUT)
    info = detail.job_info
    if info is not None and info.task_type not in (None, TaskType.PACKAGE_DOWNLOAD):
        raise UsageError(
            f"job {job_id} is a {short_label(TaskType, info.task_type)} job: only package"
            " downloads have a file to download"
        )
    if detail.terminal:
        result: JobResult | KooDriveError = JobResult(job_id=job_id, detail=detail)
    else:
        out.note(f"waiting for job {job_id} to finish packaging ...")
        outcomes = []
        with wait_bars([job_id], enabled=out.bars) as bars:
            async for _, outcome in client.wait_for_jobs(
                [job_id], timeout=timeout, on_progress=bars.update, poll=poll
            ):
                bars.finish(job_id, outcome)
                outcomes.append(outcome)
        result = outcomes[0]
    if isinstance(result, KooDriveError):
        raise result
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


async def cmd_download(args: argparse.Namespace, env: Mapping[str, str], out: Output) -> int:
    """Download a package by job id (waiting for the job if needed) or by URL."""
    output = _output(args.output, out)
    if args.target.startswith(("http://", "https://")):
        with byte_bar(enabled=out.bars) as bar:
            done = await download(
                args.target, output=output, force=args.force, retries=args.retries, progress=bar
            )
        _print_download(out, done, None)
        return EXIT_OK
    (job_id,) = _job_ids([args.target])
    settings = resolve(args, env)
    async with connect(settings) as client:
        code, saved = await download_job(
            client, job_id, out, output=output, force=args.force, timeout=args.timeout,
            retries=args.retries, poll=poll_policy(args.poll),
        )
    if saved is not None:
        _print_download(out, saved, job_id)
    return code


# -- dispatch ---------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Settings, Output], Awaitable[int]]

#: The commands that need the connection settings.
COMMANDS: Final[Mapping[str, Command]] = {
    "get": cmd_get,
    "wait": cmd_wait,
    "list": cmd_list,
    "create": cmd_create,
    "cancel": cmd_cancel,
}
