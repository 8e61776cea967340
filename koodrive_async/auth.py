"""Authentication: bearer tokens (static or from a provider) and HMAC-SHA256 app signing.

The signing functions are plain functions of their inputs so that each step of the documented
canonical request can be tested with literals, and so that the emulator can verify a signature
with exactly the same rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final
from urllib.parse import quote

import attrs

from .config import check_header_value
from .errors import AuthenticationError, TokenProviderError

__all__ = [
    "AppAuth",
    "Auth",
    "AuthFlow",
    "TokenAuth",
    "TokenProvider",
    "authorization_header",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "sign",
    "string_to_sign",
]

TokenProvider = Callable[[], Awaitable[str] | str]

DEFAULT_TOKEN_PREFIX: Final = "Bearer+"
SIGNING_ALGORITHM: Final = "HMAC-SHA256"
#: Header names signed by AppAuth, lower-case and sorted as the canonical request wants them.
SIGNED_HEADERS: Final = ("host", "x-date", "x-user-id")

# Unreserved characters of RFC 3986: everything else is percent-encoded, upper-case hex.
_UNRESERVED: Final = "-_.~"
# Schemes a token may already carry; such a token is sent as it is.
_SCHEMES: Final = ("bearer", "at ", "basic ", "hmac-sha256 ")


@attrs.frozen(repr=False)
class TokenAuth:
    """Access-token authentication: ``Authorization: Bearer+<token>``.

    Args:
        token: The access token, or a callable returning one (a plain function or a
            coroutine function). It is called before the first request and called again
            (once per request) after a 401, so a long wait survives token expiry when the
            provider refreshes the token. It runs within the time of the call that needs it;
            its failures are a TokenProviderError and are not cached.
        prefix: Prepended to a token that does not already start with a scheme (``Bearer``,
            ``AT``). The documented form is ``Bearer+``.

    The token never appears in ``repr`` or ``str``.
    """

    token: str | TokenProvider = attrs.field()
    prefix: str = attrs.field(default=DEFAULT_TOKEN_PREFIX, kw_only=True)

    @token.validator
    def _check_token(self, _: object, value: object) -> None:
        if isinstance(value, str):
            check_header_value("TokenAuth: the token", value)
        elif not callable(value):
            raise TypeError(
                f"TokenAuth: token must be a str or an async callable, not {type(value).__name__}"
            )

    @property
    def refreshable(self) -> bool:
        """True when the token comes from a provider that can be asked again."""
        return not isinstance(self.token, str)

    @prefix.validator
    def _check_prefix(self, _: object, value: object) -> None:
        if not isinstance(value, str):
            raise TypeError(f"TokenAuth: prefix must be a str, not {type(value).__name__}")
        if value:  # empty: the token is sent as it is
            check_header_value("TokenAuth: prefix", value)

    async def get_token(self) -> str:
        """Return the current token (calling the provider when there is one).

        Raises:
            TokenProviderError: The provider raised, or returned no usable token (not a str,
                empty, a control character). The message never quotes the value.
        """
        if isinstance(self.token, str):
            return self.token
        try:
            value = self.token()
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            raise TokenProviderError(
                f"the token provider raised {type(exc).__name__}"
            ) from exc
        if not isinstance(value, str):
            raise TokenProviderError(
                f"the token provider returned a {type(value).__name__}, not a str"
            )
        try:
            return check_header_value("the token provider's token", value)
        except ValueError as exc:
            raise TokenProviderError(str(exc)) from None

    def header_value(self, token: str) -> str:
        """The ``Authorization`` value for ``token``."""
        token = token.strip()
        if token.lower().startswith(_SCHEMES):
            return token
        return self.prefix + token

    def __repr__(self) -> str:
        kind = "provider" if self.refreshable else "token"
        return f"TokenAuth({kind}=<redacted>, prefix={self.prefix!r})"

    __str__ = __repr__


@attrs.frozen(repr=False)
class AppAuth:
    """App authentication: every request signed with the documented HMAC-SHA256 scheme.

    Args:
        app_id: The application id, sent in the ``Authorization`` header.
        app_secret: The signing key. Never sent, never shown in ``repr`` or ``str``.
    """

    app_id: str
    app_secret: str

    def __attrs_post_init__(self) -> None:
        check_header_value("AppAuth: app_id", self.app_id)
        # The secret only keys the HMAC and never travels: any non-empty text will do.
        if not isinstance(self.app_secret, str) or not self.app_secret:
            raise ValueError("AppAuth: app_secret must be a non-empty str")
        try:
            self.app_secret.encode()
        except UnicodeEncodeError:
            raise ValueError("AppAuth: app_secret is not valid Unicode") from None

    def header_value(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> str:
        """The ``Authorization`` value signing this request.

        Args:
            method: HTTP method.
            path: The decoded absolute path.
            query: Decoded query parameters.
            headers: The headers to sign, by lower-case name (see ``SIGNED_HEADERS``).
            body: The exact body bytes sent.
        """
        canonical = canonical_request(method, path, query, headers, body)
        signature = sign(self.app_secret, string_to_sign(canonical))
        return authorization_header(self.app_id, sorted(headers), signature)

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id!r}, app_secret=<redacted>)"

    __str__ = __repr__


Auth = TokenAuth | AppAuth


def _encode(value: str) -> str:
    return quote(value, safe=_UNRESERVED)


def canonical_uri(path: str) -> str:
    """Each segment of the decoded absolute ``path`` URI-encoded, with a trailing ``/``."""
    encoded = "/".join(_encode(segment) for segment in path.split("/"))
    if not encoded.startswith("/"):
        encoded = "/" + encoded
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """``name=value`` pairs, percent-encoded, sorted by name (then value), joined by ``&``."""
    pairs = sorted((_encode(name), _encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The documented CanonicalRequest: six lines joined with ``\\n``.

    ``headers`` maps the names to sign to their values; names are lower-cased and sorted,
    values trimmed.
    """
    lowered = sorted((name.lower(), value.strip()) for name, value in headers.items())
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in lowered)
    signed_headers = ";".join(name for name, _ in lowered)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        )
    )


