"""Serve the KooDrive emulator standalone until Ctrl-C (or SIGTERM).

Shared by ``python -m koodrive_async.testing`` and the ``koodrive-async emulator`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence

import yarl

from koodrive_async.testing._emulator import KooDriveEmulator
from koodrive_async.testing._jobs import JobDefaults

__all__ = ["main", "parser"]


def parser(prog: str = "python -m koodrive_async.testing") -> argparse.ArgumentParser:
    """The command line of the standalone emulator."""
    defaults = JobDefaults()
    result = argparse.ArgumentParser(
        prog=prog,
        description="Serve the KooDrive batch-task API emulator until Ctrl-C.",
    )
    result.add_argument("--host", default="127.0.0.1", help="interface (default %(default)s)")
    result.add_argument("--port", type=int, default=8080, help="port, 0 for any (%(default)s)")
    result.add_argument("--token", default="test-token", help="access token (%(default)s)")
    result.add_argument("--user-id", default="test-user", help="X-User-Id (%(default)s)")
    result.add_argument("--app-id", default="test-app", help="app id (%(default)s)")
    result.add_argument("--app-secret", default="test-secret", help="app secret (%(default)s)")
    result.add_argument(
        "--pending-for",
        type=float,
        default=defaults.pending_for,
        help="seconds a new job stays pending (%(default)s)",
    )
    result.add_argument(
        "--per-file-duration",
        type=float,
        default=defaults.per_file_duration,
        help="seconds of processing per file (%(default)s)",
    )
    result.add_argument(
        "--base-duration",
        type=float,
        default=defaults.base_duration,
        help="seconds of processing per job (%(default)s)",
    )
    return result


def _print_banner(emulator: KooDriveEmulator) -> None:
    # These are the emulator's own test credentials: printing them is the point.
    print(f"KooDrive emulator listening on {emulator.base_url}", flush=True)
    print(f"  base URL       {emulator.base_url}")
    print(f"  token          {emulator.token}  (Authorization: Bearer+{emulator.token})")
    print(f"  user id        {emulator.user_id}  (X-User-Id)")
    print(f"  app auth       app id {emulator.app_id}, app secret {emulator.app_secret}")
    print(
        f"  try            curl -H 'Authorization: Bearer+{emulator.token}'"
        f" -H 'X-User-Id: {emulator.user_id}' -H \"X-Date: $(date -u +%Y%m%dT%H%M%SZ)\""
        f" '{emulator.base_url}/koodrive/ose/v1/jobs?offset=0&limit=10'"
    )
    print("  or, for the koodrive-async command line:")
    print(f"    export KOODRIVE_BASE_URL={emulator.base_url}")
    print(f"    export KOODRIVE_USER_ID={emulator.user_id}")
    print(f"    export KOODRIVE_TOKEN={emulator.token}")
    if not _is_loopback(yarl.URL(emulator.base_url).host):
        print("    export KOODRIVE_ALLOW_INSECURE_HTTP=1")  # plain http off loopback
    print("Press Ctrl-C to stop.", flush=True)


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _serve(args: argparse.Namespace) -> None:
    emulator = KooDriveEmulator(
        host=args.host,
        port=args.port,
        token=args.token,
        user_id=args.user_id,
        app_id=args.app_id,
        app_secret=args.app_secret,
        job_defaults=JobDefaults(
            pending_for=args.pending_for,
            base_duration=args.base_duration,
            per_file_duration=args.per_file_duration,
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not every platform lets a loop handle signals; Ctrl-C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with emulator:
        _print_banner(emulator)
        await stop.wait()
    print("KooDrive emulator stopped.", flush=True)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Parse ``argv``, serve until interrupted, and return the exit status.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).
        prog: The program name shown in the help and in usage errors.
    """
    args = (parser(prog) if prog is not None else parser()).parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `koodrive-async emulator | head`: a closed stdout ends quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
