"""Exit codes, the errors the command line reports in one line, and how an outcome ends."""

from __future__ import annotations

import enum
from typing import Final

import koodrive_async as kd

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_JOB",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CliError",
    "Outcome",
    "UsageError",
    "classify",
    "exit_code",
    "worst",
]

#: Everything went well.
EXIT_OK: Final = 0
#: An API or transport error (or a download or file error).
EXIT_ERROR: Final = 1
#: A usage error: a bad flag, a missing setting, an invalid job id.
EXIT_USAGE: Final = 2
#: A wait ran out of time.
EXIT_TIMEOUT: Final = 3
#: A job ended canceled or with failed files.
EXIT_JOB: Final = 4
#: Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final = 130

# When jobs end differently, the exit code is the most serious one: an error first (the
# outcome is unknown), then a timeout (still unknown), then a known bad outcome.
_SEVERITY: Final = (EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_JOB, EXIT_OK)


class CliError(Exception):
    """An expected failure, reported as one line on stderr with its exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """A bad command line or configuration: exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Outcome(enum.StrEnum):
    """How one job's wait ended, as the summary and ``--json`` name it."""

    OK = "ok"
    PARTIALLY_FAILED = "partially failed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def exit_code(self) -> int:
        """The exit code this outcome calls for."""
        if self is Outcome.OK:
            return EXIT_OK
        if self is Outcome.TIMEOUT:
            return EXIT_TIMEOUT
        if self is Outcome.ERROR:
            return EXIT_ERROR
        return EXIT_JOB


def classify(outcome: kd.JobResult | kd.KooDriveError) -> Outcome:
    """The Outcome of one wait: a JobResult or the error that ended it."""
    if isinstance(outcome, kd.WaitEndedError):
        return Outcome.TIMEOUT
    if isinstance(outcome, kd.JobCanceledError | kd.JobFailedError):
        outcome = outcome.result
    if isinstance(outcome, kd.KooDriveError):
        return Outcome.ERROR
    if outcome.canceled:
        return Outcome.CANCELED
    if outcome.ok:
        return Outcome.OK
    return Outcome.FAILED if not outcome.succeeded else Outcome.PARTIALLY_FAILED


def exit_code(outcome: kd.JobResult | kd.KooDriveError) -> int:
    """The exit code one job's outcome calls for: a job id the client refused before any
    request is a usage error (2); otherwise as its Outcome says."""
    if isinstance(outcome, kd.InvalidJobIdError):
        return EXIT_USAGE
    return classify(outcome).exit_code


def worst(codes: list[int]) -> int:
    """The most serious of several exit codes (0 for none)."""
    for code in _SEVERITY:
        if code in codes:
            return code
    return max(codes, default=EXIT_OK)
