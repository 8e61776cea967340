"""``create``: a batch job of any task type, its id printed; with ``--wait``, waited on.

A flag that the task type does not take (``create copy --permanent``) is a usage error, not
a value sent for the service to ignore.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import BinaryIO, Final

import koodrive_async as kd

from ._args import TASK_TYPES, enum_arg, poll_policy
from ._config import Context, is_utf8
from ._exit import EXIT_OK, UsageError
from ._waits import wait_and_report
from ._words import label, short_label

__all__ = ["ENV_ARCHIVE_PASSWORD", "cmd_create"]

#: Where ``create decompress`` finds an archive password (or ``--password-stdin``).
ENV_ARCHIVE_PASSWORD: Final = "KOODRIVE_ARCHIVE_PASSWORD"
_REMOTE_TIMEOUT: Final = 60.0
_MAX_PASSWORD: Final = 4096
_T = kd.TaskType
#: The flags that only some task types take: (argument, flag, the task types that take it).
_ONLY_FOR: Final = (
    ("permanent", "--permanent", (_T.DELETE,)),
    ("list_only", "--list-only", (_T.DECOMPRESS,)),
    ("extract", "--extract", (_T.DECOMPRESS,)),
    ("password_stdin", "--password-stdin", (_T.DECOMPRESS,)),
    ("to", "--to", (_T.COPY, _T.MOVE, _T.RESTORE, _T.DECOMPRESS)),
)


def _check_flags(args: argparse.Namespace, task_type: int) -> None:
    for dest, flag, takers in _ONLY_FOR:
        if getattr(args, dest) and task_type not in takers:
            names = ", ".join(short_label(kd.TaskType, taker) for taker in takers)
            raise UsageError(
                f"{flag} is only for {names} jobs, not {short_label(kd.TaskType, task_type)}"
            )
    if args.list_only and args.extract:
        raise UsageError("--list-only lists the archive: it extracts nothing, drop --extract")


def _file_refs(raw: Sequence[str]) -> list[kd.FileRef]:
    refs = []
    for item in raw:
        file_id, _, path = item.partition(":")
        if not file_id:
            raise UsageError(f"bad file {item!r}: give FILE_ID or FILE_ID:/path")
        refs.append(kd.FileRef(file_id, path or None))
    return refs


def _action(args: argparse.Namespace, task_type: int) -> int | None:
    if args.action is not None:
        return int(args.action)
    actions = {
        _T.COPY: kd.ActionType.COPY,
        _T.MOVE: kd.ActionType.MOVE,
        _T.EMPTY_RECYCLE_BIN: kd.ActionType.EMPTY_RECYCLE_BIN,
        _T.DELETE: kd.ActionType.DELETE_PERMANENTLY if args.permanent
        else kd.ActionType.DELETE_TO_RECYCLE_BIN,
        _T.DECOMPRESS: kd.ActionType.LIST_ARCHIVE if args.list_only
        else kd.ActionType.EXTRACT_SELECTED if args.extract else kd.ActionType.EXTRACT_ALL,
    }
    action = actions.get(_T(task_type))
    return None if action is None else int(action)


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


async def cmd_create(args: argparse.Namespace, context: Context) -> int:
    """Create a batch job; print its id; with ``--wait``, wait for it."""
    out = context.out
    task_type = enum_arg(args.task_type, TASK_TYPES, "task type", "TYPE")
    _check_flags(args, task_type)
    files = _file_refs(args.files)
    if task_type == _T.DELETE and not args.permanent and args.action is None:
        missing = [ref.file_id for ref in files if ref.file_path is None]
        if missing:
            raise UsageError(
                f"delete to the recycle bin needs each file's path (FILE_ID:/path), missing for"
                f" {', '.join(missing)}; or pass --permanent"
            )
    poll = poll_policy(args.poll)
    password = _password(args) if task_type == _T.DECOMPRESS else None
    async with context.connect(args) as client:
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
        out.note(f"created job {job_id} ({label(kd.TaskType, task_type)})")
        code, _ = await wait_and_report(
            client, [job_id], out, timeout=args.timeout, cancel_on_exit=args.cancel_on_exit,
            poll=poll,
        )
    return code
