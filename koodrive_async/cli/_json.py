"""Models and outcomes as JSON documents for ``--json``, in the wire's own names and formats.

Job data is written by ``kd.to_wire``, the client's own converter, so a document reads as the
API's answer does (``jobInfo.status`` the int, ``taskInfos[].status`` the string, times as
``yyyyMMddHHmmss``). One document per job, one per line, so ``jq`` and ``while read`` both
work. Nothing here can carry a secret: documents are built from job data and error attributes.
"""

from __future__ import annotations

import json
from typing import Any

import koodrive_async as kd

from ._exit import Outcome, classify

__all__ = ["dumps", "error_document", "outcome_document"]

_FAILED_FILE_KEYS = ("fileId", "filePath", "resultCode", "resultDesc")


def error_document(error: BaseException) -> dict[str, Any]:
    """``{"type", "message"}`` plus, for an APIError, its status, code and trace id."""
    document: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, kd.APIError):
        document["httpStatus"] = error.http_status
        if error.code is not None:
            document["code"] = error.code
        if error.trace_id is not None:
            document["traceId"] = error.trace_id
    return document


def _failed_file(task: kd.TaskInfo) -> dict[str, Any]:
    wire = kd.to_wire(task)
    return {key: wire[key] for key in _FAILED_FILE_KEYS if key in wire}


def outcome_document(job_id: str, outcome: kd.JobResult | kd.KooDriveError) -> dict[str, Any]:
    """One job's wait: ``jobId``, ``outcome``, and the result or the error."""
    kind = classify(outcome)
    document: dict[str, Any] = {"jobId": job_id, "outcome": kind.value}
    if isinstance(outcome, kd.JobResult):
        detail = kd.to_wire(outcome.detail)
        info = detail.get("jobInfo", {})
        document.update(
            status=info.get("status"),
            taskResultCode=info.get("taskResultCode"),
            progress=info.get("progress"),
            downloadUrl=outcome.download_url,
            succeeded=len(outcome.succeeded),
            failed=len(outcome.failed),
            failedFiles=[_failed_file(task) for task in outcome.failed],
            polls=outcome.polls,
            elapsed=round(outcome.elapsed, 3),
            detail=detail,
        )
    else:
        document["error"] = error_document(outcome)
        if isinstance(outcome, kd.WaitEndedError) and outcome.last is not None:
            document["last"] = kd.to_wire(outcome.last)
    if kind is Outcome.ERROR:
        document.pop("downloadUrl", None)
    return document


def dumps(document: Any) -> str:
    """One line of JSON (no newline inside), keys in the order built."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
