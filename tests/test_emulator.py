"""The KooDrive emulator, tested over real sockets with plain aiohttp (not our client)."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
import pytest

import koodrive_async.testing as testing
from koodrive_async.testing import (
    Fault,
    FaultKind,
    JobDefaults,
    JobFile,
    KooDriveEmulator,
    ManualClock,
)

WALL_START = 1_762_153_300.0  # 2025-11-03T07:01:40Z
API = "/koodrive/ose/v1"
JSON = dict[str, Any]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def wall() -> ManualClock:
    return ManualClock(WALL_START)


@pytest.fixture
async def emu(clock: ManualClock, wall: ManualClock) -> AsyncIterator[KooDriveEmulator]:
    async with KooDriveEmulator(clock=clock, wall_clock=wall) as emulator:
        yield emulator


@pytest.fixture
async def session(emu: KooDriveEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.base_url) as client:
        yield client


async def call(
    session: aiohttp.ClientSession,
    emu: KooDriveEmulator,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """Send a well-authenticated request (``headers`` override) and decode the JSON answer."""
    sent = {**emu.auth_headers(), **(headers or {})}
    async with session.request(method, path, json=body, params=params, headers=sent) as resp:
        return resp.status, await resp.json(content_type=None)


async def detail(session: aiohttp.ClientSession, emu: KooDriveEmulator, job_id: str) -> JSON:
    status, payload = await call(session, emu, "GET", f"{API}/{job_id}")
    assert status == 200, payload
    assert payload["code"] == 0
    data: JSON = payload["data"]
    return data


def create_body(**overrides: Any) -> JSON:
    body: JSON = {
        "taskType": 1,
        "actionType": 101,
        "taskInfo": {
            "srcContainerId": "src",
            "fileInfo": [{"fileId": "a", "filePath": "/a.txt"}, {"fileId": "b"}],
        },
        "dstContainerId": "dst",
    }
    body.update(overrides)
    return body


# -- header checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer+", "Bearer ", "AT "])
async def test_token_schemes_are_accepted(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, scheme: str
) -> None:
    status, payload = await call(
        session,
        emu,
        "GET",
        f"{API}/jobs",
        params={"offset": "0", "limit": "10"},
        headers={"Authorization": scheme + emu.token},
    )
    assert (status, payload) == (200, {"code": 0, "msg": "OK", "data": []})


@pytest.mark.parametrize(
    ("headers", "http_status", "code", "msg_part"),
    [
        ({"Authorization": ""}, 401, testing.UNAUTHORIZED, "Authorization"),
        ({"Authorization": "test-token"}, 401, testing.UNAUTHORIZED, "Bearer"),
        ({"Authorization": "Bearer+nope"}, 401, testing.UNAUTHORIZED, "token"),
        ({"Authorization": "Basic dGVzdA=="}, 401, testing.UNAUTHORIZED, "Bearer"),
        ({"X-User-Id": ""}, 401, testing.UNAUTHORIZED, "X-User-Id"),
        ({"X-User-Id": "someone-else"}, 401, testing.UNAUTHORIZED, "X-User-Id"),
        ({"X-Date": ""}, 401, testing.UNAUTHORIZED, "X-Date"),
        ({"X-Date": "2025-11-03T07:01:40Z"}, 401, testing.UNAUTHORIZED, "X-Date"),
        ({"X-Date": "20251103T064540Z"}, 401, testing.UNAUTHORIZED, "too old"),
        ({"X-Date": "20251103T070141Z"}, 401, testing.UNAUTHORIZED, "later"),
        ({"X-Traceid": "a" * 57}, 400, testing.PARAMETER_INVALID, "X-Traceid"),
        ({"X-Traceid": "a" * 57 + "-"}, 400, testing.PARAMETER_INVALID, "X-Traceid"),
    ],
)
async def test_header_rejections(
    emu: KooDriveEmulator,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    http_status: int,
    code: int,
    msg_part: str,
) -> None:
    status, payload = await call(session, emu, "GET", f"{API}/123", headers=headers)
    assert status == http_status
    assert payload["code"] == code
    assert msg_part in payload["msg"]
    assert "data" not in payload


async def test_header_checks_pass_at_the_edges_of_the_x_date_window(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    for x_date in ("20251103T064640Z", "20251103T070140Z"):  # 15 min old, and exactly now
        status, _ = await call(session, emu, "GET", f"{API}/{job_id}", headers={"X-Date": x_date})
        assert status == 200
    emu.x_date_max_ahead = 5.0
    status, _ = await call(
        session, emu, "GET", f"{API}/{job_id}", headers={"X-Date": "20251103T070145Z"}
    )
    assert status == 200


async def test_a_valid_trace_id_passes_and_checks_run_in_order(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    status, _ = await call(
        session, emu, "GET", f"{API}/{job_id}", headers={"X-Traceid": "Ab_9" * 14 + "xy"}
    )
    assert status == 200
    # Everything is wrong: the Authorization check comes first.
    status, payload = await call(
        session,
        emu,
        "GET",
        f"{API}/{job_id}",
        headers={"Authorization": "Bearer+bad", "X-User-Id": "", "X-Traceid": "x"},
    )
    assert (status, payload["msg"]) == (401, "access token is invalid or expired")


async def test_missing_host_is_rejected(emu: KooDriveEmulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    lines = [f"GET {API}/jobs?offset=0&limit=1 HTTP/1.0"]
    lines += [f"{name}: {value}" for name, value in emu.auth_headers().items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 401") or head.startswith(b"HTTP/1.1 401")
    assert json.loads(body) == {"code": testing.UNAUTHORIZED, "msg": "Host header is missing"}


async def test_token_rotation(emu: KooDriveEmulator, session: aiohttp.ClientSession) -> None:
    path = f"{API}/jobs?offset=0&limit=1"
    emu.add_token("Bearer+new-token")  # a scheme on a configured token is ignored
    assert (await call(session, emu, "GET", path, headers={"Authorization": "AT new-token"}))[
        0
    ] == 200
    emu.revoke_token("test-token")
    assert (await call(session, emu, "GET", path))[0] == 401
    emu.add_token("test-token")
    assert (await call(session, emu, "GET", path))[0] == 200


async def test_each_user_sees_only_its_jobs(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    emu.add_user("other-user")
    mine = emu.add_job()
    theirs = emu.add_job(user_id="other-user")
    other = {"X-User-Id": "other-user"}
    status, payload = await call(session, emu, "GET", f"{API}/{mine}", headers=other)
    assert (status, payload["code"]) == (404, testing.JOB_NOT_FOUND)
    status, payload = await call(
        session, emu, "GET", f"{API}/jobs", params={"offset": "0", "limit": "5"}, headers=other
    )
    assert [job["taskId"] for job in payload["data"]] == [theirs]


# -- HMAC-SHA256 app authentication --------------------------------------------------------


def _encode(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def spec_signature(
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The documented scheme, written from the spec independently of koodrive_async.auth."""
    uri = "/".join(_encode(segment) for segment in path.split("/"))
    uri = uri if uri.endswith("/") else uri + "/"
    query_string = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            uri,
            query_string,
            "".join(f"{name}:{headers[name].strip()}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


async def signed_call(
    session: aiohttp.ClientSession,
    emu: KooDriveEmulator,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    secret: str | None = None,
    app_id: str | None = None,
    sign: tuple[str, ...] = ("host", "x-date", "x-user-id"),
    sent_body: bytes | None = None,
) -> tuple[int, Any]:
    values = {
        "host": f"127.0.0.1:{emu.port}",
        "x-date": emu.auth_headers()["X-Date"],
        "x-user-id": emu.user_id,
    }
    signature = spec_signature(
        secret or emu.app_secret,
        method,
        path,
        query or [],
        {name: values[name] for name in sign},
        body,
    )
    authorization = (
        f"HMAC-SHA256 AppId={app_id or emu.app_id},"
        f"SignedHeaders={';'.join(sign)},Signature={signature}"
    )
    headers = {**values, "Authorization": authorization, "Content-Type": "application/json"}
    data = body if sent_body is None else sent_body
    async with session.request(method, path, params=query, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_hmac_app_auth_is_verified(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    query = [("offset", "0"), ("limit", "10"), ("type", "1")]
    status, payload = await signed_call(session, emu, "GET", f"{API}/jobs", query=query)
    assert (status, payload["data"]) == (200, [])
    body = json.dumps(create_body()).encode()
    status, payload = await signed_call(session, emu, "POST", f"{API}/jobs", body=body)
    assert status == 200
    assert payload["data"] in emu.jobs


@pytest.mark.parametrize(
    ("options", "msg_part"),
    [
        ({"secret": "wrong"}, "signature"),
        ({"app_id": "unknown-app"}, "AppId"),
        ({"sign": ("host", "x-user-id")}, "x-date"),
        ({"sign": ("host", "x-date")}, "x-user-id"),
        ({"body": b"{}", "sent_body": b'{"a":1}'}, "signature"),
    ],
)
async def test_hmac_app_auth_rejections(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, options: JSON, msg_part: str
) -> None:
    status, payload = await signed_call(session, emu, "POST", f"{API}/cancel", **options)
    assert (status, payload["code"]) == (401, testing.UNAUTHORIZED)
    assert msg_part in payload["msg"]


# -- job life ------------------------------------------------------------------------------


async def test_job_life_pending_processing_completed(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    job_id = emu.add_job(task_type=1, action_type=101, files=4, pending_for=1.0, duration=4.0)
    data = await detail(session, emu, job_id)
    info = data["jobInfo"]
    assert (info["status"], info["progress"], info["contentNum"]) == (0, 0, 4)
    assert info["createTime"] == "20251103070140"
    assert "taskResultCode" not in info
    assert "beginTime" not in info
    assert "endTime" not in info
    assert [item["status"] for item in data["taskInfos"]] == ["0"] * 4

    progress = []
    for _ in range(8):
        clock.advance(0.5)
        data = await detail(session, emu, job_id)
        info = data["jobInfo"]
        if info["status"] == 1:
            progress.append(info["progress"])
            done = [item["status"] for item in data["taskInfos"]].count("1")
            assert done == 4 * info["progress"] // 100
            assert "beginTime" in info
    assert progress == sorted(progress)
    assert progress[0] < 50 < progress[-1] < 100

    clock.advance(1.0)
    data = await detail(session, emu, job_id)
    info = data["jobInfo"]
    assert (info["status"], info["progress"], info["taskResultCode"]) == (2, 100, 1)
    assert info["endTime"] == "20251103070145"
    assert "downloadUrl" not in info
    assert "uncompressedFileList" not in data
    for item in data["taskInfos"]:
        assert item["status"] == "1"
        assert item["newFileId"].startswith("F")
        assert "resultCode" not in item


@pytest.mark.parametrize(("failed", "result_code"), [(0, 1), (1, 2), (3, 3)])
async def test_task_result_code(
    emu: KooDriveEmulator,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    failed: int,
    result_code: int,
) -> None:
    job_id = emu.add_job(files=3, failed_files=failed, pending_for=0, duration=1)
    clock.advance(1)
    data = await detail(session, emu, job_id)
    assert data["jobInfo"]["taskResultCode"] == result_code
    statuses = [item["status"] for item in data["taskInfos"]]
    assert statuses == ["1"] * (3 - failed) + ["2"] * failed
    for item in data["taskInfos"][3 - failed :]:
        assert item["resultCode"] == str(testing.FILE_NOT_FOUND)
        assert item["resultDesc"]
        assert "newFileId" not in item


async def test_cancel_job(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    job_id = emu.add_job(files=2, pending_for=0.0, duration=10.0)
    clock.advance(5.0)
    status, payload = await call(session, emu, "POST", f"{API}/cancel", body={"jobId": job_id})
    assert (status, payload) == (200, {"code": 0, "msg": "OK"})
    clock.advance(100.0)
    info = (await detail(session, emu, job_id))["jobInfo"]
    assert (info["status"], info["progress"]) == (3, 50)
    assert info["endTime"] == "20251103070145"
    assert info["taskResultCode"] == 2  # one file done, one never processed

    status, payload = await call(session, emu, "POST", f"{API}/cancel", body={"jobId": job_id})
    assert (status, payload["code"]) == (400, testing.JOB_NOT_CANCELABLE)
    status, payload = await call(session, emu, "POST", f"{API}/cancel", body={"jobId": "42"})
    assert (status, payload) == (404, {"code": testing.JOB_NOT_FOUND, "msg": "job not found"})
    status, payload = await call(session, emu, "POST", f"{API}/cancel", body={"id": job_id})
    assert (status, payload["code"]) == (400, testing.PARAMETER_INVALID)
    assert "jobId" in payload["msg"]


async def test_cancel_after_and_cancel_of_a_completed_job(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    canceled = emu.add_job(pending_for=1.0, duration=5.0, cancel_after=0.5)
    finished = emu.add_job(pending_for=0.0, duration=1.0, cancel_after=2.0)
    clock.advance(3.0)
    info = (await detail(session, emu, canceled))["jobInfo"]
    assert (info["status"], info["progress"]) == (3, 0)
    assert "beginTime" not in info
    assert (await detail(session, emu, finished))["jobInfo"]["status"] == 2
    assert emu.cancel_job(finished) is False
    status, payload = await call(session, emu, "POST", f"{API}/cancel", body={"jobId": finished})
    assert (status, payload["code"]) == (400, testing.JOB_NOT_CANCELABLE)


async def test_unknown_job_and_unknown_routes(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    status, payload = await call(session, emu, "GET", f"{API}/1309243162258308352")
    assert (status, payload) == (404, {"code": testing.JOB_NOT_FOUND, "msg": "job not found"})
    status, payload = await call(session, emu, "GET", f"{API}/a/b")
    assert (status, payload["code"]) == (404, testing.BAD_REQUEST)
    status, payload = await call(session, emu, "DELETE", f"{API}/jobs")
    assert (status, payload["code"]) == (405, testing.BAD_REQUEST)


# -- CreateJob -----------------------------------------------------------------------------


async def test_create_job(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    emu.job_defaults = JobDefaults(pending_for=1.0, base_duration=1.0, per_file_duration=1.0)
    body = create_body()
    body["taskInfo"]["fileInfo"].append({"fileId": "c", "filePath": "/will-fail.txt"})
    status, payload = await call(
        session,
        emu,
        "POST",
        f"{API}/jobs",
        body=body,
        headers={"x-hw-share-folder-id": "share-1", "language": "zh-CN"},
    )
    assert (status, payload) == (200, {"code": 0, "msg": "OK", "data": "1309243162258308352"})
    job = emu.jobs["1309243162258308352"]
    assert (job.share_folder_id, job.language, job.request_body) == ("share-1", "zh-CN", body)
    assert job.duration == 4.0  # 1 s + 1 s per file
    assert emu.requests[-1].language == "zh-CN"
    assert emu.requests[-1].json() == body

    clock.advance(4.9)
    assert (await detail(session, emu, job.job_id))["jobInfo"]["status"] == 1
    clock.advance(0.1)
    data = await detail(session, emu, job.job_id)
    info = data["jobInfo"]
    assert (info["status"], info["taskResultCode"], info["containerId"]) == (2, 2, "dst")
    assert (info["taskType"], info["actionType"], info["userId"]) == (1, 101, emu.user_id)
    assert [item["status"] for item in data["taskInfos"]] == ["1", "1", "2"]
    assert data["taskInfos"][0]["srcContainerId"] == "src"

    status, payload = await call(session, emu, "POST", f"{API}/jobs", body=create_body())
    assert payload["data"] == "1309243162258308353"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (create_body(taskType=None), "taskType"),
        (create_body(taskType="1"), "taskType"),
        (create_body(taskType=True), "taskType"),
        (create_body(actionType="x"), "actionType"),
        (create_body(taskInfo=None), "taskInfo"),
        (create_body(taskInfo=[]), "taskInfo"),
        (create_body(taskInfo={"fileInfo": []}), "taskInfo.srcContainerId"),
        (create_body(dstContainerId=None), "dstContainerId"),
        (create_body(dstContainerId=5), "dstContainerId"),
        (create_body(taskInfo={"srcContainerId": "s", "fileInfo": {}}), "taskInfo.fileInfo"),
        (
            create_body(taskInfo={"srcContainerId": "s", "fileInfo": ["x"]}),
            "taskInfo.fileInfo[0]",
        ),
        (
            create_body(taskInfo={"srcContainerId": "s", "fileInfo": [{"filePath": "/x"}]}),
            "taskInfo.fileInfo[0].fileId",
        ),
        (create_body(actionType=201), "taskInfo.fileInfo[1].filePath"),
        (
            create_body(taskInfo={"srcContainerId": "s", "uncompressFilePaths": [1]}),
            "taskInfo.uncompressFilePaths",
        ),
    ],
)
async def test_create_job_validation(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, body: JSON, field: str
) -> None:
    body = {key: value for key, value in body.items() if value is not None}
    status, payload = await call(session, emu, "POST", f"{API}/jobs", body=body)
    assert (status, payload["code"]) == (400, testing.PARAMETER_INVALID)
    assert f" {field} " in payload["msg"]
    assert not emu.jobs


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b"\xff"])
async def test_create_job_with_a_body_that_is_not_an_object(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, raw: bytes
) -> None:
    async with session.post(f"{API}/jobs", data=raw, headers=emu.auth_headers()) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == testing.BAD_REQUEST


# -- GetJobList ----------------------------------------------------------------------------


async def test_list_jobs_pages_newest_first_and_filters(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    ids = [emu.add_job(task_type=1 + i % 2, pending_for=0, duration=1.0 + i) for i in range(5)]
    clock.advance(2.5)  # jobs 0 and 1 are completed, the others processing

    async def page(**query: str) -> list[str]:
        status, payload = await call(session, emu, "GET", f"{API}/jobs", params=query)
        assert status == 200
        assert isinstance(payload["data"], list)
        return [info["taskId"] for info in payload["data"]]

    newest_first = ids[::-1]
    assert await page(offset="0", limit="2") == newest_first[:2]
    assert await page(offset="2", limit="2") == newest_first[2:4]
    assert await page(offset="4", limit="2") == newest_first[4:]  # a short page: the end
    assert await page(offset="5", limit="2") == []
    assert await page(offset="0", limit="100", type="2") == [ids[3], ids[1]]
    assert await page(offset="0", limit="100", status="2") == [ids[1], ids[0]]
    assert await page(offset="0", limit="100", status="1", type="1") == [ids[4], ids[2]]
    _, payload = await call(
        session, emu, "GET", f"{API}/jobs", params={"offset": "0", "limit": "1"}
    )
    assert set(payload["data"][0]) >= {"taskId", "status", "progress", "taskType", "createTime"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "10"}, "offset"),
        ({"offset": "0"}, "limit"),
        ({"offset": "-1", "limit": "10"}, "offset"),
        ({"offset": "0", "limit": "0"}, "limit"),
        ({"offset": "0", "limit": "101"}, "limit"),
        ({"offset": "x", "limit": "10"}, "offset"),
        ({"offset": "0", "limit": "1_0"}, "limit"),
        ({"offset": "0", "limit": "10", "type": "copy"}, "type"),
        ({"offset": "0", "limit": "10", "status": "1.0"}, "status"),
    ],
)
async def test_list_jobs_validation(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, query: dict[str, str], field: str
) -> None:
    status, payload = await call(session, emu, "GET", f"{API}/jobs", params=query)
    assert (status, payload["code"]) == (400, testing.PARAMETER_INVALID)
    assert f" {field} " in payload["msg"]


# -- faults --------------------------------------------------------------------------------


async def test_status_faults_are_consumed_in_order(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    emu.inject(Fault.status(503), times=2)
    emu.inject(Fault.status(500, code=123, msg="boom"))
    path = f"{API}/{job_id}"
    assert await call(session, emu, "GET", path) == (
        503,
        {"code": testing.INTERNAL_ERROR, "msg": "Service Unavailable"},
    )
    assert (await call(session, emu, "GET", path))[0] == 503
    assert await call(session, emu, "GET", path) == (500, {"code": 123, "msg": "boom"})
    assert (await call(session, emu, "GET", path))[0] == 200
    assert emu.fault_counts == {FaultKind.STATUS: 3}
    assert not emu.pending_faults


async def test_rate_limited_and_status_with_retry_after(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    emu.inject(Fault.rate_limited(retry_after=1.5))
    emu.inject(Fault.status(503, retry_after=2))
    async with session.get(f"{API}/1", headers=emu.auth_headers()) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "1.5")
        assert await resp.json() == {
            "code": testing.GATEWAY_THROTTLED,
            "msg": "Too Many Requests",
        }
    async with session.get(f"{API}/1", headers=emu.auth_headers()) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (503, "2")
    assert emu.fault_counts == {FaultKind.RATE_LIMITED: 1, FaultKind.STATUS: 1}


async def test_delay_answers_late_alone_or_with_a_status(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    emu.inject(Fault.delay(0.05))
    emu.inject(Fault.delay(0.05, then=Fault.status(502)))
    started = time.monotonic()
    assert (await call(session, emu, "GET", f"{API}/{job_id}"))[0] == 200
    assert (await call(session, emu, "GET", f"{API}/{job_id}"))[0] == 502
    assert time.monotonic() - started >= 0.1
    assert emu.fault_counts == {FaultKind.DELAY: 1, FaultKind.STATUS: 1}


async def test_body_and_business_code_faults(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    raw = b'{"code":"0","msg":"\xe6\x88\x90\xe5\x8a\x9f","data":{"jobInfo":{}}}'
    emu.inject(Fault.body(raw))
    emu.inject(Fault.body(b"<html>", status=502, content_type="text/html"))
    emu.inject(Fault.business_code(13000201, msg="internal invoke failure"))
    async with session.get(f"{API}/1", headers=emu.auth_headers()) as resp:
        assert (resp.status, await resp.read()) == (200, raw)
    async with session.get(f"{API}/1", headers=emu.auth_headers()) as resp:
        assert (resp.status, resp.content_type, await resp.read()) == (502, "text/html", b"<html>")
    assert await call(session, emu, "GET", f"{API}/1") == (
        200,
        {"code": 13000201, "msg": "internal invoke failure"},
    )


async def test_drop_closes_without_an_answer_and_logs_nothing(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    # POST: aiohttp's client retries an idempotent request on a dropped connection itself.
    emu.inject(Fault.drop(), method="POST")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(session, emu, "POST", f"{API}/cancel", body={"jobId": "1"})
    assert len(emu.requests) == 1  # recorded before the fault
    assert emu.in_flight == 0
    assert (await call(session, emu, "POST", f"{API}/cancel", body={"jobId": "1"}))[0] == 404
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_truncate_cuts_the_body(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    job_id = emu.add_job()
    emu.inject(Fault.truncate(10))
    async with session.get(f"{API}/{job_id}", headers=emu.auth_headers()) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_fault_matching_by_method_and_path(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    rule = emu.inject(Fault.status(500), method="POST", path=f"{API}/jobs", times=None)
    emu.inject(Fault.status(418), path=f"{API}/1309*")
    assert (await call(session, emu, "GET", f"{API}/jobs?offset=0&limit=1"))[0] == 200
    assert (await call(session, emu, "GET", f"{API}/{job_id}"))[0] == 418
    for _ in range(3):
        assert (await call(session, emu, "POST", f"{API}/jobs", body=create_body()))[0] == 500
    assert rule.remaining is None
    assert emu.pending_faults == (rule,)
    emu.clear_faults()
    assert (await call(session, emu, "POST", f"{API}/jobs", body=create_body()))[0] == 200


async def test_fault_mix_is_seeded_and_counted(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    async def outcomes() -> list[str]:
        seen = []
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(emu.base_url, connector=connector) as fresh:
            for _ in range(40):
                try:
                    async with fresh.post(
                        f"{API}/jobs", json=create_body(), headers=emu.auth_headers()
                    ) as resp:
                        seen.append(f"{resp.status}:{(await resp.read())[:12]!r}")
                except aiohttp.ServerDisconnectedError:
                    seen.append("dropped")
        return seen

    options: JSON = {
        "status_5xx": 0.2,
        "rate_limited": 0.1,
        "drop": 0.1,
        "delay": 0.1,
        "malformed": 0.1,
        "delay_seconds": 0.001,
    }
    emu.inject(Fault.status(418))  # queued faults come first
    emu.fault_mix(seed=7, **options)
    first = await outcomes()
    counts = dict(emu.fault_counts)
    emu.inject(Fault.status(418))
    emu.fault_mix(seed=7, **options)
    assert await outcomes() == first
    assert first[0].startswith("418")
    assert "dropped" in first
    assert counts[FaultKind.STATUS] >= 2
    assert counts[FaultKind.DROP] == first.count("dropped")
    assert 5 < sum(counts.values()) < 40
    emu.clear_fault_mix()
    assert (await call(session, emu, "POST", f"{API}/jobs", body=create_body()))[0] == 200
    with pytest.raises(ValueError, match="add up"):
        emu.fault_mix(seed=1, status_5xx=0.6, drop=0.6)
    with pytest.raises(ValueError, match="probability"):
        emu.fault_mix(seed=1, drop=-0.1)


def test_fault_values() -> None:
    assert Fault.delay(1.0, then=Fault.status(503, wait=0.5)).wait == 1.5
    assert Fault.rate_limited(retry_after="Wed, 21 Oct 2015 07:28:00 GMT").headers == (
        ("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
    )
    assert Fault.status(400, body={"error_code": "X", "error_msg": "old"}).content == (
        b'{"error_code":"X","error_msg":"old"}'
    )
    with pytest.raises(ValueError, match="wait"):
        Fault.drop(wait=-1)
    with pytest.raises(ValueError, match="after_bytes"):
        Fault.truncate(-1)
    with pytest.raises(ValueError, match="times"):
        KooDriveEmulator().inject(Fault.drop(), times=0)


# -- recording, concurrency, Date ----------------------------------------------------------


async def test_requests_are_recorded(emu: KooDriveEmulator, session: aiohttp.ClientSession) -> None:
    emu.inject(Fault.status(500))
    async with session.get(
        f"{API}/jobs?offset=0&limit=5&type=1&x=a%20b",
        headers={**emu.auth_headers(), "language": "en_us"},
    ):
        pass
    (recorded,) = emu.requests
    assert (recorded.method, recorded.path) == ("GET", f"{API}/jobs")
    assert recorded.raw_path == f"{API}/jobs?offset=0&limit=5&type=1&x=a%20b"
    assert (recorded.query["type"], recorded.query["x"]) == ("1", "a b")
    assert recorded.headers["x-user-id"] == emu.user_id
    assert (recorded.language, recorded.body, recorded.at) == ("en_us", b"", WALL_START)


async def test_in_flight_counts_concurrent_handlers(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    job_id = emu.add_job()
    emu.inject(Fault.delay(0.3), times=None)  # long enough for all six to be in at once
    results = await asyncio.gather(
        *(call(session, emu, "GET", f"{API}/{job_id}") for _ in range(6))
    )
    assert [status for status, _ in results] == [200] * 6
    assert (emu.in_flight, emu.max_in_flight) == (0, 6)


async def test_a_client_giving_up_on_a_delay_ends_the_handler(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    emu.inject(Fault.delay(30.0))
    with pytest.raises(asyncio.TimeoutError):
        await session.get(
            f"{API}/1", headers=emu.auth_headers(), timeout=aiohttp.ClientTimeout(total=0.05)
        )
    for _ in range(100):
        if emu.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert (emu.in_flight, emu.max_in_flight) == (0, 1)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_date_header_follows_the_skewed_server_clock(
    emu: KooDriveEmulator, session: aiohttp.ClientSession
) -> None:
    emu.clock_skew = -120.0
    x_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(WALL_START))  # the client's clock
    async with session.get(f"{API}/1", headers={**emu.auth_headers(), "X-Date": x_date}) as resp:
        assert resp.status == 401  # two minutes ahead of the server
        server_date = email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()
        assert server_date == WALL_START - 120
    emu.clock_skew = 120.0
    async with session.get(f"{API}/1", headers={**emu.auth_headers(), "X-Date": x_date}) as resp:
        assert resp.status == 404  # behind the server is fine
    async with session.get("/nowhere") as resp:
        assert resp.status == 404
        assert email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp() == (
            WALL_START + 120
        )


# -- package download ----------------------------------------------------------------------


async def completed_package(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock, **job: Any
) -> tuple[str, str]:
    job_id = emu.add_job(task_type=6, pending_for=0, duration=1, **job)
    assert "downloadUrl" not in (await detail(session, emu, job_id))["jobInfo"]
    clock.advance(1)
    url: str = (await detail(session, emu, job_id))["jobInfo"]["downloadUrl"]
    assert url == f"{emu.base_url}/download/{job_id}/package.zip"
    return job_id, url


async def test_package_download_is_a_real_zip(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    files = [JobFile(file_id="x", file_path="/d/report.pdf"), "y", "z-fail"]
    job_id, url = await completed_package(emu, session, clock, files=files)
    rule = emu.inject(Fault.status(500))  # without a path, a fault is for the API only
    async with session.get(url) as resp:  # no KooDrive headers: an object-storage URL
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/zip"
        assert resp.headers["Accept-Ranges"] == "bytes"
        data = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(data)
    assert data == emu.package_bytes(job_id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["report.pdf", "y"]
        content = archive.read("report.pdf")
    assert len(content) == emu.job_defaults.file_size
    assert content.startswith(f"KooDrive emulator: job {job_id}, file x".encode())
    assert [r.path for r in emu.download_requests] == [emu.download_path(job_id)]
    assert len(emu.requests) == 2  # the two GetJobDetail calls only
    assert emu.pending_faults == (rule,)


async def test_package_download_ranges_and_resume(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    job_id, url = await completed_package(emu, session, clock, files=3)
    whole = emu.package_bytes(job_id)
    size = len(whole)
    emu.inject(Fault.truncate(1000), path=emu.download_path(job_id))
    chunks: list[bytes] = []

    async def read_into_chunks(resp: aiohttp.ClientResponse) -> None:
        async for chunk in resp.content.iter_any():
            chunks.append(chunk)

    async with session.get(url) as resp:
        assert resp.headers["Content-Length"] == str(size)
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_into_chunks(resp)
    received = b"".join(chunks)
    assert received == whole[:1000]
    async with session.get(url, headers={"Range": f"bytes={len(received)}-"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
        received += await resp.read()
    assert received == whole
    async with session.get(url, headers={"Range": "bytes=0-9"}) as resp:
        assert (resp.status, await resp.read()) == (206, whole[:10])
    async with session.get(url, headers={"Range": "bytes=-10"}) as resp:
        assert (resp.status, await resp.read()) == (206, whole[-10:])
    async with session.get(url, headers={"Range": f"bytes={size}-"}) as resp:
        assert (resp.status, resp.headers["Content-Range"]) == (416, f"bytes */{size}")
    async with session.get(url, headers={"Range": "bytes=0-1,5-6"}) as resp:
        assert (resp.status, await resp.read()) == (200, whole)


async def test_package_download_not_ready(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    running = emu.add_job(task_type=6)
    all_failed = emu.add_job(task_type=6, files=2, failed_files=2, pending_for=0, duration=0)
    for job_id in (running, all_failed, "unknown"):
        async with session.get(f"/download/{job_id}/package.zip") as resp:
            assert resp.status == 404
    assert "downloadUrl" not in (await detail(session, emu, all_failed))["jobInfo"]


# -- decompression -------------------------------------------------------------------------


async def test_decompression_tree(
    emu: KooDriveEmulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    job_id = emu.add_job(task_type=5, action_type=502, pending_for=0, duration=1)
    assert "uncompressedFileList" not in await detail(session, emu, job_id)
    clock.advance(1)
    tree = (await detail(session, emu, job_id))["uncompressedFileList"]
    docs, csv = tree
    assert (docs["name"], docs["type"], csv["name"], csv["type"]) == ("docs", 2, "data.csv", 1)
    readme, images = docs["subFileList"]
    assert (readme["type"], readme["fileSize"]) == (1, 120)
    assert images["subFileList"][0]["name"] == "docs/images/logo.png"
    assert readme["updatedAt"] == int(WALL_START * 1000)
    assert readme["containerId"] == "test-dst-container"
    assert readme["fileId"].startswith("F")
    assert "subFileList" not in readme

    partial = emu.add_job(
        task_type=5, action_type=503, pending_for=0, duration=0, uncompress_paths=["a/", "fail.txt"]
    )
    directory, failed = (await detail(session, emu, partial))["uncompressedFileList"]
    assert (directory["name"], directory["type"], directory["subFileList"]) == ("a", 2, [])
    assert failed["reason"]
    assert failed["code"] == str(testing.FILE_NOT_FOUND)


# -- thread mode, fixture, standalone server -----------------------------------------------


def sync_get(emu: KooDriveEmulator, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(emu.base_url + path, headers=emu.auth_headers())
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def test_run_in_thread() -> None:
    emulator = KooDriveEmulator()
    with emulator.run_in_thread() as emu:
        assert emu is emulator
        job_id = emu.add_job(pending_for=0, duration=0)
        status, payload = sync_get(emu, f"{API}/{job_id}")
        assert (status, payload["data"]["jobInfo"]["status"]) == (200, 2)
        port = emu.port
        with pytest.raises(RuntimeError, match="already started"), emu.run_in_thread():
            pass
    assert not emulator.started
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_run_in_thread_reports_a_taken_port() -> None:
    with (
        KooDriveEmulator().run_in_thread() as first,
        pytest.raises(OSError, match="in use"),
        KooDriveEmulator(port=first.port).run_in_thread(),
    ):
        pass


async def test_start_twice_and_base_url_before_start() -> None:
    emulator = KooDriveEmulator()
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.base_url
    async with emulator:
        with pytest.raises(RuntimeError, match="already started"):
            await emulator.start()
    await emulator.stop()  # stopping twice is harmless


def test_fixture(koodrive_emulator: KooDriveEmulator) -> None:
    assert (koodrive_emulator.token, koodrive_emulator.user_id) == ("test-token", "test-user")
    assert (koodrive_emulator.app_id, koodrive_emulator.app_secret) == ("test-app", "test-secret")
    status, payload = sync_get(koodrive_emulator, f"{API}/jobs?offset=0&limit=1")
    assert (status, payload["data"]) == (200, [])


def test_standalone_server_runs_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "koodrive_async.testing", "--port", "0", "--token", "T1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(11)]
        base_url = banner[0].rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            base_url + f"{API}/jobs?offset=0&limit=1",
            headers={
                "Authorization": "Bearer+T1",
                "X-User-Id": "test-user",
                "X-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            },
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.load(resp) == {"code": 0, "msg": "OK", "data": []}
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert err == ""
    assert "token          T1" in banner[2]
    assert "curl" in banner[5]
    assert "    export KOODRIVE_TOKEN=T1\n" in banner  # for the koodrive-async command line
    assert banner[10] == "Press Ctrl-C to stop.\n"
    assert "stopped" in out


def test_public_exports() -> None:
    # isort-style, as ruff's RUF022 keeps it: constants first, then classes.
    assert testing.__all__ == sorted(testing.__all__, key=lambda name: (not name.isupper(), name))
    for name in testing.__all__:
        assert getattr(testing, name) is not None
