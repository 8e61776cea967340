"""The protocol core, with no I/O: paths, headers, envelope decoding, errors, retry rules.

Everything here is a plain function of its inputs (status, headers, body, clock readings), so
it is tested with literals and shared by the client and, where it helps, the emulator.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import attrs
import cattrs
import orjson
from cattrs.v import format_exception

from ._convert import _FAST, MODELS, make_converter, wire_name
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InvalidJobIdError,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    TransportError,
)
from .models import ActionType, FileRef, TaskType

_loads: Final = orjson.loads
_JSON_ERRORS: Final = (orjson.JSONDecodeError, UnicodeDecodeError)

T = TypeVar("T")

API_PREFIX: Final = "/koodrive/ose/v1/"
JOBS_PATH: Final = API_PREFIX + "jobs"
CANCEL_PATH: Final = API_PREFIX + "cancel"
#: Business code of "internal invoke failure": a transient server-side error.
TRANSIENT_CODE: Final = 13000201
#: HTTP statuses worth retrying: timeout, rate limit, server errors.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
#: HTTP statuses whose ``Retry-After`` is honoured (a pause asked with another is ignored).
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
#: The service rejects an X-Date older than this, in seconds.
X_DATE_WINDOW: Final = 15 * 60
TRACE_ID_LENGTH: Final = 58

# Path segments that name other endpoints: a job id equal to one would call them.
_RESERVED_IDS: Final = frozenset({"jobs", "cancel", ".", ".."})
_FORBIDDEN_IN_ID: Final = re.compile(r"[/?#%\\\s\x00-\x1f\x7f]|\.\.")
_MAX_ID_LENGTH: Final = 256

_converter = make_converter()


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


def job_path(job_id: str) -> str:
    """The GetJobDetail path of a validated job id."""
    if job_id.isascii() and job_id.isalnum():  # the usual decimal ids: nothing to quote
        return API_PREFIX + job_id
    return API_PREFIX + quote(job_id, safe="")


@functools.lru_cache(maxsize=4)
def _x_date_of_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def format_x_date(epoch_seconds: float) -> str:
    """``yyyyMMdd'T'HHmmss'Z'`` in UTC, truncated to the second (never rounded up)."""
    # Formatting costs microseconds and every request of a second shares the result.
    return _x_date_of_second(math.floor(epoch_seconds))


def parse_x_date(value: str) -> float | None:
    """Epoch seconds of an ``X-Date`` value, or None when malformed."""
    try:
        parsed = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None
    return parsed.timestamp()


def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP date (``Date``, ``Retry-After``), or None when unusable."""
    if not value or len(value) > 64:
        return None
    return _parse_http_date(value)


# Every answer carries a Date: the answers of one second share one parse (16 us each).
@functools.lru_cache(maxsize=8)
def _parse_http_date(value: str) -> float | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return None


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


