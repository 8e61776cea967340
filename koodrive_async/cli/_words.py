"""How values are said to a person: enum names, outcome colours, one-line messages.

The leaf of the command line's output modules: the tables (``_render``) and the live bars
(``_live``) both build on it, and it imports neither.
"""

from __future__ import annotations

import enum
from typing import IO, TYPE_CHECKING, Final

from ._exit import Outcome

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["STYLES", "about", "console", "label", "one_line", "short_label"]

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
    """``package download`` for a known enum value, the raw value otherwise."""
    try:
        return enum_cls(value).name.lower().replace("_", " ")
    except ValueError:
        return "-" if value is None else str(value)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def about(job_id: str, error: BaseException) -> str:
    """What went wrong with one job, naming the job once: the error's own message when it
    already names it (``job 12 did not end within 5 s ...``), else ``job 12: <message>``."""
    text = one_line(str(error))
    return text if f"job {job_id}" in text else f"job {job_id}: {text}"


def console(stream: IO[str]) -> Console:
    """A rich console on ``stream``, without the highlighting of numbers and URLs."""
    from rich.console import Console

    return Console(file=stream, highlight=False)
