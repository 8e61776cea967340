"""Wire documents -> models: every documented variant, and only models or ResponseDecodeError."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cattrs
import pytest
from cattrs.errors import ForbiddenExtraKeysError
from hypothesis import given, settings
from hypothesis import strategies as st

from koodrive_async import _protocol as proto
from koodrive_async._convert import make_converter
from koodrive_async.errors import ResponseDecodeError
from koodrive_async.models import (
    ActionType,
    FileType,
    JobDetail,
    JobInfo,
    JobStatus,
    TaskInfo,
    TaskResultCode,
    TaskStatus,
    TaskType,
    UncompressedFileInfo,
)

SEED = json.loads((Path(__file__).parent / "data" / "seed_job_detail.json").read_text())
strict = make_converter(strict=True)


def decode(data: Any) -> JobDetail:
    return proto.structure(data, JobDetail, what="test")


def test_the_seed_example_reads_across_with_a_strict_converter() -> None:
    detail = strict.structure(SEED["data"], JobDetail)
    assert detail == JobDetail(
        job_info=JobInfo(
            task_id="1309243162258308352",
            user_id="40086000004871666-369528171409614001",
            task_type=TaskType.COPY,
            action_type=ActionType.COPY,
            status=JobStatus.COMPLETED,
            progress=100,
            task_result_code=TaskResultCode.ALL_SUCCEEDED,
            content_num=1,
            container_id="IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4",
            tenant_id="40086000004871666",
            begin_time=datetime(2023, 12, 12, 9, 52, 27),
            end_time=datetime(2023, 12, 12, 9, 52, 27),
            create_time=datetime(2023, 12, 12, 9, 52, 27),
        ),
        task_infos=(
            TaskInfo(
                file_id="FuZmQ66CF0DdpKRG1Y29Iwajbq04Nhwu3",
                status=TaskStatus.SUCCEEDED,
                new_file_id="FtEXHCpfqHueAHFbEmWZNkqUH_K866MVn",
                src_container_id="IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4",
            ),
        ),
    )
    assert detail.terminal and detail.status is JobStatus.COMPLETED and detail.progress == 100


def _all_wire_fields() -> dict[str, Any]:
    return {
        "jobInfo": {
            "taskId": "1", "taskName": "n", "userId": "u", "taskType": 6, "actionType": 101,
            "status": 1, "taskResultCode": 2, "resultCode": 0, "progress": 40,
            "downloadUrl": "https://x/y.zip", "contentNum": 3, "containerId": "c",
            "tenantId": "t", "beginTime": "20240101000000", "endTime": "20240101000001",
            "createTime": "20231231235959",
        },
        "taskInfos": [{
            "id": "i", "fileId": "f", "filePath": "/p", "status": "2", "newFileId": "nf",
            "newFilePath": "/np", "srcContainerId": "s", "resultCode": "13000301",
            "resultDesc": "no space", "tenantId": "t", "createTime": "20240101000000",
        }],
        "uncompressedFileList": [{
            "containerId": "c", "fileId": "f", "name": "dir/", "fileSize": 0, "type": 2,
            "updatedAt": 1700000000000, "subFileList": [], "reason": None, "code": None,
            "reservatioinInfo": {"k": [1]},
        }],
    }


def test_every_documented_field_has_a_home_in_strict_mode() -> None:
    detail = strict.structure(_all_wire_fields(), JobDetail)
    info = detail.job_info
    assert info is not None
    assert info.task_name == "n" and info.download_url == "https://x/y.zip"
    assert info.task_result_code is TaskResultCode.PARTIALLY_FAILED and info.result_code == 0
    assert detail.task_infos[0].result_desc == "no space"
    assert detail.task_infos[0].create_time == datetime(2024, 1, 1)
    entry = detail.uncompressed_file_list[0]
    assert entry.type is FileType.DIRECTORY
    assert entry.updated_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert entry.reservation_info == {"k": [1]}


def test_strict_converter_catches_unknown_keys_production_ignores_them() -> None:
    document = {"jobInfo": {"status": 1, "brandNewField": True}, "extra": 1}
    with pytest.raises(Exception, match="JobDetail") as caught:
        strict.structure(document, JobDetail)
    assert any(isinstance(e, ForbiddenExtraKeysError) for e in _leaves(caught.value))
    assert decode(document) == JobDetail(job_info=JobInfo(status=JobStatus.PROCESSING))


def _leaves(exc: BaseException) -> list[BaseException]:
    nested = getattr(exc, "exceptions", None)
    if not nested:
        return [exc]
    return [leaf for e in nested for leaf in _leaves(e)]


def test_task_status_as_string_or_number() -> None:
    detail = decode({"taskInfos": [{"status": "1"}, {"status": 2}, {"status": "0"}]})
    assert [t.status for t in detail.task_infos] == [
        TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.PENDING,
    ]


def test_archive_type_and_updated_at_as_number_or_string_and_the_sibling_name() -> None:
    entries = decode({"uncompressedFileList": [
        {"type": "1", "updatedAt": "1700000000000"},
        {"type": 2, "updateAt": "1700000000000"},
        {"type": 1, "updatedAt": 1700000000000, "updateAt": 5},
    ]}).uncompressed_file_list
    expected = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert [e.type for e in entries] == [FileType.FILE, FileType.DIRECTORY, FileType.FILE]
    assert [e.updated_at for e in entries] == [expected] * 3


def test_sub_file_list_as_one_object_or_a_list_recursively() -> None:
    tree = decode({"uncompressedFileList": [{
        "name": "a/", "type": 2,
        "subFileList": {"name": "a/b/", "type": 2, "subFileList": [
            {"name": "a/b/c.txt", "type": 1, "fileSize": 12},
            {"name": "a/b/d.txt", "type": 1, "subFileList": None},
        ]},
    }]}).uncompressed_file_list
    (a,) = tree
    (b,) = a.sub_file_list
    assert [x.name for x in b.sub_file_list] == ["a/b/c.txt", "a/b/d.txt"]
    assert b.sub_file_list[0].file_size == 12 and b.sub_file_list[1].sub_file_list == ()


def test_missing_fields_are_none_and_missing_lists_empty() -> None:
    assert decode({}) == JobDetail(job_info=None, task_infos=(), uncompressed_file_list=())
    assert decode({"taskInfos": None, "jobInfo": {}}).job_info == JobInfo()
    assert decode({"jobInfo": {"beginTime": "", "endTime": None}}).job_info == JobInfo()


def test_unknown_enum_values_are_kept_raw() -> None:
    info = decode({"jobInfo": {"status": 9, "taskType": "42", "actionType": 999,
                               "taskResultCode": 7}}).job_info
    assert info is not None
    assert (info.status, info.task_type, info.action_type, info.task_result_code) == (
        9, 42, 999, 7
    )
    assert type(info.status) is int
    tasks = decode({"taskInfos": [{"status": "5"}]}).task_infos
    assert tasks[0].status == "5" and not isinstance(tasks[0].status, TaskStatus)
    assert decode({"uncompressedFileList": [{"type": 3}]}).uncompressed_file_list[0].type == 3


def test_numbers_as_strings_and_ids_as_numbers() -> None:
    info = decode({"jobInfo": {"taskId": 1309243162258308352, "progress": "55",
                               "contentNum": 3.0, "resultCode": "APIGW.1"}}).job_info
    assert info == JobInfo(task_id="1309243162258308352", progress=55, content_num=3,
                           result_code="APIGW.1")


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"jobInfo": []}, "$.data.jobInfo"),
        ({"jobInfo": {"status": "done"}}, "$.data.jobInfo.status"),
        ({"jobInfo": {"progress": True}}, "$.data.jobInfo.progress"),
        ({"jobInfo": {"taskId": {"x": 1}}}, "$.data.jobInfo.taskId"),
        ({"jobInfo": {"createTime": "2023-12-12"}}, "$.data.jobInfo.createTime"),
        ({"jobInfo": {"createTime": "20231312095227"}}, "$.data.jobInfo.createTime"),
        ({"taskInfos": "nope"}, "$.data.taskInfos"),
        ({"taskInfos": [{}, 3]}, "$.data.taskInfos[1]"),
        ({"uncompressedFileList": [{"updatedAt": 10**20}]},
         "$.data.uncompressedFileList[0].updatedAt"),
        ({"uncompressedFileList": [{"subFileList": [{"type": "dir"}]}]},
         "$.data.uncompressedFileList[0].subFileList[0].type"),
        ({"uncompressedFileList": [{"reservatioinInfo": [1]}]},
         "$.data.uncompressedFileList[0].reservatioinInfo"),
    ],
)
def test_wrong_shapes_raise_response_decode_error_naming_the_path(
    document: dict[str, Any], where: str
) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        decode(document)
    assert any(problem.endswith("@ " + where) for problem in caught.value.problems), (
        caught.value.problems
    )
    assert where in str(caught.value)


def test_models_are_frozen_and_hashable() -> None:
    detail = decode(SEED["data"])
    with pytest.raises(AttributeError):
        detail.job_info = None  # type: ignore[misc]
    assert hash(detail) == hash(decode(SEED["data"]))
    entry = UncompressedFileInfo(name="x", reservation_info={"a": 1})
    assert hash(entry) == hash(UncompressedFileInfo(name="x", reservation_info={"b": 2}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
wire_keys = st.sampled_from([
    "jobInfo", "taskInfos", "uncompressedFileList", "status", "progress", "taskId", "type",
    "subFileList", "updatedAt", "updateAt", "createTime", "fileSize", "reservatioinInfo",
    "downloadUrl", "taskResultCode", "name",
])
near_valid = st.recursive(
    st.none() | st.integers() | st.text(max_size=16) | st.sampled_from(["1", "20231212095227"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(wire_keys, children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, near_valid))
def test_any_json_gives_a_job_detail_or_a_response_decode_error(data: Any) -> None:
    try:
        result = decode(data)
    except ResponseDecodeError:
        return
    assert isinstance(result, JobDetail)


slow = make_converter(fast_path=False)
fast_first = make_converter()


def _outcome(converter: cattrs.Converter, data: Any) -> JobDetail | None:
    try:
        return converter.structure(data, JobDetail)  # type: ignore[no-any-return]
    except Exception:
        return None


@settings(max_examples=500, deadline=None)
@given(st.one_of(near_valid, st.builds(lambda: json.loads(json.dumps(SEED["data"])))))
def test_the_fast_path_agrees_with_the_full_converter(data: Any) -> None:
    """What the generated fast functions accept, they build exactly as cattrs would."""
    assert _outcome(fast_first, data) == _outcome(slow, data)


def test_the_fast_path_takes_the_common_case() -> None:
    from koodrive_async._convert import _FAST

    for cls, document in ((JobDetail, SEED["data"]), (JobDetail, _all_wire_fields())):
        assert _FAST[cls](document) == slow.structure(document, cls)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gives_data_or_a_koodrive_error(body: bytes) -> None:
    from koodrive_async.errors import KooDriveError

    with contextlib.suppress(KooDriveError):
        proto.decode_envelope(200, body)
