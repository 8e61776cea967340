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
from .auth import AppAuth, TokenAuth
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
from .models import ActionType, FileRef, JobDetail, TaskType

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


#: The epoch seconds an ``X-Date`` can spell with a four-digit year: 1970-01-01T00:00:00Z to
#: 9999-12-31T23:59:59Z.
_X_DATE_FIRST: Final = 0
_X_DATE_LAST: Final = 253_402_300_799


@functools.lru_cache(maxsize=4)
def _x_date_of_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def format_x_date(epoch_seconds: float) -> str:
    """``yyyyMMdd'T'HHmmss'Z'`` in UTC, truncated to the second (never rounded up).

    Never raises and always 16 characters: a moment outside 1970..9999 (a broken clock) is
    clamped to the nearest one the format can spell, and NaN is taken as 1970.
    """
    if not _X_DATE_FIRST <= epoch_seconds <= _X_DATE_LAST:  # NaN included
        epoch_seconds = _X_DATE_LAST if epoch_seconds > _X_DATE_LAST else _X_DATE_FIRST
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


#: The envelope's one success code. The tables call ``code`` a string and the examples send
#: a number, so the JSON integer 0 and the string "0" both mean success; nothing else does
#: (not ``false``, ``0.0``, ``0e0``, ``"00"`` nor ``" 0"``).
SUCCESS_CODE: Final = 0
_MAX_CODE_CHARS: Final = 64
_CANONICAL_INT: Final = re.compile(r"0|-?[1-9][0-9]{0,17}")


def is_success_code(code: object) -> bool:
    """True exactly for the envelope codes that mean success: the int 0 (not a bool) or "0"."""
    return (type(code) is int and code == SUCCESS_CODE) or code == "0"


def business_code(code: object, secrets: Sequence[Secret] = ()) -> int | str | None:
    """The server's ``code`` as ``APIError.code`` keeps it: faithfully, never "fixed".

    A JSON integer stays that integer; a string spelling an integer canonically
    (``"13000201"``) becomes it, so a code compares equal however the server sent it; every
    other string stays as sent (``"00"`` is ``"00"``, ``"APIGW.0301"``). Any other JSON value
    (``false``, ``0.0``, a list) is kept as its JSON text (``"false"``, ``"0.0"``), so it can
    never pass for 0. None for no code. Strings are redacted of ``secrets`` and capped.
    """
    if code is None:
        return None
    if type(code) is int:
        return code
    if isinstance(code, str):
        if _CANONICAL_INT.fullmatch(code):
            return int(code)
        text = code
    else:
        try:
            text = orjson.dumps(code).decode()
        except (TypeError, orjson.JSONEncodeError):  # pragma: no cover - decoded JSON
            text = type(code).__name__
    return redact(text, secrets)[:_MAX_CODE_CHARS]


REDACTED: Final = "<redacted>"
#: A secret is a string, or a pattern for one not known exactly (see ``secrets_of``).
Secret = str | re.Pattern[str]
#: What an HMAC-SHA256 signature looks like: 64 hex digits.
SIGNATURE_SHAPE: Final = re.compile(r"[0-9a-fA-F]{64}")


def redact(text: str, secrets: Sequence[Secret]) -> str:
    """``text`` with every occurrence of each secret replaced by ``<redacted>``.

    ``secrets`` should come from ``secrets_of`` / ``secrets_to_redact`` (longest first, so a
    token inside its Authorization value goes with it).
    """
    for secret in secrets:
        if isinstance(secret, str):
            if secret and secret in text:
                text = text.replace(secret, REDACTED)
        else:
            text = secret.sub(REDACTED, text)
    return text


#: Schemes an Authorization token value may start with (``auth`` adds them, or the token
#: came with one).
#: Shorter strings are not redacted: real tokens and signatures are far longer, and
#: redacting a test token such as "t" would mangle every message.
MIN_SECRET_LENGTH: Final = 6
_TOKEN_SCHEMES: Final = ("Bearer+", "Bearer ", "bearer+", "bearer ", "AT ", "Basic ")
_SIGNATURE_FIELD: Final = "Signature="


