"""The data of the batch-task API as frozen attrs classes.

Attribute names are the snake_case of the documented wire names, so the official tables read
straight across (``jobInfo.taskResultCode`` is ``JobDetail.job_info.task_result_code``). The
models know nothing of the wire format: ``_convert`` does every rename and every coercion.
Every field is optional, as the service omits many: a missing value is None, a missing list
an empty tuple. An enum value this version does not know is kept as the raw value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from .errors import JobCanceledError, JobFailedError

__all__ = [
    "ActionType",
    "FileRef",
    "FileType",
    "JobDetail",
    "JobInfo",
    "JobResult",
    "JobStatus",
    "TaskInfo",
    "TaskResultCode",
    "TaskStatus",
    "TaskType",
    "UncompressedFileInfo",
]


class JobStatus(enum.IntEnum):
    """``jobInfo.status``. There is no "failed" status: see ``taskResultCode``."""

    PENDING = 0
    PROCESSING = 1
    COMPLETED = 2
    CANCELED = 3

    @property
    def terminal(self) -> bool:
        """True for COMPLETED and CANCELED: the job will not change any more."""
        return self in _TERMINAL_STATUSES

    @classmethod
    def is_terminal(cls, status: object) -> bool:
        """Whether a status, a member or a raw value, means the job has ended.

        The one definition of "terminal": completed (2) and canceled (3). A status this
        version does not know (say 7) is kept raw and is *not* terminal: the job is taken to
        be still running, with its progress unknown, and waited on as such.
        """
        return status in _TERMINAL_STATUSES

    @classmethod
    def is_known(cls, status: object) -> bool:
        """Whether this version knows the status (0 to 3), as a member or a raw value."""
        return status in cls._value2member_map_


_TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.CANCELED})


class TaskResultCode(enum.IntEnum):
    """``jobInfo.taskResultCode``, meaningful once the job is terminal."""

    ALL_SUCCEEDED = 1
    PARTIALLY_FAILED = 2
    ALL_FAILED = 3


class TaskType(enum.IntEnum):
    """``jobInfo.taskType`` and CreateJob's ``taskType``."""

    COPY = 1
    DELETE = 2
    MOVE = 3
    RESTORE = 4
    DECOMPRESS = 5
    PACKAGE_DOWNLOAD = 6
    EMPTY_RECYCLE_BIN = 7


class ActionType(enum.IntEnum):
    """``jobInfo.actionType`` and CreateJob's ``actionType``."""

    COPY = 101
    DELETE_TO_RECYCLE_BIN = 201
    DELETE_PERMANENTLY = 202
    MOVE = 301
    LIST_ARCHIVE = 501
    EXTRACT_ALL = 502
    EXTRACT_SELECTED = 503
    EMPTY_RECYCLE_BIN = 701


class TaskStatus(enum.StrEnum):
    """``taskInfos[].status``: a string on the wire."""

    PENDING = "0"
    SUCCEEDED = "1"
    FAILED = "2"


class FileType(enum.IntEnum):
    """``uncompressedFileList[].type``."""

    FILE = 1
    DIRECTORY = 2


@attrs.frozen
class FileRef:
    """A file a new job acts on: CreateJob's ``taskInfo.fileInfo[]``.

    Attributes:
        file_id: The file or directory id.
        file_path: Its full path; required to delete to the recycle bin (action 201), or a
            later restore from the recycle bin breaks.
    """

    file_id: str
    file_path: str | None = None


@attrs.frozen
class JobInfo:
    """One job: ``data.jobInfo`` of GetJobDetail, and one item of GetJobList."""

    task_id: str | None = None
    task_name: str | None = None
    user_id: str | None = None
    task_type: TaskType | int | None = None
    action_type: ActionType | int | None = None
    status: JobStatus | int | None = None
    task_result_code: TaskResultCode | int | None = None
    result_code: int | str | None = None
    #: Percent done, 0 to 100.
    progress: int | None = None
    #: Package downloads only, once completed.
    download_url: str | None = None
    content_num: int | None = None
    container_id: str | None = None
    tenant_id: str | None = None
    #: The service's 14-digit local times, parsed; naive because the zone is not stated.
    begin_time: datetime | None = None
    end_time: datetime | None = None
    create_time: datetime | None = None

    @property
    def terminal(self) -> bool:
        """True once the status is completed (2) or canceled (3); see JobStatus.is_terminal."""
        return JobStatus.is_terminal(self.status)


_M = TypeVar("_M", bound=attrs.AttrsInstance)


def defaults_on_class(cls: type[_M]) -> type[_M]:
    """Each field's default as a class attribute too (attrs removes them): an instance's
    ``__dict__`` may then leave out a field at its default, as the decoder's do."""
    for field in attrs.fields(cls):
        setattr(cls, field.name, field.default)
    return cls


