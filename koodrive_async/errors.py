"""The exceptions of koodrive_async: one tree, so ``except KooDriveError`` catches them all.

::

    KooDriveError
    ├── TransportError              no HTTP answer (reset, timeout, framing ...)
    │   ├── ConnectError            the connection could not be opened: nothing was sent
    │   └── RequestTimeoutError     no answer in time; also a TimeoutError
    ├── APIError                    .http_status .code .msg .trace_id .retry_after
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429
    │   └── ServerError             5xx, and the transient business code 13000201
    ├── ResponseDecodeError         a 2xx answer not of the documented shape; any too large
    ├── InvalidJobIdError           a job id that could change the path; also a ValueError
    ├── TokenProviderError          the token provider raised, timed out or gave no usable token
    ├── ClientClosedError           a call on a closed client; also a RuntimeError
    ├── CallbackError               an on_progress / on_checkpoint callback raised
    ├── WaitEndedError              a wait stopped before the job ended: .job_id .last .state
    │   ├── WaitTimeoutError        the wait's deadline passed; also a TimeoutError
    │   └── JobStalledError         no change of progress or status for stall_timeout
    ├── JobCanceledError            raise_for_outcome() on a canceled job
    └── JobFailedError              raise_for_outcome() on a job with failed files

Messages never contain a token, a secret or a signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import JobDetail, JobResult

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ClientClosedError",
    "ConnectError",
    "InvalidJobIdError",
    "JobCanceledError",
    "JobFailedError",
    "JobStalledError",
    "KooDriveError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ServerError",
    "TokenProviderError",
    "TransportError",
    "WaitEndedError",
    "WaitTimeoutError",
]


class KooDriveError(Exception):
    """Base class of every error raised by koodrive_async."""


class TransportError(KooDriveError):
    """The request got no HTTP answer: connection refused or dropped, DNS, TLS."""


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS, TLS): the request certainly did not
    leave, so any request, a CreateJob included, is safe to send again."""


class RequestTimeoutError(TransportError, TimeoutError):
    """No answer within the request timeout."""


class APIError(KooDriveError):
    """The server answered with an error: a non-2xx status or an envelope ``code`` other than 0.

    Attributes:
        http_status: The HTTP status of the answer.
        code: The business code (an int such as 13000102, or a string such as an ``APIGW``
            gateway code), or None when the body carried none.
        msg: The server's message (localised; for display, never for comparison).
        trace_id: The ``X-Traceid`` sent with the request, to quote to support.
        retry_after: Seconds the server asked us to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: int | str | None = None,
        msg: str | None = None,
        trace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.trace_id = trace_id
        self.retry_after = retry_after


class BadRequestError(APIError):
    """HTTP 400: the request was refused (bad parameters, missing file, no permission ...)."""


class AuthenticationError(APIError):
    """HTTP 401: the token, the signature, ``X-User-Id`` or ``X-Date`` was not accepted.

    Attributes:
        clock_skew: True when the answer's ``Date`` shows that the ``X-Date`` sent was outside
            the server's window (our clock ahead of the server's, or more than 15 min behind).
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: int | str | None = None,
        msg: str | None = None,
        trace_id: str | None = None,
        retry_after: float | None = None,
        clock_skew: bool = False,
    ) -> None:
        super().__init__(message, http_status=http_status, code=code, msg=msg,
                         trace_id=trace_id, retry_after=retry_after)
        self.clock_skew = clock_skew


class NotFoundError(APIError):
    """HTTP 404: no such job (or endpoint)."""


class RateLimitError(APIError):
    """HTTP 429: too many requests; ``retry_after`` says how long to wait when the server said."""


class ServerError(APIError):
    """HTTP 5xx, or the transient business code 13000201 (internal invoke failure)."""


class ResponseDecodeError(KooDriveError):
    """A 2xx answer whose body is not the documented shape, or any answer larger than
    ``max_response_bytes`` once decoded (not retried: it would come again).

    Attributes:
        problems: Where the document differs, one line each (``$.data.jobInfo.status: ...``).
    """

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class InvalidJobIdError(KooDriveError, ValueError):
    """A job id that is empty, not a string, or could change the request path.

    Raised before any request; a ValueError for callers, and a KooDriveError so that the
    fan-out can report it as the outcome of that id.
    """


class TokenProviderError(KooDriveError):
    """The token provider raised, ran past the call's time, or returned something that is not
    a usable token (empty, not a str, a control character). ``__cause__`` holds the
    provider's own exception. Not cached: the next request asks the provider again."""


class ClientClosedError(KooDriveError, RuntimeError):
    """A call on a closed client, one in flight when it was closed, or a call from another
    event loop than the one the client belongs to (the first that used it)."""


class CallbackError(KooDriveError):
    """An ``on_progress`` or ``on_checkpoint`` callback raised; ``__cause__`` holds its
    exception. In a fan-out it is that job's outcome, never the end of the stream.

    Attributes:
        job_id: The job whose wait called the callback.
    """

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class WaitEndedError(KooDriveError):
    """A wait that stopped before the job ended: what it saw, and how to resume it."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        last: JobDetail | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.last = last
        self.state = state


class WaitTimeoutError(WaitEndedError, TimeoutError):
    """The wait's deadline passed before the job ended.

    Attributes:
        job_id: The job waited on.
        last: The last JobDetail seen, or None when no poll succeeded.
        state: A JSON-serialisable dict that ``wait_for_job(..., resume=state)`` accepts.
    """


class JobStalledError(WaitEndedError):
    """Neither progress nor status changed for ``stall_timeout`` seconds.

    Attributes:
        job_id: The job waited on.
        last: The last JobDetail seen.
        state: A JSON-serialisable dict that ``wait_for_job(..., resume=state)`` accepts.
    """


class JobCanceledError(KooDriveError):
    """The job ended canceled. ``result`` is its JobResult."""

    def __init__(self, message: str, *, result: JobResult) -> None:
        super().__init__(message)
        self.result = result


class JobFailedError(KooDriveError):
    """The job completed with failed files. ``result`` is its JobResult."""

    def __init__(self, message: str, *, result: JobResult) -> None:
        super().__init__(message)
        self.result = result
