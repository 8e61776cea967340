"""Wire documents -> models: every documented variant, and only models or ResponseDecodeError."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from cattrs.errors import ForbiddenExtraKeysError
from hypothesis import given, settings
from hypothesis import strategies as st

import koodrive_async as kd
from koodrive_async import _convert as convert
from koodrive_async import _envelope as envelope
from koodrive_async._convert import fast_structurers, make_converter
from koodrive_async._redact import secrets_to_redact
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
    return convert.structure(data, JobDetail, what="test")


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
    fast = fast_structurers()
    for cls, document in ((JobDetail, SEED["data"]), (JobDetail, _all_wire_fields())):
        assert fast[cls](document) == slow.structure(document, cls)


def test_a_decoded_task_info_holds_only_what_the_document_has_and_behaves_whole() -> None:
    """The fast path stores only the fields sent (the class holds the defaults), so the
    instance's dict stays small; reads, equality, hashing, pickling and evolve see every
    field as if it had been built whole."""
    import pickle
    import sys

    decoded = fast_structurers()[TaskInfo](SEED["data"]["taskInfos"][0])
    whole = TaskInfo(**{field.name: getattr(decoded, field.name)
                        for field in attrs.fields(TaskInfo)})
    assert set(vars(decoded)) == {"file_id", "status", "new_file_id", "src_container_id"}
    assert decoded.result_code is None and decoded.create_time is None
    assert decoded == whole and hash(decoded) == hash(whole) and repr(decoded) == repr(whole)
    assert pickle.loads(pickle.dumps(decoded)) == whole
    assert attrs.evolve(decoded, result_code="0") == attrs.evolve(whole, result_code="0")
    # A split table sharing the class's keys, not a combined dict of its own (464 bytes).
    assert sys.getsizeof(vars(decoded)) < sys.getsizeof(dict(vars(whole)))


def test_a_decoded_slotted_model_is_of_its_own_class_and_frozen() -> None:
    """JobInfo and JobDetail are filled as a settable subclass and then given their class:
    what comes out is exactly the model, as immutable as one built by its constructor."""
    import pickle

    detail = fast_structurers()[JobDetail](SEED["data"])
    assert type(detail) is JobDetail and type(detail.job_info) is JobInfo
    assert detail.job_info is not None and detail.job_info.task_id == "1309243162258308352"
    for model, field in ((detail, "task_infos"), (detail.job_info, "progress")):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(model, field, None)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            delattr(model, field)
    rebuilt = JobInfo(**attrs.asdict(detail.job_info, recurse=False))
    assert detail.job_info == rebuilt and hash(detail.job_info) == hash(rebuilt)
    assert pickle.loads(pickle.dumps(detail)) == detail
    assert repr(detail.job_info).startswith("JobInfo(")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gives_data_or_a_koodrive_error(body: bytes) -> None:
    from koodrive_async.errors import KooDriveError

    with contextlib.suppress(KooDriveError):
        envelope.decode_envelope(200, body)


# -- kd.to_wire / kd.from_wire: the client's own converter, both directions -----------------

#: Strings as ``from_wire`` leaves them (an integer-like ``resultCode`` string is read as the
#: integer, so a model holding one is not what the wire can carry).
texts = st.text(max_size=12)
codes = st.integers(-(2**63), 2**63) | texts.filter(lambda s: not s.strip().lstrip("-").isdigit())
local_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
                           ).map(lambda d: d.replace(microsecond=0))
epoch_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                           timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_data = st.recursive(json_leaves, lambda c: st.lists(c, max_size=3)
                         | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _int_enum(enum_cls: Any) -> st.SearchStrategy[Any]:
    return _maybe(st.sampled_from(enum_cls) | st.integers(-10, 10**6))


job_infos = st.builds(
    JobInfo, task_id=_maybe(texts), task_name=_maybe(texts), user_id=_maybe(texts),
    task_type=_int_enum(TaskType), action_type=_int_enum(ActionType),
    status=_int_enum(JobStatus), task_result_code=_int_enum(TaskResultCode),
    result_code=_maybe(codes), progress=_maybe(st.integers(0, 100)),
    download_url=_maybe(texts), content_num=_maybe(st.integers(0, 10**9)),
    container_id=_maybe(texts), tenant_id=_maybe(texts), begin_time=_maybe(local_times),
    end_time=_maybe(local_times), create_time=_maybe(local_times),
)
task_infos = st.builds(
    TaskInfo, id=_maybe(texts), file_id=_maybe(texts), file_path=_maybe(texts),
    status=_maybe(st.sampled_from(TaskStatus) | texts), new_file_id=_maybe(texts),
    new_file_path=_maybe(texts), src_container_id=_maybe(texts), result_code=_maybe(texts),
    result_desc=_maybe(texts), tenant_id=_maybe(texts), create_time=_maybe(local_times),
)
uncompressed_files: st.SearchStrategy[UncompressedFileInfo] = st.deferred(lambda: st.builds(
    UncompressedFileInfo, container_id=_maybe(texts), file_id=_maybe(texts), name=_maybe(texts),
    file_size=_maybe(st.integers(0, 2**53)), type=_int_enum(FileType),
    updated_at=_maybe(epoch_times),
    sub_file_list=st.lists(uncompressed_files, max_size=2).map(tuple), reason=_maybe(texts),
    code=_maybe(texts), reservation_info=_maybe(st.dictionaries(texts, json_data, max_size=3)),
))
job_details = st.builds(
    JobDetail, job_info=_maybe(job_infos), task_infos=st.lists(task_infos, max_size=3).map(tuple),
    uncompressed_file_list=st.lists(uncompressed_files, max_size=3).map(tuple),
)
any_model = job_details | job_infos | task_infos | uncompressed_files


@settings(max_examples=300, deadline=None)
@given(any_model)
def test_from_wire_reads_back_what_to_wire_writes(model: Any) -> None:
    wire = kd.to_wire(model)
    assert kd.from_wire(type(model), wire) == model
    # Plain JSON data: through a JSON text and back, it is still the same model, and the
    # strict converter (a rename typo fails it) reads it too.
    assert kd.from_wire(type(model), json.loads(json.dumps(wire))) == model
    assert strict.structure(wire, type(model)) == model


def test_to_wire_writes_the_seed_example_as_the_service_sent_it() -> None:
    assert kd.to_wire(kd.from_wire(JobDetail, SEED["data"])) == SEED["data"]
    assert kd.to_wire(kd.from_wire(JobDetail, SEED["data"])) == {
        "jobInfo": {
            "taskId": "1309243162258308352", "userId": "40086000004871666-369528171409614001",
            "taskType": 1, "actionType": 101, "status": 2, "progress": 100, "taskResultCode": 1,
            "contentNum": 1, "containerId": "IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4",
            "tenantId": "40086000004871666", "beginTime": "20231212095227",
            "endTime": "20231212095227", "createTime": "20231212095227",
        },
        "taskInfos": [{
            "fileId": "FuZmQ66CF0DdpKRG1Y29Iwajbq04Nhwu3", "status": "1",
            "newFileId": "FtEXHCpfqHueAHFbEmWZNkqUH_K866MVn",
            "srcContainerId": "IAADfsBFCO6WtAtuA315074383680425b8aa9a130cba2d4",
        }],
    }


def test_to_wire_formats_and_what_it_leaves_out() -> None:
    wire = kd.to_wire(kd.from_wire(JobDetail, _all_wire_fields()))
    expected = _all_wire_fields()
    entry = expected["uncompressedFileList"][0]
    del entry["reason"], entry["code"], entry["subFileList"]  # None and [] are left out
    assert wire == expected
    assert type(wire["jobInfo"]["status"]) is int and type(wire["taskInfos"][0]["status"]) is str
    assert wire["uncompressedFileList"][0]["reservatioinInfo"] == {"k": [1]}
    assert wire["uncompressedFileList"][0]["updatedAt"] == 1700000000000
    assert kd.to_wire(JobDetail()) == {} and kd.to_wire(TaskInfo()) == {}
    # Unknown enum values go back raw; a listing keeps its tree; an empty mapping is kept.
    assert kd.to_wire(JobInfo(status=9, task_type=42)) == {"taskType": 42, "status": 9}
    assert kd.to_wire(TaskInfo(status="5")) == {"status": "5"}
    tree = UncompressedFileInfo(name="a/", type=FileType.DIRECTORY, reservation_info={},
                                sub_file_list=(UncompressedFileInfo(name="a/b", file_size=1),))
    assert kd.to_wire(tree) == {"name": "a/", "type": 2, "reservatioinInfo": {},
                                "subFileList": [{"name": "a/b", "fileSize": 1}]}
    # The wire has whole seconds and whole milliseconds; a naive updated_at is taken as UTC.
    info = JobInfo(create_time=datetime(2024, 1, 2, 3, 4, 5, 999999))
    assert kd.to_wire(info) == {"createTime": "20240102030405"}
    naive = UncompressedFileInfo(updated_at=datetime(2023, 11, 14, 22, 13, 20, 123456))
    assert kd.to_wire(naive) == {"updatedAt": 1700000000123}


def test_to_wire_and_from_wire_take_only_the_models() -> None:
    with pytest.raises(TypeError, match="to_wire takes a JobDetail"):
        kd.to_wire({"jobInfo": {}})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_wire reads a JobDetail"):
        kd.from_wire(dict, {})


def test_from_wire_is_the_client_decoder() -> None:
    assert kd.from_wire(JobDetail, SEED["data"]) == decode(SEED["data"])
    assert kd.from_wire(TaskInfo, {"status": 2, "fileId": 7}) == TaskInfo(
        status=TaskStatus.FAILED, file_id="7")
    assert kd.from_wire(JobInfo, {"status": 9}).status == 9


@pytest.mark.parametrize(
    ("cls", "document", "where"),
    [
        (JobDetail, [], "$"),
        (JobDetail, {"jobInfo": {"status": "done"}}, "$.jobInfo.status"),
        (JobDetail, {"taskInfos": [{}, {"createTime": "yesterday"}]}, "$.taskInfos[1].createTime"),
        (JobInfo, {"progress": [50]}, "$.progress"),
        (TaskInfo, "x", "$"),
        (UncompressedFileInfo, {"subFileList": [{"updatedAt": "soon"}]},
         "$.subFileList[0].updatedAt"),
    ],
)
def test_from_wire_errors_name_the_wire_path(cls: type, document: Any, where: str) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        kd.from_wire(cls, document)
    assert any(problem.endswith("@ " + where) for problem in caught.value.problems), (
        caught.value.problems
    )
    assert str(caught.value).startswith(f"{cls.__name__}: unexpected document: ")
    assert caught.value.__context__ is None and caught.value.__cause__ is None


# -- issue 9: problems quote server values, never a secret (moved from test_protocol) --------

TOKEN = "tok-SECRET-4e1f9c"


def test_structure_problems_quote_redacted_values() -> None:
    data = {"jobInfo": {"status": "Bearer+" + TOKEN, "progress": TOKEN + "0" * 40}}
    with pytest.raises(ResponseDecodeError) as caught:
        convert.structure(data, JobDetail, what="x", secrets=secrets_to_redact(None, also=[TOKEN]))
    text = str(caught.value) + repr(caught.value.problems)
    assert "tok-S" not in text and "<redacted>" in text
    assert caught.value.__context__ is None
    with pytest.raises(ResponseDecodeError, match=r"got dict$"):
        convert.decode_job_id({"id": TOKEN})  # the kind of value only, never its text


def test_secrets_are_worked_out_only_when_a_document_fails() -> None:
    calls: list[int] = []

    def secrets() -> tuple[str, ...]:
        calls.append(1)
        return (TOKEN,)

    assert convert.job_detail(SEED["data"], "1309243162258308352", secrets=secrets).terminal
    assert calls == []
    with pytest.raises(ResponseDecodeError) as caught:
        convert.job_detail({"jobInfo": {"status": TOKEN}}, "1", secrets=secrets)
    assert calls == [1] and TOKEN not in str(caught.value) and "<redacted>" in str(caught.value)
    with pytest.raises(ResponseDecodeError, match=r"about job '<redacted>'"):
        convert.job_detail({"jobInfo": {"taskId": TOKEN}}, "1", secrets=secrets)
