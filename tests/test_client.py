"""The session layer against the emulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import koodrive_async as kd
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import TokenSequence, VirtualTime, make_client

SEED_BYTES = (Path(__file__).parent / "data" / "seed_job_detail.json").read_bytes()
JOB_PATH = "/koodrive/ose/v1/1309243162258308352"


# -- decoding over the wire ----------------------------------------------------------------


async def test_every_field_of_the_seed_example(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    emulator.inject(Fault.body(SEED_BYTES))
    detail = await client.get_job("1309243162258308352")
    info = detail.job_info
    assert info is not None
    assert info.task_id == "1309243162258308352"
    assert info.user_id == "40086000004871666-369528171409614001"
    assert info.task_type is kd.TaskType.COPY
    assert info.action_type is kd.ActionType.COPY
    assert info.status is kd.JobStatus.COMPLETED
    assert info.progress == 100
    assert info.task_result_code is kd.TaskResultCode.ALL_SUCCEEDED
    assert info.content_num == 1
    assert info.container_id == "IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4"
    assert info.tenant_id == "40086000004871666"
    assert info.begin_time == info.end_time == info.create_time == datetime(2023, 12, 12, 9, 52, 27)
    assert (info.task_name, info.download_url, info.result_code) == (None, None, None)
    (task,) = detail.task_infos
    assert task.file_id == "FuZmQ66CF0DdpKRG1Y29Iwajbq04Nhwu3"
    assert task.status is kd.TaskStatus.SUCCEEDED
    assert task.new_file_id == "FtEXHCpfqHueAHFbEmWZNkqUH_K866MVn"
    assert task.src_container_id == "IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4"
    assert detail.uncompressed_file_list == ()
    assert emulator.requests[-1].path == JOB_PATH


QUIRKS: list[tuple[str, dict[str, Any], Any]] = [
    ("code as a string", {"code": "0", "data": {"jobInfo": {"status": 1}}},
     lambda d: d.status is kd.JobStatus.PROCESSING),
    ("task status as a string", {"code": 0, "data": {"taskInfos": [{"status": "2"}]}},
     lambda d: d.task_infos[0].status is kd.TaskStatus.FAILED),
    ("type and updatedAt as strings", {"code": 0, "data": {"uncompressedFileList": [
        {"type": "2", "updatedAt": "1700000000000"}]}},
     lambda d: d.uncompressed_file_list[0].type is kd.FileType.DIRECTORY
     and d.uncompressed_file_list[0].updated_at.year == 2023),
    ("updateAt spelling", {"code": 0, "data": {"uncompressedFileList": [
        {"updateAt": 1700000000000}]}},
     lambda d: d.uncompressed_file_list[0].updated_at is not None),
    ("subFileList as one object", {"code": 0, "data": {"uncompressedFileList": [
        {"name": "d/", "subFileList": {"name": "d/f"}}]}},
     lambda d: d.uncompressed_file_list[0].sub_file_list[0].name == "d/f"),
    ("reservatioinInfo", {"code": 0, "data": {"uncompressedFileList": [
        {"reservatioinInfo": {"a": 1}}]}},
     lambda d: d.uncompressed_file_list[0].reservation_info == {"a": 1}),
    ("14-digit times", {"code": 0, "data": {"jobInfo": {"createTime": "20240229235959"}}},
     lambda d: d.job_info.create_time == datetime(2024, 2, 29, 23, 59, 59)),
    ("absent times", {"code": 0, "data": {"jobInfo": {"status": 0}}},
     lambda d: d.job_info.begin_time is None and d.job_info.end_time is None),
    ("unknown keys", {"code": 0, "traceId": "x", "data": {"jobInfo": {"newThing": [1]}}},
     lambda d: d.job_info == kd.JobInfo()),
    ("unknown enum values", {"code": 0, "data": {"jobInfo": {"status": 7, "taskType": 99}}},
     lambda d: (d.status, d.job_info.task_type) == (7, 99)),
    ("localised msg", {"code": 0, "msg": "成功", "data": {}}, lambda d: d == kd.JobDetail()),
]


@pytest.mark.parametrize(("name", "document", "check"), QUIRKS, ids=[q[0] for q in QUIRKS])
async def test_each_documented_quirk_over_the_wire(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, name: str,
    document: dict[str, Any], check: Any,
) -> None:
    emulator.inject(Fault.body(json.dumps(document, ensure_ascii=False).encode()))
    assert check(await client.get_job("1"))


# -- the error tree ------------------------------------------------------------------------

ERRORS: list[tuple[str, Fault, type[kd.KooDriveError]]] = [
    ("400", Fault.status(400, code=13000102, msg="parameter invalid"), kd.BadRequestError),
    ("401", Fault.status(401, code=401, msg="unauthorized"), kd.AuthenticationError),
    ("403 gateway", Fault.status(403, code="APIGW.0301", msg="denied"), kd.APIError),
    ("404", Fault.status(404, code=13000404, msg="no job"), kd.NotFoundError),
    ("429", Fault.rate_limited(retry_after=1), kd.RateLimitError),
    ("500", Fault.status(500, code=13000201), kd.ServerError),
    ("502 html", Fault.body(b"<html>bad gateway</html>", status=502, content_type="text/html"),
     kd.ServerError),
    ("200 with a code", Fault.business_code(13000301, msg="no space"), kd.APIError),
    ("200 transient code", Fault.business_code(13000201), kd.ServerError),
    ("malformed body", Fault.body(b'{"code":0,"data":{"jobInfo":[]}}'), kd.ResponseDecodeError),
    ("not json", Fault.body(b"<html>", content_type="text/html"), kd.ResponseDecodeError),
]


async def test_a_dropped_connection_is_a_transport_error(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    # aiohttp itself resends an idempotent request once when the connection closes without
    # an answer (RFC 9112, 9.3.1), whatever our RetryPolicy says: two drops to see the error.
    emulator.inject(Fault.drop(), times=2)
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.TransportError) as caught:
            await client.get_job(emulator.add_job())
    assert type(caught.value) is kd.TransportError
    assert len(emulator.requests) == 2


@pytest.mark.parametrize(("name", "fault", "error"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_each_row_of_the_error_tree(
    emulator: KooDriveEmulator, vt: VirtualTime, name: str, fault: Fault,
    error: type[kd.KooDriveError],
) -> None:
    emulator.inject(fault)
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(error) as caught:
            await client.get_job(emulator.add_job())
    assert type(caught.value) is error
    assert len(emulator.requests) == 1
    if isinstance(caught.value, kd.APIError):
        assert caught.value.trace_id == emulator.requests[0].headers["X-Traceid"]
        assert caught.value.trace_id in str(caught.value)


async def test_unknown_job_is_not_found(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    with pytest.raises(kd.NotFoundError) as caught:
        await client.get_job("999")
    assert caught.value.http_status == 404 and caught.value.code is not None


async def test_a_slow_answer_is_a_request_timeout(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.inject(Fault.delay(2.0))
    async with make_client(emulator, vt, retry=kd.RetryPolicy.disabled(), timeout=10) as client:
        with pytest.raises(kd.RequestTimeoutError) as caught:
            await client.get_job(emulator.add_job(), timeout=0.2)
    assert isinstance(caught.value, TimeoutError)


async def test_an_oversized_answer_is_refused(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.add_job(files=50)
    async with make_client(emulator, vt, max_response_bytes=1000) as client:
        with pytest.raises(kd.ResponseDecodeError, match="max_response_bytes"):
            await client.get_job(next(iter(emulator.jobs)))


# -- create_job never duplicates -----------------------------------------------------------


async def _create(client: kd.KooDriveClient) -> str:
    return await client.create_job(
        kd.TaskType.COPY, src_container_id="src", dst_container_id="dst",
        files=[kd.FileRef("f1", "/a.txt"), "f2"], new_file_path="/copies",
    )


@pytest.mark.parametrize(
    ("fault", "error"),
    [(Fault.status(503), kd.ServerError), (Fault.status(500, code=13000201), kd.ServerError),
     (Fault.drop(), kd.TransportError), (Fault.business_code(13000201), kd.ServerError)],
    ids=["503", "500", "dropped", "200+13000201"],
)
async def test_create_job_is_not_retried_when_it_may_have_reached_the_server(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, fault: Fault,
    error: type[Exception],
) -> None:
    emulator.inject(fault)
    with pytest.raises(error):
        await _create(client)
    assert len(emulator.requests) == 1


async def test_create_job_is_not_retried_after_a_timeout(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    emulator.inject(Fault.delay(1.0))
    async with make_client(emulator, vt, timeout=0.2) as client:
        with pytest.raises(kd.RequestTimeoutError):
            await _create(client)
    assert len(emulator.requests) == 1


async def test_create_job_retried_after_a_refused_connection(vt: VirtualTime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = KooDriveEmulator(port=port, clock=vt.clock)

    async def start_server_then_sleep(seconds: float) -> None:
        if not emulator.started:
            await emulator.start()
        await vt.sleep(seconds)

    try:
        async with kd.KooDriveClient(
            f"http://127.0.0.1:{port}", user_id=emulator.user_id,
            auth=kd.TokenAuth(emulator.token), sleep=start_server_then_sleep,
            clock=vt.clock,
        ) as client:
            job_id = await _create(client)
    finally:
        await emulator.stop()
    assert len(vt.sleeps) == 1
    assert len(emulator.requests) == 1
    assert list(emulator.jobs) == [job_id]


async def test_create_job_retried_after_a_429(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    emulator.inject(Fault.rate_limited(retry_after=2))
    job_id = await _create(client)
    assert vt.sleeps == [2.0]
    assert list(emulator.jobs) == [job_id]


async def test_create_job_sent_again_after_a_401_the_auth_flow_explains(
    emulator: KooDriveEmulator, vt: VirtualTime
) -> None:
    # Rejected before any work was done: sent again with the new token, once; one job.
    provider = TokenSequence(emulator, "old-token", "new-token")
    async with make_client(emulator, vt, auth=kd.TokenAuth(provider)) as client:
        await client.get_job(emulator.add_job())
        emulator.revoke_token("old-token")
        job_id = await _create(client)
    creates = [r for r in emulator.requests if r.method == "POST"]
    assert [r.headers["Authorization"] for r in creates] == [
        "Bearer+old-token", "Bearer+new-token"]
    assert len(emulator.jobs) == 2 and job_id in emulator.jobs  # the lookup's and this one


async def test_create_job_sends_the_documented_body(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    job_id = await client.create_job(
        kd.TaskType.DECOMPRESS, action_type=kd.ActionType.EXTRACT_SELECTED,
        src_container_id="src", dst_container_id="dst", files=[kd.FileRef("zip1", "/a.zip")],
        uncompress_file_paths=["docs/"], password="archive-pw", share_folder_id="share-1",
    )
    request = emulator.requests[-1]
    assert (request.method, request.path) == ("POST", "/koodrive/ose/v1/jobs")
    assert request.json() == {
        "taskType": 5, "actionType": 503, "dstContainerId": "dst", "password": "archive-pw",
        "taskInfo": {"fileInfo": [{"fileId": "zip1", "filePath": "/a.zip"}],
                     "srcContainerId": "src", "uncompressFilePaths": ["docs/"]},
    }
    assert request.headers["x-hw-share-folder-id"] == "share-1"
    assert job_id in emulator.jobs


async def test_create_job_refuses_bad_arguments_before_sending(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    with pytest.raises(ValueError, match="dst_container_id"):
        await client.create_job(kd.TaskType.COPY, src_container_id="s", dst_container_id="",
                                files=["f"])
    with pytest.raises(ValueError, match="file_path"):
        await client.create_job(kd.TaskType.DELETE, action_type=kd.ActionType.DELETE_TO_RECYCLE_BIN,
                                src_container_id="s", dst_container_id="d", files=["f"])
    assert emulator.requests == []


# -- job ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job_id",
    ["", "a/b", "../jobs", "1?x=1", "1#f", "..", "1 2", "\t1", "jobs", "cancel", "%2e%2e"],
)
async def test_every_bad_job_id_is_refused_before_any_request(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, job_id: str
) -> None:
    with pytest.raises(ValueError, match="job id"):
        await client.get_job(job_id)
    with pytest.raises(ValueError, match="job id"):
        await client.cancel_job(job_id)
    with pytest.raises(ValueError, match="job id"):
        await client.wait_for_job(job_id)
    assert emulator.requests == []


# -- list and cancel ---------------------------------------------------------------------------


async def test_list_jobs_pages_until_a_short_page(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    ids = {emulator.add_job() for _ in range(250)}
    listed = [info async for info in client.list_jobs()]
    assert {info.task_id for info in listed} == ids and len(listed) == 250
    assert [(r.query["offset"], r.query["limit"]) for r in emulator.requests] == [
        ("0", "100"), ("100", "100"), ("200", "100"),
    ]


async def test_list_jobs_exact_multiple_and_filters(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    for _ in range(4):
        emulator.add_job(task_type=6)
    emulator.add_job(task_type=1)
    listed = [i async for i in client.list_jobs(task_type=kd.TaskType.PACKAGE_DOWNLOAD,
                                                 status=kd.JobStatus.PENDING, page_size=2)]
    assert len(listed) == 4 and all(i.task_type is kd.TaskType.PACKAGE_DOWNLOAD for i in listed)
    assert len(emulator.requests) == 3  # 2 + 2 + an empty page
    assert emulator.requests[0].query["type"] == "6"
    assert emulator.requests[0].query["status"] == "0"


async def test_list_jobs_stops_when_the_server_repeats_a_page(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    page = json.dumps({"code": 0, "data": [{"taskId": "1"}, {"taskId": "2"}]}).encode()
    emulator.inject(Fault.body(page), times=None)
    with pytest.raises(kd.ResponseDecodeError, match="same page"):
        async for _ in client.list_jobs(page_size=2):
            pass
    assert len(emulator.requests) == 2


async def test_list_jobs_bad_arguments(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    for options in ({"page_size": 0}, {"page_size": 101}, {"offset": -1}, {"max_pages": 0}):
        with pytest.raises(ValueError, match=next(iter(options))):
            client.list_jobs(**options)
    wrong_types: list[dict[str, Any]] = [
        {"page_size": True}, {"page_size": 2.5}, {"page_size": "5"}, {"offset": None},
        {"offset": 1.0}, {"max_pages": None}, {"max_pages": False},
    ]
    for options in wrong_types:
        name, value = next(iter(options.items()))
        with pytest.raises(TypeError, match=f"{name} must be an int, not {type(value).__name__}"):
            client.list_jobs(**options)
    assert not emulator.requests


async def test_cancel_job(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, vt: VirtualTime
) -> None:
    job_id = emulator.add_job(duration=100)
    await client.cancel_job(job_id)
    assert emulator.requests[-1].json() == {"jobId": job_id}
    detail = await client.get_job(job_id)
    assert detail.status is kd.JobStatus.CANCELED
    with pytest.raises(kd.BadRequestError):
        await client.cancel_job(job_id)
