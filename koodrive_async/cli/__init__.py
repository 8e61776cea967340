"""``koodrive-async``: the command line of koodrive_async.

Commands: get, wait, list, create, cancel, download, emulator, demo (``--help`` on each),
one table of them in ``_commands``; global options before or after the command.
It needs the ``cli`` extra (rich, for the bars): ``pip install 'koodrive-async[cli]'``.

Runs on uvloop when it is installed (the ``speedups`` extra); ``$KOODRIVE_EVENT_LOOP``
says otherwise (``asyncio``, or ``uvloop`` to require it).

Exit codes: 0 all ok; 1 API or transport error; 2 usage error; 3 timeout; 4 a job ended
canceled or with failed files; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ._exit import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_JOB,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
    UsageError,
)

if TYPE_CHECKING:
    from ._commands import Command

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_JOB",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "main",
]

PROG = "koodrive-async"
_MISSING_RICH = (
    "error: the koodrive-async command line needs rich: pip install 'koodrive-async[cli]'"
)


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the sys.stderr of the moment: while bars are drawn, rich's proxy of it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


#: What ``$KOODRIVE_LOG`` may say, and the level each means.
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}


def _log_level(verbose: bool, env: Mapping[str, str]) -> int:
    """DEBUG with ``--verbose``, else ``$KOODRIVE_LOG``'s level, else WARNING."""
    if verbose:
        return logging.DEBUG
    name = env.get("KOODRIVE_LOG", "").strip().lower()
    if not name:
        return logging.WARNING
    if name not in LOG_LEVELS:
        raise UsageError(f"KOODRIVE_LOG must be one of {', '.join(LOG_LEVELS)}, not {name!r}")
    return LOG_LEVELS[name]


#: What ``$KOODRIVE_EVENT_LOOP`` may say: ``auto`` (the default) is uvloop if installed.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
_MISSING_UVLOOP = (
    "KOODRIVE_EVENT_LOOP=uvloop, but uvloop is not installed: "
    "pip install 'koodrive-async[speedups]'"
)


def _loop_factory(env: Mapping[str, str]) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, as ``$KOODRIVE_EVENT_LOOP`` and what is installed say (None: asyncio's)."""
    name = env.get("KOODRIVE_EVENT_LOOP", "").strip().lower() or "auto"
    if name not in EVENT_LOOPS:
        raise UsageError(
            f"KOODRIVE_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}"
        )
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise UsageError(_MISSING_UVLOOP) from None
        return None
    return uvloop.new_event_loop


def _log_to_stderr(level: int = logging.WARNING) -> None:
    # The library logs a failed CancelJob-on-exit as a warning: the user must see that.
    handler = _StderrHandler()
    shape = "%(message)s" if level >= logging.WARNING else "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(f"{PROG}: {shape}"))
    logger = logging.getLogger("koodrive_async")
    logger.addHandler(handler)
    logger.setLevel(level)


async def _run(command: Command, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import koodrive_async as kd

    from ._config import Context

    loop = type(asyncio.get_running_loop())
    logging.getLogger("koodrive_async.cli").debug("event loop: %s.%s", loop.__module__,
                                                  loop.__qualname__)
    from ._output import Output

    out = Output(
        json=bool(getattr(args, "json", False)),
        fancy=_isatty(sys.stdout),
        bars=_isatty(sys.stderr) and not getattr(args, "no_progress", False),
    )
    assert command.run is not None
    try:
        return await command.run(args, Context(out, env))
    except CliError as exc:
        out.note(f"error: {exc}")
        return exc.code
    except kd.InvalidJobIdError as exc:  # refused by the client before any request
        out.note(f"error: invalid job id: {exc}")
        return EXIT_USAGE
    except kd.WaitTimeoutError as exc:
        out.note(f"error: {exc}")
        return EXIT_TIMEOUT
    except kd.KooDriveError as exc:
        out.note(f"error: {exc}")
        return EXIT_ERROR
    except ValueError as exc:  # refused by the library before any request
        out.note(f"error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # stdout closed by its reader: not an error, see main
    except OSError as exc:
        out.note(f"error: {exc}")
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it).

    Global options (``--json``, ``--no-progress``, the connection flags) may come before the
    command or after it: ``koodrive-async --json list`` is ``koodrive-async list --json``.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).
        env: The environment to read settings from (default ``os.environ``).
    """
    if importlib.util.find_spec("rich") is None:
        print(_MISSING_RICH, file=sys.stderr)
        return EXIT_ERROR
    from ._commands import COMMANDS
    from ._parser import build_parser, check_text, split_command

    parser, parsers = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    before, name, after = split_command(parser, argv)
    if name is None or name not in COMMANDS or not {"-h", "--help", "--version"}.isdisjoint(
        before
    ):
        parser.parse_args(argv)  # --help, --version, or a usage error: exits
        return EXIT_USAGE
    command = COMMANDS[name]
    if command.forward is not None:
        return command.forward([*before, *after], f"{PROG} {name}")
    args = parsers[name].parse_intermixed_args([*before, *after])
    args.command = name
    env = os.environ if env is None else env
    try:
        check_text(parsers[name], args)
        level = _log_level(bool(getattr(args, "verbose", False)), env)
        loop_factory = _loop_factory(env)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.code
    _log_to_stderr(level)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            code = runner.run(_run(command, args, env))
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen below
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head``): end quietly and successfully, as git does.

    The interpreter flushes stdout once more at exit; pointed at the null device, that flush
    cannot fail again with a message on stderr.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a real file: in-process callers
        return EXIT_OK
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return EXIT_OK
