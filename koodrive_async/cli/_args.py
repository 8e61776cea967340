"""Reading the user's words: job ids (``-`` for standard input), enum names, ``--poll``.

Everything here is checked before any request, and a bad value is a UsageError (one line,
exit 2), never a value sent to the service to see what it makes of it.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping, Sequence
from typing import BinaryIO, Final

import koodrive_async as kd

from ._exit import UsageError

__all__ = [
    "STATUS_NAMES",
    "STDIN",
    "TASK_TYPES",
    "enum_arg",
    "invalid_id",
    "job_ids",
    "poll_policy",
]

#: The job id argument that stands for "the ids on standard input, one per line".
STDIN: Final = "-"
#: Task type names accepted by ``create`` and ``list --type``.
TASK_TYPES: Final = {
    "copy": kd.TaskType.COPY,
    "delete": kd.TaskType.DELETE,
    "move": kd.TaskType.MOVE,
    "restore": kd.TaskType.RESTORE,
    "decompress": kd.TaskType.DECOMPRESS,
    "package": kd.TaskType.PACKAGE_DOWNLOAD,
    "package-download": kd.TaskType.PACKAGE_DOWNLOAD,
    "empty-recycle-bin": kd.TaskType.EMPTY_RECYCLE_BIN,
}
#: Job status names accepted by ``list --status``.
STATUS_NAMES: Final = {status.name.lower(): status for status in kd.JobStatus}
# Job ids on standard input are read up to this many bytes (stdin may be endless).
_MAX_STDIN: Final = 16 * 1024 * 1024


def job_ids(raw: Sequence[str], *, stdin: BinaryIO | None = None) -> list[str]:
    """The job ids of the command line, in order, each once; ``-`` reads standard input.

    On standard input: one id per line, surrounding blanks dropped, blank lines ignored.
    The ids themselves are checked by the client (``kd.InvalidJobIdError``).

    Raises:
        UsageError: Standard input is closed, too long, not UTF-8, or holds no id.
    """
    ids: list[str] = []
    for item in raw:
        if item == STDIN:
            ids.extend(_ids_from_stdin(stdin))
        else:
            ids.append(item.strip())
    return list(dict.fromkeys(ids))


def _ids_from_stdin(stream: BinaryIO | None) -> list[str]:
    # Bytes, decoded here: the text layer's decoding depends on the locale.
    stream = stream if stream is not None else getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise UsageError("job id -: standard input is closed")
    data = stream.read(_MAX_STDIN + 1)
    if len(data) > _MAX_STDIN:
        raise UsageError(f"job id -: standard input is longer than {_MAX_STDIN} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"job id -: line {line} of standard input is not valid UTF-8") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise UsageError("job id -: no job ids on standard input")
    return ids


def invalid_id(error: kd.InvalidJobIdError) -> UsageError:
    """The usage error for a job id the client refused before sending anything."""
    return UsageError(f"invalid job id: {error}")


def enum_arg(value: str, names: Mapping[str, enum.IntEnum], what: str, flag: str) -> int:
    """A task type or status given by name (``package``, ``processing``) or known number.

    Raises:
        UsageError: Neither a name nor a number of the enum: it is not sent to see what the
            service makes of it.
    """
    key = value.strip().lower().replace("_", "-").replace(" ", "-")
    if key in names:
        return int(names[key])
    numbers = sorted({int(member) for member in names.values()})
    if key.isdigit() and int(key) in numbers:
        return int(key)
    raise UsageError(
        f"{flag}: unknown {what} {value!r}: use one of {', '.join(names)}"
        f" (or {numbers[0]}-{numbers[-1]})"
    )


def poll_policy(every: float | None) -> kd.PollPolicy | None:
    """``--poll SECONDS``: ``kd.PollPolicy.fixed(SECONDS)``; None, the adaptive default.

    Raises:
        UsageError: The interval is not finite and > 0, in PollPolicy.fixed's own words.
    """
    if every is None:
        return None
    try:
        return kd.PollPolicy.fixed(every)
    except ValueError as exc:
        raise UsageError(f"--poll {every:g}: {exc}") from None
