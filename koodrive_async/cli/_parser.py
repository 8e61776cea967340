"""The argparse command line of ``koodrive-async``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Final

import koodrive_async as kd

from . import _config
from ._download import DEFAULT_RETRIES
from ._exit import UsageError
from ._waits import DEFAULT_WAIT_TIMEOUT, WAIT_CONCURRENCY

__all__ = ["EPILOG", "build_parser", "check_text", "split_command"]

#: Lookups in flight at most for ``get``: the client's own default for ``get_jobs``.
GET_CONCURRENCY: Final = kd.DEFAULT_CONCURRENCY

EPILOG: Final = """\
configuration: --base-url/$KOODRIVE_BASE_URL, --user-id/$KOODRIVE_USER_ID, and
  --token/$KOODRIVE_TOKEN or --app-id/$KOODRIVE_APP_ID with --app-secret/$KOODRIVE_APP_SECRET;
  --allow-insecure-http/$KOODRIVE_ALLOW_INSECURE_HTTP=1 for a plain http:// service.
exit codes: 0 all ok; 1 API or transport error; 2 usage error; 3 timeout;
  4 a job ended canceled or with failed files; 130 interrupted (Ctrl-C).
logging: --verbose (or $KOODRIVE_LOG=debug) writes each HTTP attempt and each poll to stderr
  (loggers koodrive_async.http and koodrive_async.wait); $KOODRIVE_LOG=info: resumes and
  cancellations only; the default shows warnings. Secrets are never logged.
global options (--json, --no-progress, --verbose and the connection flags) go before or
  after the command: koodrive-async --json list, koodrive-async list --json.
job ids: JOB_ID - reads them from standard input, one per line (blank lines ignored):
  koodrive-async list --status processing --json | jq -r .taskId | koodrive-async wait -
try it with no configuration: koodrive-async demo
"""


#: Arguments whose value is a secret: a message names them, never shows them.
_SECRETS: Final = frozenset({"token", "app_secret"})


def check_text(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse an argument that is not valid UTF-8 before it reaches a request or a file name.

    Raises:
        UsageError: Naming the first such argument and, unless it is a secret, its bytes.
    """
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        values = getattr(args, action.dest, None)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str) or _config.is_utf8(value):
                continue
            name = "/".join(action.option_strings) or str(action.metavar or action.dest)
            shown = "" if action.dest in _SECRETS else f": {_raw(value)}"
            raise UsageError(f"{name} is not valid UTF-8{shown}")