# TaskInfo and UncompressedFileInfo come by the thousand in one answer: without slots, the
# decoder stores only the fields a document has, as dict keys, faster than setting each slot.
@defaults_on_class
@attrs.frozen(slots=False)
class TaskInfo:
    """The result for one file of a job: ``data.taskInfos[]``."""

    id: str | None = None
    file_id: str | None = None
    file_path: str | None = None
    status: TaskStatus | str | None = None
    new_file_id: str | None = None
    new_file_path: str | None = None
    src_container_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    tenant_id: str | None = None
    create_time: datetime | None = None


@defaults_on_class
@attrs.frozen(slots=False)
class UncompressedFileInfo:
    """One entry of an archive listing (decompression jobs): ``data.uncompressedFileList[]``.

    ``name`` is the path inside the archive as the server sent it: never trust it as a local
    path.
    """

    container_id: str | None = None
    file_id: str | None = None
    name: str | None = None
    #: Bytes.
    file_size: int | None = None
    type: FileType | int | None = None
    #: From epoch milliseconds, in UTC.
    updated_at: datetime | None = None
    sub_file_list: tuple[UncompressedFileInfo, ...] = ()
    reason: str | None = None
    code: str | None = None
    #: The wire's ``reservatioinInfo`` (sic). Left out of the hash: a mapping is not hashable.
    reservation_info: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen
class JobDetail:
    """The answer of GetJobDetail: ``data``."""

    job_info: JobInfo | None = None
    task_infos: tuple[TaskInfo, ...] = ()
    uncompressed_file_list: tuple[UncompressedFileInfo, ...] = ()

    @property
    def status(self) -> JobStatus | int | None:
        """``job_info.status``, or None without a job_info."""
        return self.job_info.status if self.job_info is not None else None

    @property
    def progress(self) -> int | None:
        """``job_info.progress``, or None."""
        return self.job_info.progress if self.job_info is not None else None

    @property
    def terminal(self) -> bool:
        """True once the job is completed or canceled."""
        return self.job_info is not None and self.job_info.terminal


@attrs.frozen
class JobResult:
    """How a job ended, as returned by ``wait_for_job``.

    Attributes:
        job_id: The job waited on.
        detail: The terminal JobDetail.
        polls: GetJobDetail answers received during the wait.
        elapsed: Seconds from the start of the wait to its end.
    """

    job_id: str
    detail: JobDetail
    polls: int = 0
    elapsed: float = 0.0

    @property
    def status(self) -> JobStatus | int | None:
        """The terminal status: COMPLETED or CANCELED."""
        return self.detail.status

    @property
    def canceled(self) -> bool:
        """True when the job ended canceled."""
        return self.detail.status == JobStatus.CANCELED

    @property
    def download_url(self) -> str | None:
        """The package's ``downloadUrl`` (package-download jobs), else None."""
        info = self.detail.job_info
        return info.download_url if info is not None else None

    @property
    def task_result_code(self) -> TaskResultCode | int | None:
        """``taskResultCode``: all succeeded, partially failed or all failed."""
        info = self.detail.job_info
        return info.task_result_code if info is not None else None

    @property
    def succeeded(self) -> tuple[TaskInfo, ...]:
        """The files whose status is succeeded ("1")."""
        return tuple(t for t in self.detail.task_infos if t.status == TaskStatus.SUCCEEDED)

    @property
    def failed(self) -> tuple[TaskInfo, ...]:
        """The files whose status is failed ("2")."""
        return tuple(t for t in self.detail.task_infos if t.status == TaskStatus.FAILED)

    @property
    def ok(self) -> bool:
        """Completed, with no failed file and no failure in ``taskResultCode``."""
        return (
            self.detail.status == JobStatus.COMPLETED
            and self.task_result_code
            not in (TaskResultCode.PARTIALLY_FAILED, TaskResultCode.ALL_FAILED)
            and not self.failed
        )

    @property
    def outcome(self) -> Literal["ok", "partially_failed", "failed", "canceled"]:
        """How the job ended, in one word (the word spans, metrics and Temporal use):
        ``ok``; ``canceled``; ``failed`` when ``taskResultCode`` says all failed, or when it
        is absent and every file failed; else ``partially_failed``."""
        if self.canceled:
            return "canceled"
        if self.ok:
            return "ok"
        code = self.task_result_code
        if code == TaskResultCode.ALL_FAILED or (code is None and self.failed
                                                 and not self.succeeded):
            return "failed"
        return "partially_failed"

    def raise_for_outcome(self) -> JobResult:
        """Return self when ``ok``; raise otherwise.

        Raises:
            JobCanceledError: The job ended canceled.
            JobFailedError: The job completed with failed files.
        """
        if self.canceled:
            raise JobCanceledError(f"job {self.job_id} was canceled", result=self)
        if not self.ok:
            failed = self.failed
            raise JobFailedError(
                f"job {self.job_id} completed with {len(failed)} failed file(s)"
                f" (taskResultCode={self.task_result_code!s})",
                result=self,
            )
        return self
