"""The protocol core, with no I/O: paths, job ids, the CreateJob body, status -> error class,
Retry-After, and which failures are worth retrying.

Everything here is a plain function of its inputs, tested with literals. Beside it, with no
I/O either: ``_stamps`` (X-Date, X-Traceid, Date and the clock offset), ``_envelope`` (the
answer's envelope and the errors it becomes), ``_convert`` (decoding ``data`` into models)
and ``_redact`` (secrets kept out of quoted server text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import quote

from ._stamps import parse_http_date
from .config import check_count, check_header_value, enum_value
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InvalidJobIdError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .models import ActionType, FileRef, JobStatus, TaskType

API_PREFIX: Final = "/koodrive/ose/v1/"
JOBS_PATH: Final = API_PREFIX + "jobs"
CANCEL_PATH: Final = API_PREFIX + "cancel"
#: Business code of "internal invoke failure": a transient server-side error.
TRANSIENT_CODE: Final = 13000201
#: HTTP statuses worth retrying besides the 5xx: request timeout, rate limit.
RETRYABLE_STATUSES: Final = frozenset({408, 429})
#: The 5xx that say the request can never work (not implemented, HTTP version refused):
#: every other server error (a gateway's 520 to 524, a 507) may pass, and is retried.
PERMANENT_SERVER_STATUSES: Final = frozenset({501, 505})
#: HTTP statuses whose ``Retry-After`` is honoured (a pause asked with another is ignored).
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})

# Path segments that name other endpoints: a job id equal to one would call them.
_RESERVED_IDS: Final = frozenset({"jobs", "cancel", ".", ".."})
_FORBIDDEN_IN_ID: Final = re.compile(r"[/?#%\\\s\x00-\x1f\x7f]|\.\.")
_MAX_ID_LENGTH: Final = 256

def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if it is safe to put in the path; raise ValueError otherwise.

    A job id must be a non-empty string without ``/``, ``?``, ``#``, ``%``, ``\\``, ``..``,
    whitespace or control characters, and must not name another endpoint (``jobs``,
    ``cancel``), so that no id can change which endpoint a request reaches.
    """
    if not isinstance(job_id, str):
        raise InvalidJobIdError(f"job id must be a str, got {type(job_id).__name__}")
    if job_id.isascii() and job_id.isalnum() and len(job_id) <= _MAX_ID_LENGTH:
        if job_id in _RESERVED_IDS:  # the usual decimal ids take this short way
            raise InvalidJobIdError(f"job id {job_id!r} would name another endpoint")
        return job_id
    if not job_id:
        raise InvalidJobIdError("job id is empty")
    if len(job_id) > _MAX_ID_LENGTH:
        raise InvalidJobIdError(f"job id is longer than {_MAX_ID_LENGTH} characters")
    if job_id in _RESERVED_IDS:
        raise InvalidJobIdError(f"job id {job_id!r} would name another endpoint")
    match = _FORBIDDEN_IN_ID.search(job_id)
    if match is not None:
        raise InvalidJobIdError(f"job id {job_id[:64]!r} contains a forbidden {match.group()!r}")
    return job_id


def job_path(job_id: object) -> str:
    """The GetJobDetail path of a job id, checked as ``validate_job_id`` checks it."""
    if (type(job_id) is str and job_id.isascii() and job_id.isalnum()
            and len(job_id) <= _MAX_ID_LENGTH and job_id not in _RESERVED_IDS):
        return API_PREFIX + job_id  # the usual decimal ids: checked, and nothing to quote
    return API_PREFIX + quote(validate_job_id(job_id), safe="")


