"""Faults the emulator can inject: value objects, matching rules, a seeded random mix and
the queue that hands them to requests."""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import attrs
from aiohttp import web

from koodrive_async.testing import _wire


class FaultKind(StrEnum):
    """What a :class:`Fault` does to the request it matches."""

    STATUS = "status"
    """Answer an HTTP error status with ``{code, msg}``."""
    RATE_LIMITED = "rate_limited"
    """Answer 429 with ``Retry-After``."""
    DELAY = "delay"
    """Wait, then answer normally."""
    DROP = "drop"
    """Close the connection without an answer."""
    BODY = "body"
    """Serve exact bytes."""
    BUSINESS_CODE = "business_code"
    """Answer ``{code, msg}`` with a non-zero business code (HTTP 200 by default)."""
    TRUNCATE = "truncate"
    """Send the normal answer's headers and the first bytes of its body, then close."""


def _to_headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items()) if headers else ()


def _to_body(body: bytes | Mapping[str, Any] | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return _wire.dumps(dict(body))


def _check_wait(instance: Fault, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"wait must be >= 0 seconds, got {value!r}")


@attrs.frozen(kw_only=True)
class Fault:
    """One misbehaviour, built with the class methods (``Fault.status(503)``, ...).

    Every fault can wait ``wait`` seconds (real time, ``asyncio.sleep``) before acting;
    ``Fault.delay(2.0, then=Fault.status(503))`` is a slow error.
    """

    kind: FaultKind
    """What the fault does."""
    wait: float = attrs.field(default=0.0, validator=_check_wait)
    """Seconds to wait before acting."""
    http_status: int = 200
    """HTTP status of a canned answer."""
    code: int | str | None = None
    """Business code of a canned ``{code, msg}`` answer; None for the status's default."""
    msg: str | None = None
    """Message of a canned ``{code, msg}`` answer; None for the status's phrase."""
    content: bytes | None = None
    """Exact body bytes to serve instead of ``{code, msg}``."""
    content_type: str = _wire.JSON_CONTENT_TYPE
    """Content-Type of a canned answer."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers of a canned answer."""
    after_bytes: int = 0
    """For TRUNCATE: how many body bytes to send before closing."""

    @classmethod
    def status(
        cls,
        http_status: int,
        *,
        retry_after: float | str | None = None,
        body: bytes | Mapping[str, Any] | None = None,
        code: int | str | None = None,
        msg: str | None = None,
        headers: Mapping[str, str] | None = None,
        wait: float = 0.0,
    ) -> Fault:
        """Answer ``http_status`` with ``{code, msg}``.

        Args:
            http_status: the HTTP status, e.g. 500, 503, 401.
            retry_after: a ``Retry-After`` header: seconds, or a string sent verbatim.
            body: exact bytes (or a JSON object) instead of ``{code, msg}``.
            code: the business code; default 13000201 for 5xx, 13000101 for other 4xx,
                13000401 for 401, 13000404 for 404, ``"APIGW.0308"`` for 429.
            msg: the message; default the status phrase.
            headers: extra response headers.
            wait: seconds to wait before answering.
        """
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = _format_retry_after(retry_after)
        return cls(
            kind=FaultKind.STATUS,
            wait=wait,
            http_status=http_status,
            code=code,
            msg=msg,
            content=_to_body(body),
            headers=_to_headers(extra),
        )

    @classmethod
    def rate_limited(
        cls,
        *,
        retry_after: float | str | None = 1.0,
        code: int | str | None = None,
        msg: str | None = None,
        wait: float = 0.0,
    ) -> Fault:
        """Answer 429 with ``Retry-After`` (seconds, or a string sent verbatim; None: no header)."""
        status = cls.status(429, retry_after=retry_after, code=code, msg=msg, wait=wait)
        return attrs.evolve(status, kind=FaultKind.RATE_LIMITED)

    @classmethod
    def delay(cls, seconds: float, *, then: Fault | None = None) -> Fault:
        """Wait ``seconds`` (real time), then answer normally, or as ``then`` says."""
        if then is not None:
            return attrs.evolve(then, wait=then.wait + seconds)
        return cls(kind=FaultKind.DELAY, wait=seconds)

    @classmethod
    def drop(cls, *, wait: float = 0.0) -> Fault:
        """Close the connection without sending any answer."""
        return cls(kind=FaultKind.DROP, wait=wait)

    @classmethod
    def body(
        cls,
        data: bytes,
        *,
        status: int = 200,
        content_type: str = _wire.JSON_CONTENT_TYPE,
        headers: Mapping[str, str] | None = None,
        wait: float = 0.0,
    ) -> Fault:
        """Serve exactly ``data`` with ``status``: for quirks and malformed bodies."""
        return cls(
            kind=FaultKind.BODY,
            wait=wait,
            http_status=status,
            content=data,
            content_type=content_type,
            headers=_to_headers(headers),
        )

    @classmethod
    def business_code(
        cls, code: int | str, *, http_status: int = 200, msg: str | None = None, wait: float = 0.0
    ) -> Fault:
        """Answer ``{"code": code, "msg": msg}`` with ``http_status`` (200 by default)."""
        return cls(
            kind=FaultKind.BUSINESS_CODE,
            wait=wait,
            http_status=http_status,
            code=code,
            msg=msg if msg is not None else "business error",
        )

    @classmethod
    def truncate(cls, after_bytes: int, *, wait: float = 0.0) -> Fault:
        """Send the normal answer's headers and its first ``after_bytes`` body bytes, then close.

        On the package download route this cuts a download short for a resume test.
        """
        if after_bytes < 0:
            raise ValueError(f"after_bytes must be >= 0, got {after_bytes!r}")
        return cls(kind=FaultKind.TRUNCATE, wait=wait, after_bytes=after_bytes)

    def canned_response(self) -> web.Response | None:
        """The answer this fault serves by itself; None when the normal answer is needed."""
        if self.kind in (FaultKind.DELAY, FaultKind.DROP, FaultKind.TRUNCATE):
            return None
        if self.content is not None:
            body = self.content
        else:
            code = self.code if self.code is not None else _wire.default_code(self.http_status)
            msg = self.msg if self.msg is not None else _wire.default_msg(self.http_status)
            body = _wire.dumps({"code": code, "msg": msg})
        return web.Response(
            body=body,
            status=self.http_status,
            headers={"Content-Type": self.content_type, **dict(self.headers)},
        )


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@attrs.define
class FaultRule:
    """A queued fault and the requests it matches."""

    fault: Fault
    remaining: int | None
    """How many more requests it applies to; None: every matching request."""
    method: str | None = None
    path: str | None = None
    """Exact path or ``fnmatch`` pattern; None: any API request (not the download route)."""

    def matches(self, method: str, path: str, *, is_api: bool) -> bool:
        """Whether this rule applies to a request."""
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return is_api
        return fnmatch.fnmatchcase(path, self.path)


_MALFORMED_BODIES: tuple[tuple[bytes, str, int], ...] = (
    (b'{"code":0,"msg":"OK","data":{"jobInfo":', _wire.JSON_CONTENT_TYPE, 200),
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", 200),
    (b"", _wire.JSON_CONTENT_TYPE, 200),
    (b'{"code":0,"msg":"OK","data":', _wire.JSON_CONTENT_TYPE, 200),
    (b"[1, 2, 3]", _wire.JSON_CONTENT_TYPE, 200),
)
_STATUSES_5XX = (500, 502, 503, 504)


def _check_probability(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


@attrs.define(kw_only=True)
class FaultMix:
    """A seeded random mix of faults, drawn once per API request with no queued fault.

    Probabilities are per request and must add up to at most 1.
    """

    seed: int
    status_5xx: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability of a 500, 502, 503 or 504 (equally likely)."""
    rate_limited: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability of a 429 with ``Retry-After: retry_after``."""
    drop: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability of a connection closed without an answer."""
    delay: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability of a normal answer after ``delay_seconds``."""
    malformed: float = attrs.field(default=0.0, validator=_check_probability)
    """Probability of an HTTP 200 whose body is not a valid envelope."""
    delay_seconds: float = 0.05
    retry_after: float | str | None = 0
    _rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        total = self.status_5xx + self.rate_limited + self.drop + self.delay + self.malformed
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total!r}, more than 1")
        if self.delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {self.delay_seconds!r}")
        self._rng = random.Random(self.seed)

    def draw(self) -> Fault | None:
        """The fault for the next request, or None for a normal answer."""
        roll = self._rng.random()
        for probability, make in (
            (self.status_5xx, self._status),
            (self.rate_limited, self._rate_limited),
            (self.drop, Fault.drop),
            (self.delay, self._delay),
            (self.malformed, self._malformed),
        ):
            if roll < probability:
                return make()
            roll -= probability
        return None

    def _status(self) -> Fault:
        return Fault.status(self._rng.choice(_STATUSES_5XX))

    def _rate_limited(self) -> Fault:
        return Fault.rate_limited(retry_after=self.retry_after)

    def _delay(self) -> Fault:
        return Fault.delay(self.delay_seconds)

    def _malformed(self) -> Fault:
        data, content_type, status = self._rng.choice(_MALFORMED_BODIES)
        return Fault.body(data, status=status, content_type=content_type)


class FaultQueue:
    """Queued fault rules, then the random mix: what the next request gets.

    Shared by the thread serving requests and the test's thread, hence the lock.
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._mix: FaultMix | None = None
        self._lock = threading.Lock()

    def add(
        self, fault: Fault, *, times: int | None, method: str | None, path: str | None
    ) -> FaultRule:
        """Queue ``fault`` for the next ``times`` matching requests (None: all of them)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times!r}")
        rule = FaultRule(fault=fault, remaining=times, method=method, path=path)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every queued rule (the mix stays)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """Queued rules not used up yet, in order."""
        with self._lock:
            return tuple(self._rules)

    @property
    def mix(self) -> FaultMix | None:
        """The random mix drawn from when no rule matches; None: no random faults."""
        return self._mix

    @mix.setter
    def mix(self, mix: FaultMix | None) -> None:
        self._mix = mix

    def take(self, method: str, path: str, *, is_api: bool) -> Fault | None:
        """The fault for this request: the first matching rule (used up by one), else a
        draw from the mix (API requests only), else None."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(method, path, is_api=is_api):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            del self._rules[index]
                    return rule.fault
            mix = self._mix
            return mix.draw() if mix is not None and is_api else None
