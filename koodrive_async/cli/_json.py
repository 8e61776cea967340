"""Models and outcomes as JSON documents for ``--json``: the wire's own camelCase names.

One document per job, one per line, so ``jq`` and ``while read`` both work. Nothing here
can carry a secret: documents are built from job data and error attributes only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from koodrive_async._convert import wire_name
from koodrive_async.errors import APIError, JobStalledError, KooDriveError, WaitTimeoutError
from koodrive_async.models import JobResult, TaskInfo

from ._exit import Outcome, classify

__all__ = ["dumps", "error_document", "outcome_document", "to_document"]


def to_document(value: Any) -> Any:
    """A model (or a value inside one) as plain JSON data, keys as on the wire."""
    if attrs.has(type(value)):
        cls = type(value)
        document: dict[str, Any] = {}
        for field in attrs.fields(cls):
            item = getattr(value, field.name)
            if item is None or item == ():
                continue
            document[wire_name(cls, field.name)] = to_document(item)
        return document
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_document(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_document(item) for key, item in value.items()}
    return value


def error_document(error: BaseException) -> dict[str, Any]:
    """``{"type", "message"}`` plus, for an APIError, its status, code and trace id."""
    document: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        document["httpStatus"] = error.http_status
        if error.code is not None:
            document["code"] = error.code
        if error.trace_id is not None:
            document["traceId"] = error.trace_id
    return document


def _failed_file(task: TaskInfo) -> dict[str, Any]:
    document: dict[str, Any] = to_document(task)
    return {
        key: document[key]
        for key in ("fileId", "filePath", "resultCode", "resultDesc")
        if key in document
    }


def outcome_document(job_id: str, outcome: JobResult | KooDriveError) -> dict[str, Any]:
    """One job's wait: ``jobId``, ``outcome``, and the result or the error."""
    kind = classify(outcome)
    document: dict[str, Any] = {"jobId": job_id, "outcome": kind.value}
    if isinstance(outcome, JobResult):
        info = outcome.detail.job_info
        document.update(
            status=to_document(outcome.status),
            taskResultCode=to_document(outcome.task_result_code),
            progress=info.progress if info is not None else None,
            downloadUrl=outcome.download_url,
            succeeded=len(outcome.succeeded),
            failed=len(outcome.failed),
            failedFiles=[_failed_file(task) for task in outcome.failed],
            polls=outcome.polls,
            elapsed=round(outcome.elapsed, 3),
            detail=to_document(outcome.detail),
        )
    else:
        document["error"] = error_document(outcome)
        if isinstance(outcome, WaitTimeoutError | JobStalledError) and outcome.last is not None:
            document["last"] = to_document(outcome.last)
    if kind is Outcome.ERROR:
        document.pop("downloadUrl", None)
    return document


def dumps(document: Any) -> str:
    """One line of JSON (no newline inside), keys in the order built."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