def secrets_to_redact(
    authorization: str | None,
    *,
    token_prefix: str | None = None,
    also: Iterable[str | None] = (),
) -> tuple[str, ...]:
    """What the client must never quote back from a server: longest first, no duplicates,
    none shorter than MIN_SECRET_LENGTH.

    The ``Authorization`` value sent, the credential inside it (the token without its
    scheme or ``token_prefix``, and its percent-encoded form; or an HMAC ``Signature``), and
    ``also`` (an app secret, a static token).
    """
    found: list[str] = []
    if authorization:
        value = authorization.strip()
        found.append(value)
        if _SIGNATURE_FIELD in value:
            found.append(value.rsplit(_SIGNATURE_FIELD, 1)[1].split(",", 1)[0].strip())
        else:
            for scheme in (token_prefix, *_TOKEN_SCHEMES):
                if scheme and value.startswith(scheme) and len(value) > len(scheme):
                    bare = value[len(scheme):].strip()
                    found += (bare, quote(bare, safe=""))
                    break
    found += (value.strip() for value in also if value)
    unique = {s for s in found if len(s) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=lambda s: (-len(s), s)))


def secrets_of(
    auth: TokenAuth | AppAuth | None, authorization: str | None
) -> tuple[Secret, ...]:
    """The secrets of a client with ``auth`` that sent ``authorization`` (None: unknown).

    With app auth and no known Authorization, the signature sent is not known: anything
    shaped like one (64 hex digits) is taken for it. Worked out only when an error quotes
    server text: about 2 us, too much for every answer.
    """
    if isinstance(auth, AppAuth):
        found = secrets_to_redact(authorization, also=(auth.app_secret,))
        return found if authorization else (*found, SIGNATURE_SHAPE)
    if isinstance(auth, TokenAuth):
        static = auth.token if isinstance(auth.token, str) else None
        return secrets_to_redact(
            authorization, token_prefix=auth.prefix,
            also=(static, auth.header_value(static) if static else None),
        )
    return secrets_to_redact(authorization)


_SNIPPET_WINDOW: Final = 4096


def _snippet(body: bytes, secrets: Sequence[Secret] = ()) -> str:
    """The start of a body for a message: whitespace collapsed, secrets redacted, 200 chars.

    Redacted before it is cut, and a window that cuts the body also loses its last
    characters, as many as the longest secret has: no part of a secret survives a cut.
    """
    text = body[:_SNIPPET_WINDOW].decode("utf-8", "replace")
    if secrets and len(body) > _SNIPPET_WINDOW:
        longest = max(len(s) if isinstance(s, str) else 64 for s in secrets)
        text = text[: max(len(text) - longest, 0)]
    return " ".join(redact(text, secrets).split())[:200]


def api_error(
    http_status: int,
    body: bytes,
    *,
    trace_id: str | None,
    retry_after: float | None,
    secrets: Sequence[Secret] = (),
) -> APIError:
    """The error for an answer that is not a success, built from its status and body.

    The body may be ``{code, msg}``, the older ``{error_code, error_msg}``, or no JSON at all
    (a gateway page). Every text taken from the body (``msg``, ``code``, a snippet) has the
    ``secrets`` (see ``secrets_to_redact``) replaced by ``<redacted>`` before it is cut.
    """
    code: int | str | None = None
    msg: str | None = None
    try:
        document = _loads(body) if body else None
    except _JSON_ERRORS:
        document = None
    if isinstance(document, dict):
        code = business_code(document.get("code", document.get("error_code")), secrets)
        raw_msg = document.get("msg", document.get("error_msg"))
        msg = redact(raw_msg, secrets)[:500] if isinstance(raw_msg, str) else None
    elif body:
        msg = _snippet(body, secrets) or None
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
    authorization: str | None = None,
    auth: TokenAuth | AppAuth | None = None,
) -> Any:
    """Return the envelope's ``data`` of a successful answer; raise the right error otherwise.

    Success is exactly ``is_success_code``. An error quoting server text has the client's
    secrets redacted (``secrets_of(auth, authorization)``: the Authorization value sent and
    what is inside it); they are worked out only then, never on success.

    Raises:
        APIError: A non-2xx status, or a 2xx whose ``code`` is not 0 / "0".
        ResponseDecodeError: A 2xx body that is not a JSON object with a ``code``.
    """
    if not 200 <= http_status < 300:
        raise api_error(
            http_status, body, trace_id=trace_id, retry_after=retry_after,
            secrets=secrets_of(auth, authorization),
        )
    problem: str | None = None
    try:
        document = _loads(body)
    except _JSON_ERRORS as exc:
        # Raised outside this block: the JSON error keeps the whole body (``.doc``), and
        # it must not ride along as ``__context__``.
        problem = str(exc)
    if problem is not None:
        snippet = _snippet(body, secrets_of(auth, authorization))[:80]
        raise ResponseDecodeError(f"HTTP {http_status} answer is not JSON ({snippet!r}): {problem}")
    if not isinstance(document, dict):
        raise ResponseDecodeError(
            f"HTTP {http_status} answer is not a JSON object but {type(document).__name__}"
        )
    if "code" not in document and "error_code" not in document:
        raise ResponseDecodeError(f"HTTP {http_status} answer has no 'code'")
    if not is_success_code(document.get("code", document.get("error_code"))):
        raise api_error(
            http_status, body, trace_id=trace_id, retry_after=retry_after,
            secrets=secrets_of(auth, authorization),
        )
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


