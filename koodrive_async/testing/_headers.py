"""The header checks of the real service, in its order: raises ApiError on the first failure."""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs
from multidict import CIMultiDictProxy

from koodrive_async.testing import _signing, _wire
from koodrive_async.testing._clock import parse_x_date

TOKEN_SCHEMES = ("Bearer+", "Bearer ", "AT ")
_HMAC_PREFIX = _signing.ALGORITHM + " "
_TRACE_ID = re.compile(r"[A-Za-z0-9_]{58}")
_REQUIRED_SIGNED = ("x-date", "x-user-id")


def strip_scheme(value: str) -> str | None:
    """The token inside an ``Authorization`` token value; None without a known scheme."""
    for scheme in TOKEN_SCHEMES:
        if value.startswith(scheme):
            return value[len(scheme) :].strip() or None
    return None


def normalise_token(token: str) -> str:
    """A configured token without its scheme, if it carries one (``Bearer+abc`` -> ``abc``)."""
    return strip_scheme(token) or token


def _unauthorized(msg: str) -> _wire.ApiError:
    return _wire.ApiError(401, _wire.UNAUTHORIZED, msg)


@attrs.frozen(kw_only=True)
class RequestView:
    """What the checks need to know about a request."""

    method: str
    raw_target: str
    """The path and query exactly as on the request line (signatures are checked on it)."""
    headers: CIMultiDictProxy[str]
    body: bytes


@attrs.frozen(kw_only=True)
class HeaderPolicy:
    """Credentials and limits the checks apply."""

    tokens: frozenset[str]
    user_ids: frozenset[str]
    apps: Mapping[str, str]
    x_date_max_age: float
    x_date_max_ahead: float


def check_request(request: RequestView, policy: HeaderPolicy, server_now: float) -> None:
    """Check Authorization, X-User-Id, X-Date, Host and X-Traceid, in that order.

    Raises:
        ApiError: 401 for a failed check, 400 for a malformed X-Traceid.
    """
    headers = request.headers
    authorization = headers.get("Authorization")
    if not authorization:
        raise _unauthorized("Authorization header is missing")
    if authorization.startswith(_HMAC_PREFIX):
        _check_signature(request, authorization, policy)
    else:
        token = strip_scheme(authorization)
        if token is None:
            raise _unauthorized("Authorization must be 'Bearer+<token>' or 'AT <token>'")
        if token not in policy.tokens:
            raise _unauthorized("access token is invalid or expired")

    user_id = headers.get("X-User-Id")
    if not user_id:
        raise _unauthorized("X-User-Id header is missing")
    if user_id not in policy.user_ids:
        raise _unauthorized("X-User-Id is unknown")

    x_date = headers.get("X-Date")
    if not x_date:
        raise _unauthorized("X-Date header is missing")
    sent = parse_x_date(x_date)
    if sent is None:
        raise _unauthorized("X-Date must look like 20251103T070140Z")
    if sent < server_now - policy.x_date_max_age:
        raise _unauthorized("X-Date is too old: the request has expired")
    if sent > server_now + policy.x_date_max_ahead:
        raise _unauthorized("X-Date is later than the server time")

    if not headers.get("Host"):
        raise _unauthorized("Host header is missing")

    trace_id = headers.get("X-Traceid")
    if trace_id is not None and not _TRACE_ID.fullmatch(trace_id):
        raise _wire.ApiError(
            400, _wire.PARAMETER_INVALID, "X-Traceid must be 58 characters of A-Z a-z 0-9 _"
        )


def _check_signature(request: RequestView, authorization: str, policy: HeaderPolicy) -> None:
    fields = _signing.parse_authorization(authorization)
    if fields is None:
        raise _unauthorized("HMAC-SHA256 needs AppId, SignedHeaders and Signature")
    secret = policy.apps.get(fields.app_id)
    if secret is None:
        raise _unauthorized("AppId is unknown")
    if not fields.well_formed_names:
        raise _unauthorized("SignedHeaders must be lower-case names, sorted, joined with ';'")
    missing = [name for name in _REQUIRED_SIGNED if name not in fields.signed_headers]
    if missing:
        raise _unauthorized(f"SignedHeaders must include {', '.join(missing)}")
    values = {}
    for name in fields.signed_headers:
        if name not in request.headers:
            raise _unauthorized(f"signed header {name} is missing from the request")
        values[name] = ",".join(request.headers.getall(name))
    if not _signing.verify(
        secret, request.method, request.raw_target, values, request.body, fields.signature
    ):
        raise _unauthorized("signature does not match")