class _TraceIds:
    """Trace ids: a random 128-bit prefix for this process, then a counter.

    Unique without a system call per request (os.urandom costs 2 us under load); the prefix
    is drawn again in a forked child, which would otherwise repeat its parent's ids.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(16).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(4)))

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):026x}"


#: A fresh 58-character ``X-Traceid`` (lower-case hex: letters and digits) at each call.
new_trace_id: Final = _TraceIds()


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
    """True for a transient failure worth retrying: no answer, 408, 429, 5xx, code 13000201."""
    if isinstance(error, TransportError):
        return True
    if isinstance(error, APIError):
        if 300 <= error.http_status < 400:  # a redirect is never followed, nor retried
            return False
        return error.http_status in RETRYABLE_STATUSES or error.code == TRANSIENT_CODE
    return False


def _normalise_code(code: object) -> int | str | None:
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str):
        text = code.strip()
        return int(text) if text.isascii() and text.lstrip("-").isdigit() else text[:64]
    return None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def api_error(
    http_status: int,
    body: bytes,
    *,
    trace_id: str | None,
    retry_after: float | None,
) -> APIError:
    """The error for an answer that is not a success, built from its status and body.

    The body may be ``{code, msg}``, the older ``{error_code, error_msg}``, or no JSON at all
    (a gateway page).
    """
    code: int | str | None = None
    msg: str | None = None
    try:
        document = _loads(body) if body else None
    except _JSON_ERRORS:
        document = None
    if isinstance(document, dict):
        code = _normalise_code(document.get("code", document.get("error_code")))
        raw_msg = document.get("msg", document.get("error_msg"))
        msg = raw_msg[:500] if isinstance(raw_msg, str) else None
    elif body:
        msg = _snippet(body) or None
    message = f"HTTP {http_status}"
    if code is not None:
        message += f", code {code}"
    if msg:
        message += f": {msg}"
    if trace_id:
        message += f" (trace id {trace_id})"
    return error_class(http_status, code)(
        message,
        http_status=http_status,
        code=code,
        msg=msg,
        trace_id=trace_id,
        retry_after=retry_after,
    )


def decode_envelope(
    http_status: int,
    body: bytes,
    *,
    trace_id: str | None = None,
    retry_after: float | None = None,
) -> Any:
    """Return the envelope's ``data`` of a successful answer; raise the right error otherwise.

    Raises:
        APIError: A non-2xx status, or a 2xx whose ``code`` is not 0 / "0".
        ResponseDecodeError: A 2xx body that is not a JSON object with a ``code``.
    """
    if not 200 <= http_status < 300:
        raise api_error(http_status, body, trace_id=trace_id, retry_after=retry_after)
    try:
        document = _loads(body)
    except _JSON_ERRORS as exc:
        raise ResponseDecodeError(
            f"HTTP {http_status} answer is not JSON ({_snippet(body)[:80]!r}): {exc}"
        ) from None
    if not isinstance(document, dict):
        raise ResponseDecodeError(
            f"HTTP {http_status} answer is not a JSON object but {type(document).__name__}"
        )
    if "code" not in document and "error_code" not in document:
        raise ResponseDecodeError(f"HTTP {http_status} answer has no 'code'")
    code = document.get("code", document.get("error_code"))
    if code != 0 and code != "0":
        raise api_error(http_status, body, trace_id=trace_id, retry_after=retry_after)
    return document.get("data")


# Attribute name -> wire name over every model, for error paths in the wire's own words.
_WIRE_NAMES: Final = {
    field.name: wire_name(cls, field.name) for cls in MODELS for field in attrs.fields(cls)
}
_PATH_PART: Final = re.compile(r"\.([a-z_]+)")


def _wire_path(message: str) -> str:
    return _PATH_PART.sub(lambda m: "." + _WIRE_NAMES.get(m.group(1), m.group(1)), message)


def _format(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def structure(data: Any, cls: type[T], *, what: str) -> T:
    """Structure ``data`` into ``cls``; raise ResponseDecodeError naming each bad path."""
    fast = _FAST.get(cls)
    if fast is not None:
        try:
            return fast(data)  # type: ignore[no-any-return]
        except Exception:  # the converter below decides, and names the problem
            pass
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        problems = tuple(_wire_path(p) for p in cattrs.transform_error(exc, "$.data", _format))
        shown = "; ".join(problems[:5])
        if len(problems) > 5:
            shown += f" (+{len(problems) - 5} more)"
        raise ResponseDecodeError(
            f"{what}: unexpected document: {shown}", problems=problems
        ) from None


def structure_list(data: Any, cls: type[T], *, what: str) -> list[T]:
    """Structure a JSON array of ``cls`` (a missing array is empty)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ResponseDecodeError(f"{what}: expected a list in $.data, got {type(data).__name__}")
    return [structure(item, cls, what=what) for item in data]


def _required_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required and must be a non-empty string, got {value!r:.60}")
    return value


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
            entry["filePath"] = ref.file_path
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
        task_info["uncompressFilePaths"] = list(uncompress_file_paths)
    body: dict[str, Any] = {
        "taskType": int(task_type),
        "taskInfo": task_info,
        "dstContainerId": _required_str("dst_container_id", dst_container_id),
    }
    if action_type is not None:
        body["actionType"] = int(action_type)
    if password is not None:
        body["password"] = password
    return body


def decode_job_id(data: Any) -> str:
    """CreateJob's ``data``: the new job id, a non-empty string (or a number)."""
    if isinstance(data, int) and not isinstance(data, bool):
        return str(data)
    if isinstance(data, str) and data:
        return data
    raise ResponseDecodeError(f"CreateJob: expected the new job id in $.data, got {data!r:.60}")


def server_clock_offset(date_header: str | None, local_now: float) -> float | None:
    """Seconds to add to the local wall clock to get the server's, from a ``Date`` header.

    ``Date`` has one-second resolution and is stamped before the answer travels, so the
    estimate errs towards the past: exactly the side on which ``X-Date`` must err.
    """
    server_now = parse_http_date(date_header)
    return None if server_now is None else server_now - local_now


def x_date_rejected_for_clock(sent_x_date: str | None, date_header: str | None) -> bool:
    """True when a 401 is explained by our clock: the X-Date we sent was ahead of the
    server's ``Date``, or older than the 15-minute window."""
    sent = parse_x_date(sent_x_date) if sent_x_date else None
    server_now = parse_http_date(date_header)
    if sent is None or server_now is None:
        return False
    return sent > server_now or server_now - sent > X_DATE_WINDOW


__all__ = [
    "API_PREFIX",
    "CANCEL_PATH",
    "JOBS_PATH",
    "RETRY_AFTER_STATUSES",
    "api_error",
    "create_job_body",
    "decode_envelope",
    "decode_job_id",
    "error_class",
    "format_x_date",
    "is_retryable",
    "job_path",
    "new_trace_id",
    "parse_http_date",
    "parse_retry_after",
    "parse_x_date",
    "server_clock_offset",
    "structure",
    "structure_list",
    "validate_job_id",
    "x_date_rejected_for_clock",
]
