"""The argparse command line of ``koodrive-async``."""

from __future__ import annotations

import argparse
from typing import Final

from koodrive_async.fanout import DEFAULT_CONCURRENCY
from koodrive_async.waiter import DEFAULT_WAIT_TIMEOUT

from . import _config
from ._download import DEFAULT_RETRIES
from ._exit import UsageError

__all__ = ["EPILOG", "build_parser", "check_text"]

EPILOG: Final = """\
configuration: --base-url/$KOODRIVE_BASE_URL, --user-id/$KOODRIVE_USER_ID, and
  --token/$KOODRIVE_TOKEN or --app-id/$KOODRIVE_APP_ID with --app-secret/$KOODRIVE_APP_SECRET;
  --allow-insecure-http/$KOODRIVE_ALLOW_INSECURE_HTTP=1 for a plain http:// service.
exit codes: 0 all ok; 1 API or transport error; 2 usage error; 3 timeout;
  4 a job ended canceled or with failed files; 130 interrupted (Ctrl-C).
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


def _common(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON document per job per line on stdout (machine-readable)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="draw no progress bars, even on a terminal"
    )
    if config:
        _config.add_arguments(parser)


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
        help="give up waiting after this long, exit 3 (default %(default)g; 0: no limit)",
    )
    parser.add_argument(
        "--poll", type=float, default=None, metavar="SECONDS",
        help="poll every SECONDS instead of the adaptive schedule",
    )


def _cancel_on_exit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cancel-on-exit", action="store_true",
        help="cancel the jobs on the server when the wait times out or is interrupted",
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser, and each command's own parser by name.

    Each command line is parsed by its command's parser with ``parse_intermixed_args``, so
    positionals and options mix freely (``create copy --src S f1 f2 --to /x``). The emulator's
    options are its own (``emulator --help``), forwarded as they are.
    """
    from koodrive_async import __version__

    parser = argparse.ArgumentParser(
        prog="koodrive-async",
        description="Look up, create, cancel, wait on and download KooDrive batch jobs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    get = commands.add_parser("get", help="show jobs' details")
    get.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    get.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY,
                     help="lookups in flight at most (default %(default)s)")
    _common(get)

    wait = commands.add_parser(
        "wait", help="wait for jobs with live progress bars, then summarise them"
    )
    wait.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    _waiting(wait)
    wait.add_argument("--concurrency", type=_positive_int, default=16,
                      help="requests in flight at most (default %(default)s)")
    _cancel_on_exit(wait)
    _common(wait)

    listing = commands.add_parser("list", help="list jobs (every page)")
    listing.add_argument("--type", metavar="TYPE",
                         help="only this task type: copy, delete, move, restore, decompress,"
                              " package, empty-recycle-bin, or 1-7")
    listing.add_argument("--status", metavar="STATUS",
                         help="only this status: pending, processing, completed, canceled, or 0-3")
    listing.add_argument("--limit", type=_positive_int, metavar="N", help="show N jobs at most")
    _common(listing)

    create = commands.add_parser(
        "create", help="create a batch job and print its id",
        description="Create a batch job. FILE is FILE_ID or FILE_ID:/path/in/the/space.",
    )
    create.add_argument(
        "task_type", metavar="TYPE",
        help="copy, delete, move, restore, decompress, package, empty-recycle-bin (or 1-7)",
    )
    create.add_argument("files", nargs="*", metavar="FILE")
    create.add_argument("--src", required=True, metavar="SPACE", help="source space id")
    create.add_argument("--dst", metavar="SPACE", help="destination space id (default --src)")
    create.add_argument("--to", metavar="PATH", help="destination folder (copy, move, decompress)")
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

    cancel = commands.add_parser("cancel", help="cancel jobs")
    cancel.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    _common(cancel)

    fetch = commands.add_parser(
        "download", help="download a package (waiting for its job if needed)",
        description="Download a package-download job's zip, or any URL. The file is written"
                    " to a partial file and renamed when complete; an interrupted download is"
                    " resumed (Range) by running the same command again.",
    )
    fetch.add_argument("target", metavar="JOB_ID|URL")
    fetch.add_argument("-o", "--output", metavar="PATH",
                       help="file to write, or a directory for the server's file name"
                            " (default: the current directory)")
    fetch.add_argument("--force", action="store_true", help="overwrite an existing file")
    fetch.add_argument("--retries", type=_count, default=DEFAULT_RETRIES, metavar="N",
                       help="resume up to N times in this run after an interruption"
                            " (default %(default)s)")
    _waiting(fetch)
    _common(fetch)

    commands.add_parser(
        "emulator", add_help=False,
        help="run the KooDrive emulator as a server (see: emulator --help)",
    )
    demo = commands.add_parser(
        "demo", help="a tour on the embedded emulator: jobs, bars, summary, download"
    )
    demo.add_argument("--no-progress", action="store_true", help="draw no progress bars")
    return parser, dict(commands.choices)
