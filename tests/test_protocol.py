"""The protocol core as plain functions of literals: no sockets here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import koodrive_async as kd
from koodrive_async import _convert as convert
from koodrive_async import _envelope as envelope
from koodrive_async import _protocol as proto
from koodrive_async.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    TransportError,
)
from koodrive_async.models import ActionType, FileRef, TaskType

BAD_IDS = [
    "", "a/b", "/", "a?b", "a#b", "..", "a..b", "a b", " 1", "1\t", "1\n", "a%2Fb", "a\\b",
    "jobs", "cancel", ".", "x" * 300, "\x00",
]

TOKEN = "tok-SECRET-4e1f9c"



@pytest.mark.parametrize("job_id", BAD_IDS)
def test_bad_job_ids_are_refused(job_id: str) -> None:
    with pytest.raises(ValueError, match="job id"):
        proto.validate_job_id(job_id)


@pytest.mark.parametrize("job_id", [None, 1309243162258308352, b"123"])
def test_non_string_job_ids_are_refused(job_id: object) -> None:
    for check in (proto.validate_job_id, proto.job_path):
        with pytest.raises(ValueError, match="must be a str"):
            check(job_id)


def test_good_job_ids_map_to_one_path_segment() -> None:
    assert proto.job_path("1309243162258308352") == (
        "/koodrive/ose/v1/1309243162258308352"
    )
    assert proto.job_path("a:b@c+d") == "/koodrive/ose/v1/a%3Ab%40c%2Bd"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0), ("1.5", 1.5), (" 2 ", 2.0), ("0", 0.0), ("-4", 0.0), ("1e9", 60.0),
        ("inf", 60.0), ("nan", None), ("soon", None), ("", None), (None, None),
        ("Mon, 03 Nov 2025 07:01:50 GMT", 10.0), ("Mon, 03 Nov 2025 07:01:00 GMT", 0.0),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2025, 11, 3, 7, 1, 40, tzinfo=UTC).timestamp()
    assert proto.parse_retry_after(value, now=now, cap=60.0) == expected


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, 13000102, BadRequestError), (401, None, AuthenticationError),
        (404, 13000404, NotFoundError), (429, None, RateLimitError), (500, 13000201, ServerError),
        (502, None, ServerError), (503, None, ServerError), (200, 13000201, ServerError),
        (200, 13000102, APIError), (403, "APIGW.0301", APIError), (408, None, APIError),
    ],
)
def test_error_class_from_status_and_code(status: int, code: int | None, cls: type) -> None:
    assert proto.error_class(status, code) is cls


def test_retryable_errors() -> None:
    def api(status: int, code: int | None = None) -> APIError:
        return proto.error_class(status, code)("x", http_status=status, code=code)

    assert proto.is_retryable(TransportError("x"))
    assert proto.is_retryable(RequestTimeoutError("x"))
    for status in (408, 429, 500, 502, 503, 504, 507, 520, 524, 599):
        assert proto.is_retryable(api(status))
    for status in (600, 799, 999):  # not HTTP statuses a server may use: not 5xx either
        assert not proto.is_retryable(api(status))
    for status in (501, 505):  # the request can never work: not even with the transient code
        assert not proto.is_retryable(api(status))
        assert proto.is_retryable(api(status, 13000201))
    assert proto.is_retryable(api(200, 13000201))
    assert proto.is_retryable(api(400, 13000201))
    for status in (400, 401, 403, 404, 409):
        assert not proto.is_retryable(api(status))
    for status in (301, 302, 307, 308):  # even with the transient code: never followed
        assert not proto.is_retryable(api(status, 13000201))
        assert type(api(status, 13000201)) is APIError
    assert not proto.is_retryable(ResponseDecodeError("x"))
    assert not proto.is_retryable(ValueError("x"))


def _body(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "src_container_id": "src", "dst_container_id": "dst", "files": ["f1"],
        "action_type": None, "new_file_path": None, "uncompress_file_paths": None,
        "password": None,
    }
    arguments.update(overrides)
    return proto.create_job_body(TaskType.COPY, **arguments)  # type: ignore[arg-type]


def test_create_job_body_in_wire_names() -> None:
    body = proto.create_job_body(
        TaskType.DECOMPRESS, src_container_id="src", dst_container_id="dst",
        files=[FileRef("f1", "/a.zip")], action_type=ActionType.EXTRACT_SELECTED,
        new_file_path="/out", uncompress_file_paths=["a/b.txt"], password="pw",
    )
    assert body == {
        "taskType": 5,
        "actionType": 503,
        "taskInfo": {
            "fileInfo": [{"fileId": "f1", "filePath": "/a.zip"}],
            "srcContainerId": "src",
            "newFilePath": "/out",
            "uncompressFilePaths": ["a/b.txt"],
        },
        "dstContainerId": "dst",
        "password": "pw",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"src_container_id": ""}, "src_container_id"),
        ({"dst_container_id": None}, "dst_container_id"),
        ({"files": []}, "files is empty"),
        ({"files": "f1"}, "not one string"),
        ({"files": [3]}, r"files\[0\]"),
        ({"files": [FileRef("")]}, r"files\[0\].file_id"),
        ({"files": ["f1"], "action_type": ActionType.DELETE_TO_RECYCLE_BIN}, "file_path"),
        ({"action_type": "201"}, "action_type"),
        ({"uncompress_file_paths": "a"}, "uncompress_file_paths"),
    ],
)
def test_create_job_body_names_what_is_wrong(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _body(**overrides)


def test_empty_recycle_bin_needs_no_files() -> None:
    body = proto.create_job_body(
        TaskType.EMPTY_RECYCLE_BIN, src_container_id="s", dst_container_id="d", files=(),
        action_type=None, new_file_path=None, uncompress_file_paths=None, password=None,
    )
    assert body["taskInfo"] == {"fileInfo": [], "srcContainerId": "s"}
    with pytest.raises(ValueError, match="task_type"):
        proto.create_job_body(
            "copy", src_container_id="s", dst_container_id="d", files=["f"],  # type: ignore[arg-type]
            action_type=None, new_file_path=None, uncompress_file_paths=None, password=None,
        )


def test_decode_job_id() -> None:
    assert convert.decode_job_id("1309") == "1309"
    assert convert.decode_job_id(1309) == "1309"
    for bad in (None, "", True, [1], {}):
        with pytest.raises(ResponseDecodeError):
            convert.decode_job_id(bad)


def test_job_detail_must_be_about_the_job_asked() -> None:
    with pytest.raises(ResponseDecodeError, match=r"about job '2'.*not job '1'") as caught:
        convert.job_detail({"jobInfo": {"taskId": "2", "status": 2}}, "1")
    assert caught.value.problems == ("$.data.jobInfo.taskId: expected '1'",)
    assert convert.job_detail({"jobInfo": {"status": 1}}, "1").status == 1  # no taskId: fine
    assert convert.job_detail({"jobInfo": {"taskId": 1, "status": 1}}, "1").status == 1
    assert convert.job_detail({}, "1").job_info is None
    with pytest.raises(ResponseDecodeError, match="expected an object"):
        convert.job_detail([], "1")
    with pytest.raises(ResponseDecodeError) as caught:
        convert.job_detail({"jobInfo": {"taskId": TOKEN}}, "1",
                           secrets=lambda: envelope.secrets_of(kd.TokenAuth(TOKEN), None))
    assert TOKEN not in str(caught.value) and "'<redacted>'" in str(caught.value)


def test_terminal_is_said_once_and_an_unknown_status_is_not_terminal() -> None:
    from koodrive_async.models import JobInfo, JobStatus

    assert [JobStatus.is_terminal(s) for s in (0, 1, 2, 3, 4, 7, None)] == [
        False, False, True, True, False, False, False,
    ]
    assert [s.terminal for s in JobStatus] == [False, False, True, True]
    assert not JobInfo(status=7).terminal and JobInfo(status=JobStatus.CANCELED).terminal
    assert JobStatus.is_known(3) and not JobStatus.is_known(7)


def test_the_schedule_polls_an_unknown_status_like_a_running_job_of_unknown_progress() -> None:
    from koodrive_async._schedule import PollPolicy, PollSchedule

    policy = PollPolicy(jitter=0.0)
    unknown, running = PollSchedule(policy), PollSchedule(policy)
    delays: list[tuple[float, float]] = []
    t = 0.0
    for _ in range(8):
        unknown.observe(t, 7, 50)
        running.observe(t, 1, None)
        delay = unknown.next_delay(t)
        delays.append((delay, running.next_delay(t)))
        t += delay
    assert all(a == b for a, b in delays)
    assert [a for a, _ in delays][:4] == [1.0, 1.5, 2.25, 3.375]
    assert unknown.predicted_finish(t) is None