_STRUCTURE_ERRORS: Final = (cattrs.BaseValidationError, ValueError, TypeError)


def _redact_document(data: Any, secrets: Sequence[Secret]) -> Any:
    """A copy of a decoded JSON document with the secrets redacted from every string."""
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, list):
        return [_redact_document(item, secrets) for item in data]
    if isinstance(data, dict):
        return {
            redact(key, secrets) if isinstance(key, str) else key: _redact_document(v, secrets)
            for key, v in data.items()
        }
    return data


def structure(data: Any, cls: type[T], *, what: str, secrets: Sequence[Secret] = ()) -> T:
    """Structure ``data`` into ``cls``; raise ResponseDecodeError naming each bad path.

    The problems quote the values they found (cut short): with ``secrets``, they are found
    again in a redacted copy of ``data``, so no part of a secret can be quoted.
    """
    fast = _FAST.get(cls)
    if fast is not None:
        try:
            return fast(data)  # type: ignore[no-any-return]
        except Exception:  # the converter below decides, and names the problem
            pass
    try:
        return _converter.structure(data, cls)
    except _STRUCTURE_ERRORS as exc:
        problems = _problems(exc)
    if secrets:
        # Found again in a redacted copy: the converter cuts the values it quotes, so
        # redacting its messages could leave the start of a secret. (Raised outside the
        # except blocks, so no unredacted exception rides along as ``__context__``.)
        try:
            _converter.structure(_redact_document(data, secrets), cls)
        except _STRUCTURE_ERRORS as redacted_exc:
            problems = _problems(redacted_exc)
        problems = tuple(redact(p, secrets) for p in problems)
    shown = "; ".join(problems[:5])
    if len(problems) > 5:
        shown += f" (+{len(problems) - 5} more)"
    raise ResponseDecodeError(f"{what}: unexpected document: {shown}", problems=problems)


def _problems(exc: BaseException) -> tuple[str, ...]:
    return tuple(_wire_path(p) for p in cattrs.transform_error(exc, "$.data", _format))


def structure_list(
    data: Any, cls: type[T], *, what: str, secrets: Sequence[Secret] = ()
) -> list[T]:
    """Structure a JSON array of ``cls`` (a missing array is empty)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ResponseDecodeError(f"{what}: expected a list in $.data, got {type(data).__name__}")
    return [structure(item, cls, what=what, secrets=secrets) for item in data]


def _quote_id(value: str, secrets: Sequence[Secret]) -> str:
    text = redact(value, secrets)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def job_detail(
    data: Any,
    job_id: str,
    *,
    authorization: str | None = None,
    auth: TokenAuth | AppAuth | None = None,
) -> JobDetail:
    """GetJobDetail's ``data`` for ``job_id``: a JobDetail about that job and no other.

    A missing ``jobInfo.taskId`` is accepted (every field is optional in practice); a
    ``taskId`` naming another job is refused, since believing it would report another
    job's status, files and download URL as this one's (a cache or a proxy mixing answers).
    Problems quote server values with ``secrets_of(auth, authorization)`` redacted.

    Raises:
        ResponseDecodeError: ``data`` is not an object, does not structure, or is about
            another job (the message names both ids).
    """
    what = f"GetJobDetail {job_id}"
    if not isinstance(data, dict):
        raise ResponseDecodeError(
            f"{what}: expected an object in $.data, got {type(data).__name__}"
        )
    try:
        detail: JobDetail | None = structure(data, JobDetail, what=what)
    except ResponseDecodeError:
        detail = None
    if detail is None:
        # Only now are the secrets worked out: the same problems, found again redacted.
        structure(data, JobDetail, what=what, secrets=secrets_of(auth, authorization))
        raise ResponseDecodeError(f"{what}: unexpected document")  # redaction made it pass
    info = detail.job_info
    if info is not None and info.task_id is not None and info.task_id != job_id:
        secrets = secrets_of(auth, authorization)
        raise ResponseDecodeError(
            f"{what}: the answer is about job {_quote_id(info.task_id, secrets)},"
            f" not job {job_id!r} ($.data.jobInfo.taskId)",
            problems=(f"$.data.jobInfo.taskId: expected {job_id!r}",),
        )
    return detail


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


def decode_job_id(data: Any) -> str:
    """CreateJob's ``data``: the new job id, a non-empty string (or a number)."""
    if isinstance(data, int) and not isinstance(data, bool):
        return str(data)
    if isinstance(data, str) and data:
        return data
    # Only the kind of value is named: $.data is server text, and may echo a secret.
    got = "an empty string" if data == "" else type(data).__name__
    raise ResponseDecodeError(f"CreateJob: expected the new job id in $.data, got {got}")


