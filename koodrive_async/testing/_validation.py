"""Request validation for CreateJob, GetJobList and CancelJob: raises ApiError(400, 13000102)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from koodrive_async.testing import _wire
from koodrive_async.testing._jobs import JobFile

LOGICAL_DELETE = 201
MAX_LIMIT = 100
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _invalid(field: str, problem: str) -> _wire.ApiError:
    return _wire.ApiError(400, _wire.PARAMETER_INVALID, f"parameter invalid: {field} {problem}")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _wire.ApiError(400, _wire.BAD_REQUEST, "request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _wire.ApiError(400, _wire.BAD_REQUEST, "request body must be a JSON object")
    return document


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(container: Mapping[str, Any], key: str, field: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(field, "must be a string")
    return value


def _required_str(container: Mapping[str, Any], key: str, field: str) -> str:
    value = _optional_str(container, key, field)
    if not value:
        raise _invalid(field, "is required")
    return value


@attrs.frozen(kw_only=True)
class CreateJobRequest:
    """A validated CreateJob body."""

    task_type: int
    action_type: int | None
    dst_container_id: str
    src_container_id: str
    files: tuple[JobFile, ...]
    new_file_path: str | None
    uncompress_paths: tuple[str, ...]
    document: dict[str, Any]
    """The body as sent."""


def parse_create_job(body: bytes) -> CreateJobRequest:
    """Validate a CreateJob body; a file whose id or path contains "fail" will fail."""
    document = parse_json_object(body)
    task_type = document.get("taskType")
    if task_type is None:
        raise _invalid("taskType", "is required")
    if not _is_int(task_type):
        raise _invalid("taskType", "must be an integer")
    action_type = document.get("actionType")
    if action_type is not None and not _is_int(action_type):
        raise _invalid("actionType", "must be an integer")
    task_info = document.get("taskInfo")
    if task_info is None:
        raise _invalid("taskInfo", "is required")
    if not isinstance(task_info, dict):
        raise _invalid("taskInfo", "must be an object")
    src_container_id = _required_str(task_info, "srcContainerId", "taskInfo.srcContainerId")
    dst_container_id = _required_str(document, "dstContainerId", "dstContainerId")
    new_file_path = _optional_str(task_info, "newFilePath", "taskInfo.newFilePath")
    _optional_str(document, "password", "password")

    file_info = task_info.get("fileInfo", [])
    if not isinstance(file_info, list):
        raise _invalid("taskInfo.fileInfo", "must be an array")
    files = []
    for index, item in enumerate(file_info):
        field = f"taskInfo.fileInfo[{index}]"
        if not isinstance(item, dict):
            raise _invalid(field, "must be an object")
        file_id = _required_str(item, "fileId", f"{field}.fileId")
        file_path = _optional_str(item, "filePath", f"{field}.filePath")
        if action_type == LOGICAL_DELETE and not file_path:
            raise _invalid(f"{field}.filePath", "is required for actionType 201")
        fails = "fail" in file_id or "fail" in (file_path or "")
        files.append(
            JobFile(
                file_id=file_id,
                file_path=file_path,
                src_container_id=src_container_id,
                fails=fails,
            )
        )

    paths = task_info.get("uncompressFilePaths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise _invalid("taskInfo.uncompressFilePaths", "must be an array of strings")
    return CreateJobRequest(
        task_type=task_type,
        action_type=action_type,
        dst_container_id=dst_container_id,
        src_container_id=src_container_id,
        files=tuple(files),
        new_file_path=new_file_path,
        uncompress_paths=tuple(paths),
        document=document,
    )


def parse_cancel_job(body: bytes) -> str:
    """Validate a CancelJob body; returns the job id."""
    return _required_str(parse_json_object(body), "jobId", "jobId")


@attrs.frozen(kw_only=True)
class ListQuery:
    """A validated GetJobList query."""

    task_type: int | None
    status: int | None
    offset: int
    limit: int


def _query_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _INTEGER.fullmatch(raw):
        raise _invalid(name, "must be an integer")
    return int(raw)


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """Validate GetJobList's query: ``offset`` >= 0 and ``limit`` 1..100 required."""
    offset = _query_int(query, "offset")
    if offset is None:
        raise _invalid("offset", "is required")
    limit = _query_int(query, "limit")
    if limit is None:
        raise _invalid("limit", "is required")
    if offset < 0:
        raise _invalid("offset", "must be >= 0")
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return ListQuery(
        task_type=_query_int(query, "type"),
        status=_query_int(query, "status"),
        offset=offset,
        limit=limit,
    )
