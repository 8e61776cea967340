"""The answer's envelope, with no I/O: success, the business code, and the error an answer
that is not a success becomes, with the client's secrets redacted from what it quotes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import orjson

from ._protocol import error_class
from ._redact import SIGNATURE_SHAPE, Secret, redact, secrets_to_redact, snippet
from .auth import AppAuth, TokenAuth
from .errors import APIError, AuthenticationError, ResponseDecodeError
from .models import JobStatus

__all__ = [
    "SUCCESS_CODE",
    "api_error",
    "business_code",
    "decode_envelope",
    "is_success_code",
    "secrets_of",
    "skim_unfinished",
]

_loads: Final = orjson.loads
_JSON_ERRORS: Final = (orjson.JSONDecodeError, UnicodeDecodeError)


#: The envelope's one success code. The tables call ``code`` a string and the examples send
#: a number, so the JSON integer 0 and the string "0" both mean success; nothing else does
#: (not ``false``, ``0.0``, ``0e0``, ``"00"`` nor ``" 0"``).
SUCCESS_CODE: Final = 0
_MAX_CODE_CHARS: Final = 64
_ABSENT: Final = object()
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


def api_error(
    http_status: int,
    body: bytes,
    *,
    trace_id: str | None,
    retry_after: float | None,
    secrets: Sequence[Secret] = (),
    clock_skew: bool = False,
) -> APIError:
    """The error for an answer that is not a success, built from its status and body.

    The body may be ``{code, msg}``, the older ``{error_code, error_msg}``, or no JSON at all
    (a gateway page). Every text taken from the body (``msg``, ``code``, a snippet) has the
    ``secrets`` (see ``secrets_to_redact``) replaced by ``<redacted>`` before it is cut.
    ``clock_skew`` is given to an AuthenticationError (see ``_stamps.x_date_rejected_for_clock``).
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
        msg = snippet(body, secrets) or None
    message = f"HTTP {http_status}"
    if code is not None:
        message += f", code {code}"
    if msg:
        message += f": {msg}"
    if trace_id:
        message += f" (trace id {trace_id})"
    cls = error_class(http_status, code)
    fields: dict[str, Any] = {
        "http_status": http_status, "code": code, "msg": msg, "trace_id": trace_id,
        "retry_after": retry_after,
    }
    if issubclass(cls, AuthenticationError):
        fields["clock_skew"] = clock_skew
    return cls(message, **fields)


def decode_envelope(
    http_status: int,
    body: bytes,
    *,
    trace_id: str | None = None,
    retry_after: float | None = None,
    authorization: str | None = None,
    auth: TokenAuth | AppAuth | None = None,
    clock_skew: bool = False,
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
            secrets=secrets_of(auth, authorization), clock_skew=clock_skew,
        )
    problem: str | None = None
    try:
        document = _loads(body)
    except _JSON_ERRORS as exc:
        # Raised outside this block: the JSON error keeps the whole body (``.doc``), and
        # it must not ride along as ``__context__``.
        problem = str(exc)
    if problem is not None:
        quoted = snippet(body, secrets_of(auth, authorization))[:80]
        raise ResponseDecodeError(f"HTTP {http_status} answer is not JSON ({quoted!r}): {problem}")
    if not isinstance(document, dict):
        raise ResponseDecodeError(
            f"HTTP {http_status} answer is not a JSON object but {type(document).__name__}"
        )
    code = document.get("code", _ABSENT)
    if code is _ABSENT:
        code = document.get("error_code", _ABSENT)
        if code is _ABSENT:
            raise ResponseDecodeError(f"HTTP {http_status} answer has no 'code'")
    if not is_success_code(code):
        raise api_error(
            http_status, body, trace_id=trace_id, retry_after=retry_after,
            secrets=secrets_of(auth, authorization), clock_skew=clock_skew,
        )
    return document.get("data")


# The head and the tail of an envelope whose members besides ``data`` are plain scalars
# (``code``, ``msg`` ...), with ``jobInfo`` the first member of ``data``: the API's own order.
# A string as the loop unrolled ("[^"\\]*" between escapes): 20 times faster than an
# alternation per character on a long one.
_SCALAR: Final = rb'(?:-?[0-9]+|"[^"\\]*(?:\\.[^"\\]*)*"|null|true|false)'
_MEMBER: Final = rb'\s*"([A-Za-z_]{1,32})"\s*:\s*(' + _SCALAR + rb')\s*'
_HEAD: Final = re.compile(rb'\s*\{((?:' + _MEMBER + rb',)*)\s*"data"\s*:\s*\{\s*"jobInfo"\s*:\s*\{')
_TAIL: Final = re.compile(rb'\}\s*((?:,' + _MEMBER + rb')*)\}\s*\Z')
_MEMBERS: Final = re.compile(_MEMBER)
_TAIL_BYTES: Final = 512
# The head is sought in this many bytes at most (a 24 MiB msg before data took 20 s): past
# them, the full parse (orjson, 1 ns a byte) reads it.
_HEAD_BYTES: Final = 4096


def skim_unfinished(body: bytes) -> dict[str, Any] | None:
    """GetJobDetail's ``data`` holding only its ``jobInfo``, read from the head of a success
    answer about a pending or processing job; None for any other answer (read it in full).

    What a waiter needs of a job that is not over is its status and progress: its thousand
    taskInfos would cost a full parse and structuring on every poll. Only ``jobInfo`` (up to
    its first ``}``, as the API sends it: scalars only) and the envelope's scalar members are
    parsed (within the first ``_HEAD_BYTES``: past them, the full parse is cheaper); the rest
    of the body is not read, so a malformed rest goes unnoticed until the
    job's terminal answer, which the caller reads in full. The envelope's last ``code`` (the
    one a full parse keeps) must be the success code.
    """
    head = _HEAD.match(body, 0, _HEAD_BYTES)
    if head is None:
        return None
    tail = _TAIL.search(body, max(head.end(), len(body) - _TAIL_BYTES))
    if tail is None:
        return None
    codes = [value for name, value in _MEMBERS.findall(head.group(1) + tail.group(1))
             if name == b"code"]
    if not codes or codes[-1] not in (b"0", b'"0"'):
        return None
    start = head.end() - 1
    end = body.find(b"}", start)
    try:
        info = _loads(body[start:end + 1])
    except _JSON_ERRORS:  # a "}" in a string, or a nested object: not for skimming
        return None
    status = info.get("status")
    if type(status) is not int or JobStatus.is_terminal(status):
        return None
    return {"jobInfo": info}
