"""koodrive_async: an asyncio client for the KooDrive batch-task API.

Look up batch jobs, create and cancel them, and wait for them to end::

    import koodrive_async as kd

    async with kd.KooDriveClient(base_url, user_id=..., auth=kd.TokenAuth(token)) as client:
        detail = await client.get_job(job_id)
"""

import logging as _logging

from ._convert import from_wire, to_wire
from .auth import AppAuth, TokenAuth
from .client import KooDriveClient
from .config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    PollPolicy,
    RetryPolicy,
)
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CallbackError,
    ClientClosedError,
    ConnectError,
    InvalidJobIdError,
    JobCanceledError,
    JobFailedError,
    JobStalledError,
    KooDriveError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    TokenProviderError,
    TransportError,
    WaitEndedError,
    WaitTimeoutError,
)
from .fanout import DEFAULT_CONCURRENCY, DEFAULT_MAX_WAITS
from .models import (
    ActionType,
    FileRef,
    FileType,
    JobDetail,
    JobInfo,
    JobResult,
    JobStatus,
    TaskInfo,
    TaskResultCode,
    TaskStatus,
    TaskType,
    UncompressedFileInfo,
)
from .waiter import DEFAULT_WAIT_TIMEOUT

__version__ = "0.1.0"

# The library logs; the application decides where to (botocore's and stamina's way).
_logging.getLogger("koodrive_async").addHandler(_logging.NullHandler())

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_WAITS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "APIError",
    "ActionType",
    "AppAuth",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ClientClosedError",
    "ConnectError",
    "FileRef",
    "FileType",
    "InvalidJobIdError",
    "JobCanceledError",
    "JobDetail",
    "JobFailedError",
    "JobInfo",
    "JobResult",
    "JobStalledError",
    "JobStatus",
    "KooDriveClient",
    "KooDriveError",
    "NotFoundError",
    "PollPolicy",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "TaskInfo",
    "TaskResultCode",
    "TaskStatus",
    "TaskType",
    "TokenAuth",
    "TokenProviderError",
    "TransportError",
    "UncompressedFileInfo",
    "WaitEndedError",
    "WaitTimeoutError",
    "__version__",
    "from_wire",
    "to_wire",
]