def parse_retry_after(value: str | None, *, now: float, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    Returns None when the value is absent or unusable; a negative or past value is 0; the
    result never exceeds ``cap``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    try:
        seconds = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        seconds = when - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def error_class(http_status: int, code: int | str | None) -> type[APIError]:
    """The APIError subclass for an answer's HTTP status and business code."""
    if http_status == 400:
        return BadRequestError
    if http_status == 401:
        return AuthenticationError
    if http_status == 404:
        return NotFoundError
    if http_status == 429:
        return RateLimitError
    if http_status >= 500 or (code == TRANSIENT_CODE and not 300 <= http_status < 400):
        return ServerError
    return APIError


def is_retryable(error: BaseException) -> bool:
    """True for a transient failure worth retrying: no answer, 408, 429, a 5xx but 501 and
    505, code 13000201."""
    if isinstance(error, TransportError):
        return True
    if isinstance(error, APIError):
        if 300 <= error.http_status < 400:  # a redirect is never followed, nor retried
            return False
        status = error.http_status
        return (status in RETRYABLE_STATUSES or error.code == TRANSIENT_CODE
                or (500 <= status <= 599 and status not in PERMANENT_SERVER_STATUSES))
    return False


def _required_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required and must be a non-empty string, got {value!r:.60}")
    return _text(name, value)


def _text(name: str, value: str) -> str:
    """``value`` if it can be sent as JSON: valid Unicode (no lone surrogate, such as a
    file name mis-decoded from bytes), else a ValueError naming ``name``."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{name} is not valid Unicode: a lone surrogate at index {exc.start}"
                " (a name decoded from bytes with errors='surrogateescape'?)"
            ) from None
    return value


def create_job_request(
    task_type: object,
    *,
    src_container_id: str,
    dst_container_id: str,
    files: Iterable[FileRef | str],
    action_type: object,
    new_file_path: str | None,
    uncompress_file_paths: Sequence[str] | None,
    password: str | None,
    share_folder_id: str | None,
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """CreateJob's JSON body and extra headers, from the caller's words (enum names taken).

    Raises:
        ValueError, TypeError: Naming the argument that is missing or malformed.
    """
    body = create_job_body(
        enum_value("task_type", TaskType, task_type),
        src_container_id=src_container_id, dst_container_id=dst_container_id, files=files,
        action_type=(
            None if action_type is None else enum_value("action_type", ActionType, action_type)
        ),
        new_file_path=new_file_path, uncompress_file_paths=uncompress_file_paths,
        password=password,
    )
    if share_folder_id is None:
        return body, None
    return body, {"x-hw-share-folder-id": check_header_value("share_folder_id", share_folder_id)}


#: The most jobs one GetJobList page holds.
MAX_PAGE: Final = 100
#: Pages ``list_jobs`` requests at most, by default.
DEFAULT_MAX_PAGES: Final = 10_000


def list_filters(
    *, task_type: object, status: object, page_size: int, offset: int, max_pages: int
) -> list[tuple[str, str]]:
    """GetJobList's filter parameters, from the caller's words; the paging checked.

    Raises:
        ValueError, TypeError: Naming the argument that is malformed.
    """
    for name, value in (("page_size", page_size), ("offset", offset), ("max_pages", max_pages)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be 1 to {MAX_PAGE}, got {page_size!r}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset!r}")
    check_count("max_pages", max_pages)
    filters: list[tuple[str, str]] = []
    if task_type is not None:
        filters.append(("type", str(int(enum_value("task_type", TaskType, task_type)))))
    if status is not None:
        filters.append(("status", str(int(enum_value("status", JobStatus, status)))))
    return filters


def create_job_body(
    task_type: int,
    *,
    src_container_id: str,
    dst_container_id: str,
    files: Iterable[FileRef | str],
    action_type: int | None,
    new_file_path: str | None,
    uncompress_file_paths: Sequence[str] | None,
    password: str | None,
) -> dict[str, Any]:
    """CreateJob's JSON body, checked before anything is sent.

    Raises:
        ValueError: Naming the argument that is missing or malformed.
    """
    if isinstance(task_type, bool) or not isinstance(task_type, int):
        raise ValueError(f"task_type must be a TaskType or an int, got {task_type!r:.60}")
    if action_type is not None and (
        isinstance(action_type, bool) or not isinstance(action_type, int)
    ):
        raise ValueError(f"action_type must be an ActionType or an int, got {action_type!r:.60}")
    if isinstance(files, str | bytes):
        raise ValueError("files must be a sequence of FileRef or file ids, not one string")
    file_info: list[dict[str, str]] = []
    for index, item in enumerate(files):
        ref = FileRef(item) if isinstance(item, str) else item
        if not isinstance(ref, FileRef):
            raise ValueError(f"files[{index}] must be a FileRef or a file id, got {item!r:.60}")
        entry = {"fileId": _required_str(f"files[{index}].file_id", ref.file_id)}
        if ref.file_path is not None:
            entry["filePath"] = _text(f"files[{index}].file_path", ref.file_path)
        elif action_type == ActionType.DELETE_TO_RECYCLE_BIN:
            raise ValueError(
                f"files[{index}].file_path is required to delete to the recycle bin"
                " (action 201), or restoring it later breaks"
            )
        file_info.append(entry)
    if not file_info and task_type != TaskType.EMPTY_RECYCLE_BIN:
        raise ValueError("files is empty: a batch job needs at least one file")
    task_info: dict[str, Any] = {
        "fileInfo": file_info,
        "srcContainerId": _required_str("src_container_id", src_container_id),
    }
    if new_file_path is not None:
        task_info["newFilePath"] = _required_str("new_file_path", new_file_path)
    if uncompress_file_paths is not None:
        if isinstance(uncompress_file_paths, str) or not all(
            isinstance(p, str) and p for p in uncompress_file_paths
        ):
            raise ValueError("uncompress_file_paths must be a sequence of non-empty strings")
        task_info["uncompressFilePaths"] = [
            _text(f"uncompress_file_paths[{i}]", p) for i, p in enumerate(uncompress_file_paths)
        ]
    body: dict[str, Any] = {
        "taskType": int(task_type),
        "taskInfo": task_info,
        "dstContainerId": _required_str("dst_container_id", dst_container_id),
    }
    if action_type is not None:
        body["actionType"] = int(action_type)
    if password is not None:
        body["password"] = _text("password", password)
    return body


__all__ = [
    "API_PREFIX",
    "CANCEL_PATH",
    "DEFAULT_MAX_PAGES",
    "JOBS_PATH",
    "MAX_PAGE",
    "PERMANENT_SERVER_STATUSES",
    "RETRYABLE_STATUSES",
    "RETRY_AFTER_STATUSES",
    "TRANSIENT_CODE",
    "create_job_body",
    "create_job_request",
    "error_class",
    "is_retryable",
    "job_path",
    "list_filters",
    "parse_retry_after",
    "validate_job_id",
]
