"""One HTTP attempt, below the retry loop: the session, the URL, the headers, the capped
read, and the server clock learned from every answer.

The body cap (``max_response_bytes``) is on the bytes the client is handed, after aiohttp has
undone any ``Content-Encoding`` (gzip, deflate, br, zstd). A ``Content-Length`` only bounds a
body sent as it is: 1,617 bytes of brotli inflate to 1 GiB. aiohttp inflates in bounded
steps (since its fix of CVE-2025-69223, 3.13.3; read in 3.14's http_parser.DeflateBuffer): each
step hands the stream at most ``read_bufsize`` (64 KiB) of output, and decoding pauses while the
stream's buffer is full. So reading chunk by chunk and stopping at the cap never holds more
than the cap and a chunk, whatever the compressed body says.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiohttp
import orjson
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError

from . import _envelope as envelope
from . import _protocol as proto
from . import _stamps as stamps
from . import _telemetry as telemetry
from ._redact import redact
from ._urls import check_base_url
from .auth import AppAuth, Auth
from .config import check_count, check_header_value
from .errors import (
    ClientClosedError,
    ConnectError,
    KooDriveError,
    RequestTimeoutError,
    ResponseDecodeError,
    TransportError,
)

__all__ = ["Transport", "read_capped"]

logger: Final = logging.getLogger("koodrive_async.http")

# Retry-After values are kept up to a day, to report them; waiting is capped by the policy.
_RETRY_AFTER_LIMIT: Final = 86_400.0
# Where aiohttp starts quoting the server's bytes in a message (b'...' or b"...").
_QUOTED_BYTES: Final = re.compile(r"""\bb['"]""")


class Transport:
    """One aiohttp session (owned or borrowed) and one HTTP attempt at a time over it.

    Args:
        base_url: The service root (checked by ``check_base_url``).
        allow_insecure_http: Allow a non-loopback ``http://`` base URL.
        user_id, language: Sent as ``X-User-Id`` and ``language`` on every request.
        auth: To redact its secrets from the server text an error quotes; AppAuth signs Host.
        session: A session to borrow (never closed here), or None to make one.
        max_connections: The pool size of a session made here.
        max_response_bytes: The cap on a decoded body.
        wall_clock: Epoch seconds, for ``X-Date``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        allow_insecure_http: bool,
        user_id: str,
        language: str | None,
        auth: Auth,
        session: aiohttp.ClientSession | None,
        max_connections: int,
        max_response_bytes: int,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        base = self.base = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValueError("user_id is required (the KooDrive user id sent as X-User-Id)")
        self.user_id = check_header_value("user_id", user_id).strip()
        if language is not None:
            check_header_value("language", language)
        check_count("max_connections", max_connections)
        check_count("max_response_bytes", max_response_bytes)
        self._language = language
        self._auth = auth
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._wall_clock = wall_clock
        self._host = base.host_port_subcomponent or ""
        self._signs_host = isinstance(auth, AppAuth)
        # The base URL's path (a gateway's mount point, encoded): every request goes under it.
        self._prefix = base.raw_path.rstrip("/")
        self.closed = False
        self.clock_offset = 0.0
        """Seconds the server's clock is ahead of ours (negative: behind), as last learned."""
        self._loop: asyncio.AbstractEventLoop | None = None
        # The first attempt's timeout is kept: most attempts use the client's default.
        self._usual_seconds: float | None = None
        self._usual_timeout: aiohttp.ClientTimeout | None = None

    @property
    def pool_size(self) -> int | None:
        """Size of the connection pool requests go through (None: unlimited)."""
        if self._session is not None and not self._owns_session:
            limit = self._session.connector.limit if self._session.connector else 0
            return limit or None
        return self._max_connections

    def session(self) -> aiohttp.ClientSession:
        """The session, made at first use; ClientClosedError once closed."""
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                auto_decompress=True,
                # Ours comes before the OpenTelemetry instrumentation's, which its
                # ClientSession.__init__ hook appends: see _telemetry._on_request_done.
                trace_configs=telemetry.trace_configs(),
            )
        return self._session

    def is_closed(self) -> bool:
        """Whether ``aclose()`` ran."""
        return self.closed

    async def aclose(self) -> None:
        """Close the session if it is ours (a borrowed one stays open). Idempotent."""
        self.closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def check_loop(self) -> None:
        """Refuse, before anything is sent, a request from another event loop.

        A client, like the aiohttp session inside it, belongs to the event loop that first
        used it: its connections, locks and timers live there. From another loop (a second
        ``asyncio.run``, another thread's loop) aiohttp would fail half-way and leave a
        socket behind, so such a call raises ClientClosedError (a KooDriveError, and a
        RuntimeError as asyncio's own loop errors are) and sends nothing.
        """
        loop = asyncio.get_running_loop()
        bound = self._loop
        if loop is bound:
            return
        if bound is None:
            # A session made before the first request (a borrowed one, or the one
            # __aenter__ opened) already belongs to a loop: the client belongs there too.
            owner = getattr(self.session(), "_loop", None)
            bound = self._loop = owner if isinstance(owner, asyncio.AbstractEventLoop) else loop
            if bound is loop:
                return
        raise ClientClosedError(
            "this client belongs to the event loop that first used it and cannot be used "
            "from another one (each asyncio.run() makes a new loop): create one client per "
            "event loop, or submit the call to the client's loop with "
            "asyncio.run_coroutine_threadsafe()"
        )

    def signed_path(self, path: str) -> str:
        """The decoded absolute path the server sees, prefix included: what AppAuth signs."""
        full = self._prefix + path
        return urllib.parse.unquote(full) if "%" in full else full

    def headers(self, payload: bytes) -> dict[str, str]:
        """The headers of one attempt but ``Authorization``: a fresh X-Date and X-Traceid
        (and Host, which aiohttp sends anyway, only for AppAuth to sign)."""
        headers = {
            "X-User-Id": self.user_id,
            "X-Date": stamps.format_x_date(self._wall_clock() + self.clock_offset),
            "X-Traceid": stamps.new_trace_id(),
        }
        if self._signs_host:
            # AppAuth signs Host: the value aiohttp sends from the URL, here to be signed.
            # Otherwise aiohttp's own is left alone (a header fewer to merge: 0.7 % of the
            # CPU of a lookup).
            headers["Host"] = self._host
        if payload:
            headers["Content-Type"] = "application/json"
        if self._language:
            headers["language"] = self._language
        return headers

    async def send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        payload: bytes,
        headers: dict[str, str],
        *,
        timeout: float | None,
        operation: str = "",
        attempt: int = 1,
        skim: bool = False,
        trace_request_ctx: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request and return its envelope's data.

        ``operation`` (GetJobDetail ...) and ``attempt`` (the retry loop's, from 1) are for
        the DEBUG record ``koodrive_async.http`` logs of it. ``skim``: a GetJobDetail whose
        success answer is about an unfinished job returns its jobInfo alone
        (``envelope.skim_unfinished``). ``trace_request_ctx``: for aiohttp's tracing (see
        ``telemetry.attempt``).

        Raises:
            TransportError: No answer (ConnectError: the connection could not be opened;
                RequestTimeoutError: none within ``timeout`` seconds).
            APIError, ResponseDecodeError: The answer says so.
        """
        trace_id = headers["X-Traceid"]
        session = self.session()
        url = self.base.with_path(self._prefix + path, encoded=True)
        if query:
            url = url.with_query(query)
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        status: int | None = None
        failure: KooDriveError | None = None
        try:
            async with session.request(
                method, url, data=payload or None, headers=headers,
                timeout=self._client_timeout(timeout), allow_redirects=False,
                trace_request_ctx=trace_request_ctx,
            ) as response:
                status = response.status
                answer_headers = response.headers
                date_header = answer_headers.get("Date")
                retry_after_header = (
                    answer_headers.get("Retry-After")
                    if status in proto.RETRY_AFTER_STATUSES
                    else None
                )
                length = response.content_length
                if (length is not None and length <= self._max_response_bytes
                        and "Content-Encoding" not in answer_headers):
                    content = await response.read()  # read_capped's fast path, inline
                else:
                    content = await read_capped(response, self._max_response_bytes)
        except TimeoutError:
            within = "in time" if timeout is None else f"within {timeout:.3g} s"
            raise RequestTimeoutError(
                f"{method} {path}: no answer {within} (trace id {trace_id})"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"{method} {path}: cannot connect: {exc.os_error}") from None
        # (An HttpProcessingError comes bare from aiohttp's parser without its C extension.)
        except (aiohttp.ClientError, HttpProcessingError) as exc:
            failure = self._failure(f"{method} {path}", exc, headers)
        except RuntimeError as exc:
            if not session.closed:
                raise
            raise ClientClosedError(
                f"{method} {path}: the client's aiohttp session is closed"
            ) from exc
        except asyncio.CancelledError:
            # Closing the session cancels the requests queued for a connection: unless this
            # task itself is being cancelled, that is the client closing under the call.
            task = asyncio.current_task()
            if not session.closed or (task is not None and task.cancelling()):
                raise
            raise ClientClosedError(
                f"{method} {path}: the client was closed while the request waited"
            ) from None
        finally:
            if debug:
                _log_attempt(method, operation, status, attempt, started, trace_id)
        if failure is not None:  # raised here, so aiohttp's text does not ride as __context__
            raise failure
        assert status is not None  # every other way out of the block raised
        # server_clock_offset ignores an implausible Date (a year outside 1970..9998, or more
        # than 7 days from our clock): one bad answer must not push X-Date out of range.
        offset = stamps.server_clock_offset(date_header, self._wall_clock())
        if offset is not None:
            self.clock_offset = offset
        retry_after = (
            proto.parse_retry_after(
                retry_after_header, now=self._wall_clock(), cap=_RETRY_AFTER_LIMIT
            )
            if retry_after_header is not None
            else None
        )
        # A 401 whose Date shows our X-Date was off is the auth flow's to send again.
        clock_skew = status == 401 and stamps.x_date_rejected_for_clock(
            headers.get("X-Date"), date_header
        )
        if skim and status == 200:
            skimmed = envelope.skim_unfinished(content)
            if skimmed is not None:
                return skimmed
        return envelope.decode_envelope(
            status, content, trace_id=trace_id, retry_after=retry_after,
            authorization=headers.get("Authorization"), auth=self._auth, clock_skew=clock_skew,
        )

    def _failure(
        self, request: str, exc: aiohttp.ClientError | HttpProcessingError,
        headers: dict[str, str],
    ) -> KooDriveError:
        """The error for aiohttp's ``exc``, in aiohttp's words but not the bytes it quotes:
        they are the server's, which may echo the Authorization sent, with spaces dropped
        or cut short, past what redaction finds (the rest is redacted too)."""
        cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
        text = cause.message if isinstance(cause, HttpProcessingError) else str(exc)
        text = " ".join(_QUOTED_BYTES.split(text, 1)[0].split()).rstrip(" :")
        found = envelope.secrets_of(self._auth, headers.get("Authorization"))
        words = redact(text, found)[:200] or type(exc).__name__
        # A body that does not inflate, or br or zstd without its package (which the C
        # parser reports as a bare HttpProcessingError): the same answer would come again.
        if isinstance(cause, ContentEncodingError) or (isinstance(cause, HttpProcessingError)
                and cause.message.startswith("Can not decode content-encoding")):
            return ResponseDecodeError(f"{request}: the answer's body does not decode: {words}")
        if isinstance(cause, HttpProcessingError):
            return TransportError(f"{request}: the answer is not valid HTTP: {words}")
        return TransportError(f"{request}: {type(exc).__name__}: {words}")

    def _client_timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        usual = self._usual_timeout
        if usual is not None and seconds == self._usual_seconds:
            return usual
        timeout = aiohttp.ClientTimeout(total=seconds)
        if usual is None:
            self._usual_seconds, self._usual_timeout = seconds, timeout
        return timeout


def _log_attempt(
    method: str, operation: str, status: int | None, attempt: int, started: float,
    trace_id: str,
) -> None:
    elapsed = time.perf_counter() - started
    logger.debug(
        "%s %s attempt %d: %s in %.3f s (trace id %s)", method, operation, attempt,
        "no answer" if status is None else f"HTTP {status}", elapsed, trace_id,
        extra={"koodrive.operation": operation, "koodrive.method": method,
               "koodrive.status": status, "koodrive.attempt": attempt,
               "koodrive.elapsed": elapsed, "koodrive.trace_id": trace_id},
    )


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of ``response``, decoded, refused once it grows past ``limit`` bytes.

    A body sent as it is, with a length, is read in one call (the fast path); any other
    (compressed, or of unknown length) is read chunk by chunk and counted as it is decoded.
    The cap holds for every status: an error page is read like any answer.

    Args:
        response: An answer whose body has not been read.
        limit: The most bytes to accept, once decoded.

    Returns:
        The decoded body.

    Raises:
        ResponseDecodeError: The body is larger than ``limit``. Reading stops there: the
            rest is neither received nor inflated, and the connection is closed, not reused.
            The error is not retried (not even for a 5xx), as a server that sent such a body
            will send it again.
        aiohttp.ClientError: The body could not be received or decoded (the caller maps it).
    """
    length = response.content_length
    encoding = response.headers.get("Content-Encoding")
    if length is not None and (encoding is None or encoding.strip().lower() == "identity"):
        if length > limit:
            raise ResponseDecodeError(
                f"HTTP {response.status} answer of {length} bytes is larger than "
                f"max_response_bytes ({limit}); not read"
            )
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            decoded = f" once decoded ({encoding[:32]})" if encoding else ""
            raise ResponseDecodeError(
                f"HTTP {response.status} answer is larger than max_response_bytes "
                f"({limit}){decoded}; stopped reading"
            )
        chunks.append(chunk)
    return b"".join(chunks)
