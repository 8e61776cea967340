"""Emulated jobs: their life over the emulator clock and their wire shape (camelCase dicts)."""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Sequence
from typing import Any

import attrs

from koodrive_async.testing import _wire
from koodrive_async.testing._clock import format_time14

PENDING, PROCESSING, COMPLETED, CANCELED = 0, 1, 2, 3
ALL_SUCCEEDED, PARTIALLY_FAILED, ALL_FAILED = 1, 2, 3
PACKAGE_DOWNLOAD = 6
DECOMPRESSION = 5
_NO_NEW_FILE_TYPES = frozenset({2, 7})  # delete and empty recycle bin leave no new file
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)
_FAILED_DESC = "file does not exist or cannot be processed"


@attrs.frozen(kw_only=True)
class JobDefaults:
    """How long jobs live unless told otherwise (seconds of the emulator clock).

    A job created over the wire (CreateJob) is pending for ``pending_for``, then processes
    for ``base_duration + per_file_duration * number_of_files``.
    """

    pending_for: float = 0.2
    """Seconds a new job stays pending (status 0)."""
    base_duration: float = 0.3
    """Seconds of processing (status 1) for a job with no files."""
    per_file_duration: float = 0.05
    """Extra seconds of processing per file."""
    cancel_after: float | None = None
    """Cancel every new job this long after creation (if still running); None: never."""
    file_size: int = 1024
    """Bytes of each file inside a package-download zip."""

    def duration(self, files: int) -> float:
        """Processing seconds for a job with ``files`` files."""
        return self.base_duration + self.per_file_duration * files


@attrs.frozen(kw_only=True)
class JobFile:
    """One file of a job, as given to CreateJob (or :meth:`KooDriveEmulator.add_job`)."""

    file_id: str
    file_path: str | None = None
    src_container_id: str | None = None
    fails: bool = False
    """Whether processing this file fails (taskInfos status "2")."""


def make_files(
    files: int | Sequence[str | JobFile], *, failed_files: int, src_container_id: str | None
) -> tuple[JobFile, ...]:
    """The files of a new job, from ``add_job``'s arguments.

    Args:
        files: A number of generated files, or file ids / :class:`JobFile` objects (an id
            containing ``"fail"`` fails).
        failed_files: How many of the last files fail.
        src_container_id: ``srcContainerId`` of each file that has none; None: leave them.

    Raises:
        ValueError: a negative count, or ``failed_files`` out of range.
    """
    if isinstance(files, int):
        if files < 0:
            raise ValueError(f"files must be >= 0, got {files!r}")
        items = [
            JobFile(file_id=f"file-{i}", file_path=f"/emulator/file-{i}.txt")
            for i in range(1, files + 1)
        ]
    else:
        items = [
            f if isinstance(f, JobFile) else JobFile(file_id=f, fails="fail" in f) for f in files
        ]
    if not 0 <= failed_files <= len(items):
        raise ValueError(f"failed_files must be between 0 and {len(items)}")
    if src_container_id is not None:
        items = [
            attrs.evolve(f, src_container_id=f.src_container_id or src_container_id) for f in items
        ]
    for index in range(len(items) - failed_files, len(items)):
        items[index] = attrs.evolve(items[index], fails=True)
    return tuple(items)


@attrs.frozen
class JobState:
    """The state of a job at one instant."""

    status: int
    progress: int
    done: int
    """How many files (in order) have been processed."""


def _hex_id(*parts: str) -> str:
    return "F" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