def string_to_sign(canonical: str) -> str:
    """``HMAC-SHA256\\n`` followed by the hex SHA-256 of the canonical request."""
    return f"{SIGNING_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def sign(app_secret: str, to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``to_sign`` keyed by ``app_secret``."""
    return hmac.new(app_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def authorization_header(app_id: str, signed_headers: Iterable[str], signature: str) -> str:
    """``HMAC-SHA256 AppId=...,SignedHeaders=a;b;c,Signature=...``."""
    names = ";".join(sorted(name.lower() for name in signed_headers))
    return f"{SIGNING_ALGORITHM} AppId={app_id},SignedHeaders={names},Signature={signature}"


#: The headers AppAuth signs, by their lower-case names, as the client sends them.
_SIGNED_HEADER_NAMES: Final = {"host": "Host", "x-date": "X-Date", "x-user-id": "X-User-Id"}


class AuthFlow:
    """The ``Authorization`` of each attempt, and whether a 401 is worth sending again.

    The client holds one: a token cache shared by all its calls. A provider is asked once
    for all the calls that need a token at the same time; each waits within its own time,
    and the question is dropped when the last one stops waiting, so a provider that hangs
    holds nobody past their time and the next call asks again. After a 401, a request is
    sent again at most twice: once when the server's ``Date`` shows our ``X-Date`` was off
    (with the clock offset just learned), once with a fresh token from the provider.
    """

    def __init__(self, auth: Auth) -> None:
        if not isinstance(auth, TokenAuth | AppAuth):
            raise TypeError(f"auth must be TokenAuth or AppAuth, not {type(auth).__name__}")
        self.auth = auth
        # A static token's header is made once; a provider's is asked for at the first call.
        self.header: str | None = (
            auth.header_value(auth.token)
            if isinstance(auth, TokenAuth) and isinstance(auth.token, str)
            else None
        )
        """The token's Authorization value as last obtained (None: not yet, or app auth)."""
        self.generation = 0
        """Changes each time a 401 drops the token: a re-send asks for a new one."""
        self._question: asyncio.Future[str] | None = None
        self._waiting = 0

    def authorize_now(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: dict[str, str],
        payload: bytes,
        signed_path: Callable[[str], str],
    ) -> bool:
        """Set ``headers["Authorization"]`` if that needs no wait: app auth signs the
        request (its path as ``signed_path(path)`` gives it: what the server sees), a token
        at hand is reused. False when the provider must be asked: then await ``authorize``."""
        auth = self.auth
        if isinstance(auth, AppAuth):
            signed = {name: headers[_SIGNED_HEADER_NAMES[name]] for name in SIGNED_HEADERS}
            headers["Authorization"] = auth.header_value(
                method, signed_path(path), query, signed, payload
            )
            return True
        header = self.header
        if header is None:
            return False
        headers["Authorization"] = header
        return True

    async def authorize(self, headers: dict[str, str], *, timeout: float | None) -> None:
        """Set ``headers["Authorization"]`` to a token asked of the provider.

        Raises:
            TokenProviderError: The provider failed, or gave no token within ``timeout``.
        """
        headers["Authorization"] = self.header or await self._ask(timeout)

    def resend_after_401(
        self, error: AuthenticationError, *, generation: int, resent: list[str]
    ) -> bool:
        """Whether to send a request rejected with ``error`` once more; ``resent`` lists the
        re-sends this request already had (it is appended to)."""
        if error.clock_skew and "clock" not in resent:
            resent.append("clock")
            return True
        if isinstance(self.auth, TokenAuth) and self.auth.refreshable and "token" not in resent:
            resent.append("token")
            # Many requests may see the same 401 at once: only the first drops the token.
            if self.generation == generation:
                self.header = None
                self.generation += 1
            return True
        return False

    async def _ask(self, timeout: float | None) -> str:
        question = self._question
        if question is None:
            question = self._question = asyncio.ensure_future(self._ask_provider())
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(question)
        except TimeoutError:  # ours: the provider's own errors are TokenProviderError
            raise TokenProviderError(
                f"the token provider did not answer within {timeout:g} s"
            ) from None
        finally:
            self._waiting -= 1
            if self._waiting == 0 and not question.done():
                question.cancel()
            if self._question is question and (question.done() or self._waiting == 0):
                self._question = None

    async def _ask_provider(self) -> str:
        assert isinstance(self.auth, TokenAuth)
        generation = self.generation
        header = self.auth.header_value(await self.auth.get_token())
        if generation == self.generation:  # not dropped by a 401 meanwhile
            self.header = header
        return header
