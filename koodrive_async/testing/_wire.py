"""Business codes and response envelopes, as raw JSON dicts."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

# Documented codes.
BAD_REQUEST = 13000101
PARAMETER_INVALID = 13000102
INTERNAL_ERROR = 13000201
# Codes the documentation does not name; chosen inside the documented 13000301..13000414
# range of space/file/permission errors, with the HTTP status as a mnemonic.
FILE_NOT_FOUND = 13000302
UNAUTHORIZED = 13000401
JOB_NOT_FOUND = 13000404
JOB_NOT_CANCELABLE = 13000409
# A gateway in front of the service answers throttling with its own code, a string.
GATEWAY_THROTTLED = "APIGW.0308"

JSON_CONTENT_TYPE = "application/json"


class ApiError(Exception):
    """An error answer: HTTP status plus ``{code, msg}``."""

    def __init__(self, http_status: int, code: int | str, msg: str) -> None:
        super().__init__(msg)
        self.http_status = http_status
        self.code = code
        self.msg = msg


def dumps(payload: Any) -> bytes:
    """Serialise a JSON document the way the service does (UTF-8, no ASCII escaping)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with the given payload."""
    return web.Response(
        body=dumps(payload), status=status, content_type=JSON_CONTENT_TYPE, headers=headers
    )


def ok(data: Any = None, *, with_data: bool = True) -> web.Response:
    """The success envelope ``{"code": 0, "msg": "OK", "data": ...}``."""
    payload: dict[str, Any] = {"code": 0, "msg": "OK"}
    if with_data:
        payload["data"] = data
    return json_response(payload)


def error(http_status: int, code: int | str, msg: str) -> web.Response:
    """The error envelope ``{"code": ..., "msg": ...}``."""
    return json_response({"code": code, "msg": msg}, status=http_status)


def default_code(http_status: int) -> int | str:
    """The business code an error of this HTTP status carries unless told otherwise."""
    if http_status == 429:
        return GATEWAY_THROTTLED
    if http_status == 401:
        return UNAUTHORIZED
    if http_status == 404:
        return JOB_NOT_FOUND
    if 400 <= http_status < 500:
        return BAD_REQUEST
    return INTERNAL_ERROR


def default_msg(http_status: int) -> str:
    """A readable message for an HTTP status."""
    try:
        return HTTPStatus(http_status).phrase
    except ValueError:
        return f"HTTP {http_status}"