@attrs.define(kw_only=True, eq=False)
class EmulatedJob:
    """A job held by the emulator. Read its attributes; change it through the emulator."""

    job_id: str
    task_type: int
    action_type: int | None
    files: tuple[JobFile, ...]
    user_id: str
    tenant_id: str
    container_id: str | None
    created_at: float
    """Emulator clock (monotonic seconds) at creation."""
    created_wall: float
    """Server wall clock (epoch seconds, skew included) at creation."""
    pending_for: float
    duration: float
    cancel_after: float | None = None
    canceled_at: float | None = None
    """Emulator clock when CancelJob (or :meth:`KooDriveEmulator.cancel_job`) hit it."""
    task_name: str | None = None
    new_file_path: str | None = None
    uncompress_paths: tuple[str, ...] = ()
    share_folder_id: str | None = None
    """The ``x-hw-share-folder-id`` header CreateJob carried."""
    language: str | None = None
    """The ``language`` header CreateJob carried."""
    request_body: dict[str, Any] | None = None
    """The CreateJob body as sent; None for a job from ``add_job``."""
    _package: bytes | None = attrs.field(default=None, init=False, repr=False)

    @property
    def finishes_at(self) -> float:
        """Emulator clock at which the job completes unless canceled before."""
        return self.created_at + self.pending_for + self.duration

    @property
    def cancels_at(self) -> float | None:
        """Emulator clock at which the job is (or will be) canceled, if before completion."""
        moments = [m for m in (self.canceled_at, self._auto_cancel_at()) if m is not None]
        if not moments or min(moments) >= self.finishes_at:
            return None
        return min(moments)

    def _auto_cancel_at(self) -> float | None:
        return None if self.cancel_after is None else self.created_at + self.cancel_after

    def _progress_at(self, moment: float) -> int:
        elapsed = moment - self.created_at - self.pending_for
        if elapsed <= 0:
            return 0
        if self.duration <= 0:
            return 99
        return min(99, int(100 * elapsed / self.duration))

    def state(self, now: float) -> JobState:
        """The job's state at emulator clock ``now``."""
        cancels_at = self.cancels_at
        if cancels_at is not None and cancels_at <= now:
            status, progress = CANCELED, self._progress_at(cancels_at)
        elif now >= self.finishes_at:
            return JobState(COMPLETED, 100, len(self.files))
        elif now >= self.created_at + self.pending_for:
            status, progress = PROCESSING, self._progress_at(now)
        else:
            return JobState(PENDING, 0, 0)
        return JobState(status, progress, len(self.files) * progress // 100)

    def _wall(self, moment: float) -> str:
        return format_time14(self.created_wall + (moment - self.created_at))

    def result_code(self, state: JobState) -> int:
        """``taskResultCode`` for a terminal state."""
        if not self.files:
            return ALL_SUCCEEDED
        succeeded = sum(1 for f in self.files[: state.done] if not f.fails)
        if succeeded == len(self.files):
            return ALL_SUCCEEDED
        return ALL_FAILED if succeeded == 0 else PARTIALLY_FAILED

    def job_info(self, state: JobState, download_url: str | None) -> dict[str, Any]:
        """``jobInfo`` (also a GetJobList item) for ``state``."""
        info: dict[str, Any] = {"taskId": self.job_id}
        if self.task_name is not None:
            info["taskName"] = self.task_name
        info["userId"] = self.user_id
        info["taskType"] = self.task_type
        if self.action_type is not None:
            info["actionType"] = self.action_type
        info["status"] = state.status
        info["progress"] = state.progress
        terminal = state.status in (COMPLETED, CANCELED)
        if terminal:
            info["taskResultCode"] = self.result_code(state)
            info["resultCode"] = 0
        if download_url is not None:
            info["downloadUrl"] = download_url
        info["contentNum"] = len(self.files)
        if self.container_id is not None:
            info["containerId"] = self.container_id
        info["tenantId"] = self.tenant_id
        begin = self.created_at + self.pending_for
        if state.status != PENDING and (self.cancels_at is None or self.cancels_at > begin):
            info["beginTime"] = self._wall(begin)
        if terminal:
            end = self.finishes_at if state.status == COMPLETED else self.cancels_at
            assert end is not None
            info["endTime"] = self._wall(end)
        info["createTime"] = self._wall(self.created_at)
        return info

    def task_infos(self, state: JobState) -> list[dict[str, Any]]:
        """``taskInfos`` for ``state``: files processed so far show their outcome."""
        create_time = self._wall(self.created_at)
        items = []
        for index, file in enumerate(self.files):
            item: dict[str, Any] = {"id": self.job_id, "fileId": file.file_id}
            if file.file_path is not None:
                item["filePath"] = file.file_path
            if index >= state.done:
                item["status"] = "0"
            elif file.fails:
                item["status"] = "2"
                item["resultCode"] = str(_wire.FILE_NOT_FOUND)
                item["resultDesc"] = _FAILED_DESC
            else:
                item["status"] = "1"
                if self.task_type not in _NO_NEW_FILE_TYPES:
                    item["newFileId"] = _hex_id(self.job_id, file.file_id)
                    item["newFilePath"] = posixpath.join(
                        self.new_file_path or "/", _base_name(file)
                    )
            if file.src_container_id is not None:
                item["srcContainerId"] = file.src_container_id
            item["tenantId"] = self.tenant_id
            item["createTime"] = create_time
            items.append(item)
        return items

    def has_package(self, state: JobState) -> bool:
        """Whether a package download is ready (completed with at least one file)."""
        return (
            self.task_type == PACKAGE_DOWNLOAD
            and state.status == COMPLETED
            and self.result_code(state) != ALL_FAILED
        )

    def detail(self, state: JobState, download_url: str | None) -> dict[str, Any]:
        """GetJobDetail's ``data`` for ``state``."""
        data: dict[str, Any] = {
            "jobInfo": self.job_info(state, download_url),
            "taskInfos": self.task_infos(state),
        }
        if self.task_type == DECOMPRESSION and state.status == COMPLETED:
            data["uncompressedFileList"] = self._uncompressed(state)
        return data

    def _uncompressed(self, state: JobState) -> list[dict[str, Any]]:
        if self.result_code(state) == ALL_FAILED:
            return []
        updated_at = int(self.created_wall * 1000)

        def entry(
            name: str, size: int = 0, children: list[dict[str, Any]] | None = None
        ) -> dict[str, Any]:
            item: dict[str, Any] = {
                "containerId": self.container_id,
                "fileId": _hex_id(self.job_id, name),
                "name": name,
                "fileSize": size,
                "type": 1 if children is None else 2,
                "updatedAt": updated_at,
            }
            if children is not None:
                item["subFileList"] = children
            if "fail" in name:
                item.pop("fileId")
                item["reason"] = "decompression failed: damaged entry"
                item["code"] = str(_wire.FILE_NOT_FOUND)
            return item

        if self.uncompress_paths:
            return [
                entry(p.rstrip("/"), children=[]) if p.endswith("/") else entry(p, 512)
                for p in self.uncompress_paths
            ]
        return [
            entry(
                "docs",
                children=[
                    entry("docs/readme.txt", 120),
                    entry("docs/images", children=[entry("docs/images/logo.png", 2048)]),
                ],
            ),
            entry("data.csv", 4096),
        ]

    def package(self, file_size: int) -> bytes:
        """The package-download zip: one deterministic entry per succeeded file."""
        if self._package is None:
            buffer = io.BytesIO()
            seen: set[str] = set()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
                for file in self.files:
                    if file.fails:
                        continue
                    name = _unique(_base_name(file), seen)
                    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                    archive.writestr(info, package_content(self.job_id, file.file_id, file_size))
            self._package = buffer.getvalue()
        return self._package


def package_content(job_id: str, file_id: str, size: int) -> bytes:
    """The deterministic content of one file inside a package-download zip."""
    line = f"KooDrive emulator: job {job_id}, file {file_id}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _base_name(file: JobFile) -> str:
    return posixpath.basename((file.file_path or "").rstrip("/")) or file.file_id


def _unique(name: str, seen: set[str]) -> str:
    candidate, number = name, 1
    while candidate in seen:
        number += 1
        candidate = f"{name} ({number})"
    seen.add(candidate)
    return candidate