#: A ``Date`` further than this from our own clock, in seconds (7 days), is taken for a
#: broken ``Date`` rather than a broken clock, and ignored: the offset learned is bounded, and
#: one bad answer (a gateway's, a hostile server's) cannot push X-Date out of range.
MAX_CLOCK_OFFSET: Final = 7 * 86_400.0
#: Years a server ``Date`` may name; any other is ignored (X-Date spells four digits).
PLAUSIBLE_YEARS: Final = range(1970, 9999)
_PLAUSIBLE_FIRST: Final = datetime(PLAUSIBLE_YEARS[0], 1, 1, tzinfo=UTC).timestamp()
_PLAUSIBLE_END: Final = datetime(PLAUSIBLE_YEARS[-1] + 1, 1, 1, tzinfo=UTC).timestamp()


def _server_time(date_header: str | None, our_now: float) -> float | None:
    """The server's clock from its ``Date``, or None when absent, malformed or implausible:
    a year outside PLAUSIBLE_YEARS, or more than MAX_CLOCK_OFFSET from ``our_now``."""
    server_now = parse_http_date(date_header)
    if server_now is None or not _PLAUSIBLE_FIRST <= server_now < _PLAUSIBLE_END:
        return None
    if not abs(server_now - our_now) <= MAX_CLOCK_OFFSET:
        return None
    return server_now


def server_clock_offset(date_header: str | None, local_now: float) -> float | None:
    """Seconds to add to the local wall clock to get the server's, from a ``Date`` header.

    ``Date`` has one-second resolution and is stamped before the answer travels, so the
    estimate errs towards the past: exactly the side on which ``X-Date`` must err. None
    (learn nothing) for a missing or malformed ``Date``, one naming a year outside
    1970..9998, or one more than ``MAX_CLOCK_OFFSET`` (7 days) from ``local_now``.
    """
    server_now = _server_time(date_header, local_now)
    return None if server_now is None else server_now - local_now


def x_date_rejected_for_clock(sent_x_date: str | None, date_header: str | None) -> bool:
    """True when a 401 is explained by our clock: the X-Date we sent was ahead of the
    server's ``Date``, or older than the 15-minute window. A ``Date`` the client would not
    learn from (see ``server_clock_offset``) explains nothing."""
    sent = parse_x_date(sent_x_date) if sent_x_date else None
    if sent is None:
        return False
    server_now = _server_time(date_header, sent)
    if server_now is None:
        return False
    return sent > server_now or server_now - sent > X_DATE_WINDOW


__all__ = [
    "API_PREFIX",
    "CANCEL_PATH",
    "JOBS_PATH",
    "MAX_CLOCK_OFFSET",
    "REDACTED",
    "RETRY_AFTER_STATUSES",
    "SUCCESS_CODE",
    "api_error",
    "business_code",
    "create_job_body",
    "decode_envelope",
    "decode_job_id",
    "error_class",
    "format_x_date",
    "is_retryable",
    "is_success_code",
    "job_detail",
    "job_path",
    "new_trace_id",
    "parse_http_date",
    "parse_retry_after",
    "parse_x_date",
    "redact",
    "secrets_of",
    "secrets_to_redact",
    "server_clock_offset",
    "structure",
    "structure_list",
    "validate_job_id",
    "x_date_rejected_for_clock",
]