def _raw(text: str) -> str:
    """The bytes the user typed, as a Python bytes literal (ASCII, safe on any terminal)."""
    try:
        return repr(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made (main(argv=...))
        return ascii(text)


def _seconds(text: str) -> float | None:
    """A timeout in seconds; 0 or "none" for no limit."""
    if text.strip().lower() in ("none", "0", "inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _output_flags(parser: argparse.ArgumentParser, *, json: bool = True) -> None:
    group = parser.add_argument_group("output (before or after the command)")
    if json:
        group.add_argument(
            "--json", action="store_true",
            help="print one JSON document per job per line on stdout, in the API's own names"
                 " and formats (machine-readable)",
        )
    group.add_argument(
        "--no-progress", action="store_true", help="draw no progress bars, even on a terminal"
    )
    group.add_argument(
        "-v", "--verbose", action="store_true",
        help="log each HTTP attempt and each poll to stderr (as $KOODRIVE_LOG=debug does)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    _output_flags(parser)
    _config.add_arguments(parser)


def _job_ids(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "job_ids", nargs="+", metavar="JOB_ID",
        help=f"the jobs to {verb}; - reads job ids from standard input, one per line",
    )


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
        help="give up waiting after this long, exit 3 (default %(default)g; 0: no limit)",
    )
    parser.add_argument(
        "--poll", type=float, default=None, metavar="SECONDS",
        help="poll every SECONDS, in every state (PollPolicy.fixed), instead of the adaptive"
             " schedule",
    )


def _cancel_on_exit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cancel-on-exit", action="store_true",
        help="cancel the jobs on the server when the wait times out or is interrupted",
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str,
    description: str | None = None, **options: object,
) -> argparse.ArgumentParser:
    """A command's parser: ``summary`` in the command list, ``description`` atop its help."""
    return commands.add_parser(
        name, help=summary, description=description or summary[0].upper() + summary[1:] + ".",
        **options,  # type: ignore[arg-type]
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser, and each command's own parser by name.

    Each command line is parsed by its command's parser with ``parse_intermixed_args``, so
    positionals and options mix freely (``create copy --src S f1 f2 --to /x``); global
    options given before the command are parsed there too (see ``split_command``). The
    emulator's options are its own (``emulator --help``), forwarded as they are.
    """
    parser = argparse.ArgumentParser(
        prog="koodrive-async",
        description="Look up, create, cancel, wait on and download KooDrive batch jobs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {kd.__version__}",
                        help="show the version and exit")
    _common(parser)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, title="commands",
        help="one of the commands below (COMMAND --help for its own options)",
    )

    get = _command(commands, "get", "show jobs' details",
                   "Show each job's details: type, status, progress, files, download URL.")
    _job_ids(get, "look up")
    get.add_argument("--concurrency", type=_positive_int, default=GET_CONCURRENCY,
                     help="lookups in flight at most (default %(default)s)")
    _common(get)

    wait = _command(
        commands, "wait", "wait for jobs with live progress bars, then summarise them",
        "Wait for jobs to end, with live progress bars on a terminal, then print how each"
        " ended: exit 0 when all are ok, 4 when one was canceled or has failed files.",
    )
    _job_ids(wait, "wait for")
    _waiting(wait)
    wait.add_argument("--concurrency", type=_positive_int, default=WAIT_CONCURRENCY,
                      help="requests in flight at most (default %(default)s)")
    _cancel_on_exit(wait)
    _common(wait)

    listing = _command(commands, "list", "list jobs (every page)",
                       "List jobs, every page, newest first as the service sends them.")
    listing.add_argument("--type", metavar="TYPE",
                         help="only this task type: copy, delete, move, restore, decompress,"
                              " package, empty-recycle-bin, or 1-7")
    listing.add_argument("--status", metavar="STATUS",
                         help="only this status: pending, processing, completed, canceled, or 0-3")
    listing.add_argument("--limit", type=_positive_int, metavar="N", help="show N jobs at most")
    _common(listing)

    create = _command(
        commands, "create", "create a batch job and print its id",
        "Create a batch job and print its id. FILE is FILE_ID or FILE_ID:/path/in/the/space."
        " A flag the task type does not take (copy --permanent) is refused.",
    )
    create.add_argument(
        "task_type", metavar="TYPE",
        help="copy, delete, move, restore, decompress, package, empty-recycle-bin (or 1-7)",
    )
    create.add_argument("files", nargs="*", metavar="FILE",
                        help="the files to act on: FILE_ID, or FILE_ID:/path for its path")
    create.add_argument("--src", required=True, metavar="SPACE", help="source space id")
    create.add_argument("--dst", metavar="SPACE", help="destination space id (default --src)")
    create.add_argument("--to", metavar="PATH",
                        help="copy, move, restore, decompress: the destination folder")
    create.add_argument("--permanent", action="store_true",
                        help="delete: permanently (202), not to the recycle bin (201)")
    create.add_argument("--list-only", action="store_true",
                        help="decompress: only list the archive (501)")
    create.add_argument("--extract", action="append", metavar="PATH",
                        help="decompress: extract only PATH from the archive (503); repeatable")
    create.add_argument("--password-stdin", action="store_true",
                        help="decompress: read the archive password from standard input"
                             " (or set $KOODRIVE_ARCHIVE_PASSWORD)")
    create.add_argument("--action", type=int, metavar="N", help="an explicit actionType")
    create.add_argument("--share-folder", metavar="ID",
                        help="act in a shared folder (x-hw-share-folder-id)")
    create.add_argument("--wait", action="store_true", help="wait for the job, as `wait` does")
    _waiting(create)
    _cancel_on_exit(create)
    _common(create)

    cancel = _command(commands, "cancel", "cancel jobs",
                      "Cancel pending or processing jobs, one request each.")
    _job_ids(cancel, "cancel")
    _common(cancel)

    fetch = _command(
        commands, "download", "download a package (waiting for its job if needed)",
        "Download a package-download job's zip, or any URL. The file is written to a partial"
        " file and renamed when complete; an interrupted download is resumed (Range) by"
        " running the same command again.",
    )
    fetch.add_argument("target", metavar="JOB_ID|URL",
                       help="a package-download job id, or the http(s) URL of a file")
    fetch.add_argument("-o", "--output", metavar="PATH",
                       help="file to write, a directory for the server's file name, or - for"
                            " standard output (default: the current directory)")
    fetch.add_argument("--force", action="store_true", help="overwrite an existing file")
    fetch.add_argument("--retries", type=_count, default=DEFAULT_RETRIES, metavar="N",
                       help="resume up to N times in this run after an interruption"
                            " (default %(default)s)")
    _waiting(fetch)
    _common(fetch)

    _command(
        commands, "emulator", "run the KooDrive emulator as a server (see: emulator --help)",
        "Serve the KooDrive batch-task API emulator until Ctrl-C.", add_help=False,
    )
    demo = _command(
        commands, "demo", "a tour on the embedded emulator: jobs, bars, summary, download",
        "A tour on an emulator in this process, no configuration needed: jobs of every type,"
        " the live bars, the summary, a package download checked.",
    )
    _output_flags(demo, json=False)
    return parser, dict(commands.choices)


def split_command(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[list[str], str | None, list[str]]:
    """``argv`` as (the options before the command, the command, the arguments after it).

    The command is the first argument that is neither an option of the top-level parser
    nor the value of one (``--base-url URL list``).
    """
    takes_value = {
        option for action in parser._actions  # argparse lists a parser's options nowhere else
        if action.nargs != 0 for option in action.option_strings
    }
    index = 0
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "-":
        if argv[index] == "--":
            index += 1
            break
        index += 2 if argv[index] in takes_value else 1
    if index >= len(argv):
        return list(argv), None, []
    return list(argv[:index]), argv[index], list(argv[index + 1:])
