"""The protocol core as plain functions of literals: no sockets here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import koodrive_async as kd
from koodrive_async import _convert as convert
from koodrive_async import _envelope as envelope
from koodrive_async import _protocol as proto
from koodrive_async import _redact as redact
from koodrive_async import _stamps as stamps
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


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_bad_job_ids_are_refused(job_id: str) -> None:
    with pytest.raises(ValueError, match="job id"):
        proto.validate_job_id(job_id)


@pytest.mark.parametrize("job_id", [None, 1309243162258308352, b"123"])
def test_non_string_job_ids_are_refused(job_id: object) -> None:
    with pytest.raises(ValueError, match="must be a str"):
        proto.validate_job_id(job_id)


def test_good_job_ids_map_to_one_path_segment() -> None:
    assert proto.job_path(proto.validate_job_id("1309243162258308352")) == (
        "/koodrive/ose/v1/1309243162258308352"
    )
    assert proto.job_path(proto.validate_job_id("a:b@c+d")) == "/koodrive/ose/v1/a%3Ab%40c%2Bd"


def test_x_date_is_utc_and_truncated_never_rounded_up() -> None:
    moment = datetime(2025, 11, 3, 7, 1, 40, 999000, tzinfo=UTC).timestamp()
    assert stamps.format_x_date(moment) == "20251103T070140Z"
    assert stamps.parse_x_date("20251103T070140Z") == int(moment)
    assert stamps.parse_x_date("2025-11-03") is None


def test_http_dates() -> None:
    assert stamps.parse_http_date("Mon, 03 Nov 2025 07:01:40 GMT") == (
        datetime(2025, 11, 3, 7, 1, 40, tzinfo=UTC).timestamp()
    )
    for bad in (None, "", "yesterday", "Mon, 99 Nov 2025 07:01:40 GMT", "x" * 100):
        assert stamps.parse_http_date(bad) is None


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


def test_trace_ids_are_58_characters_and_unique() -> None:
    ids = {stamps.new_trace_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 58 and i.isalnum() for i in ids)


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


def test_success_envelope_accepts_code_as_number_or_string() -> None:
    assert envelope.decode_envelope(200, b'{"code":0,"msg":"OK","data":"1"}') == "1"
    assert envelope.decode_envelope(200, b'{"code":"0","msg":"\xe6\x88\x90\xe5\x8a\x9f"}') is None


def test_http_200_with_a_business_error_is_an_api_error() -> None:
    with pytest.raises(APIError) as caught:
        envelope.decode_envelope(200, b'{"code":13000102,"msg":"parameter invalid"}', trace_id="t1")
    error = caught.value
    assert type(error) is APIError
    assert (error.http_status, error.code, error.msg, error.trace_id) == (
        200, 13000102, "parameter invalid", "t1",
    )
    assert "13000102" in str(error) and "parameter invalid" in str(error)


def test_error_bodies_old_template_and_non_json() -> None:
    error = envelope.api_error(400, b'{"error_code":"13000101","error_msg":"bad"}',
                            trace_id=None, retry_after=None)
    assert (error.code, error.msg) == (13000101, "bad")
    error = envelope.api_error(502, b"<html>Bad   Gateway</html>", trace_id=None, retry_after=2.0)
    assert isinstance(error, ServerError)
    assert error.code is None and error.msg == "<html>Bad Gateway</html>"
    assert error.retry_after == 2.0
    error = envelope.api_error(401, b'{"code":"APIGW.0301","msg":"Incorrect IAM"}',
                            trace_id=None, retry_after=None)
    assert error.code == "APIGW.0301"


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1,2]", b'"x"', b'{"msg":"OK"}', b"\xff\xfe"],
)
def test_malformed_success_bodies(body: bytes) -> None:
    with pytest.raises(ResponseDecodeError):
        envelope.decode_envelope(200, body)


def test_retryable_errors() -> None:
    def api(status: int, code: int | None = None) -> APIError:
        return proto.error_class(status, code)("x", http_status=status, code=code)

    assert proto.is_retryable(TransportError("x"))
    assert proto.is_retryable(RequestTimeoutError("x"))
    for status in (408, 429, 500, 502, 503, 504):
        assert proto.is_retryable(api(status))
    assert proto.is_retryable(api(200, 13000201))
    assert proto.is_retryable(api(400, 13000201))
    for status in (400, 401, 403, 404, 409):
        assert not proto.is_retryable(api(status))
    for status in (301, 302, 307, 308):  # even with the transient code: never followed
        assert not proto.is_retryable(api(status, 13000201))
        assert type(api(status, 13000201)) is APIError
    assert not proto.is_retryable(ResponseDecodeError("x"))
    assert not proto.is_retryable(ValueError("x"))


def test_clock_skew_explains_a_401() -> None:
    date = "Mon, 03 Nov 2025 07:01:40 GMT"
    assert stamps.x_date_rejected_for_clock("20251103T070141Z", date)  # ahead
    assert stamps.x_date_rejected_for_clock("20251103T064639Z", date)  # older than 15 min
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z", date)
    assert not stamps.x_date_rejected_for_clock("20251103T065000Z", date)
    assert not stamps.x_date_rejected_for_clock(None, date)
    assert not stamps.x_date_rejected_for_clock("20251103T070141Z", None)


def test_server_clock_offset() -> None:
    local = datetime(2025, 11, 3, 7, 3, 40, tzinfo=UTC).timestamp()
    assert stamps.server_clock_offset("Mon, 03 Nov 2025 07:01:40 GMT", local) == -120.0
    assert stamps.server_clock_offset("garbage", local) is None


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


# -- issue 9: the envelope's success, said once ------------------------------------------


@pytest.mark.parametrize(
    ("code", "success"),
    [(0, True), ("0", True), (False, False), (0.0, False), (True, False), ("00", False),
     (" 0", False), ("-0", False), (None, False), ([0], False), (13000201, False)],
)
def test_success_is_exactly_int_0_or_string_0(code: object, success: bool) -> None:
    assert envelope.is_success_code(code) is success


@pytest.mark.parametrize(
    ("code", "kept"),
    [(13000201, 13000201), ("13000201", 13000201), ("-5", -5), ("00", "00"), ("-0", "-0"),
     (" 1", " 1"), ("APIGW.0301", "APIGW.0301"), (False, "false"), (True, "true"),
     (0.0, "0.0"), ([1], "[1]"), (None, None), ("x" * 100, "x" * 64),
     ("1" * 30, "1" * 30)],
)
def test_business_codes_are_kept_faithfully(code: object, kept: object) -> None:
    assert envelope.business_code(code) == kept
    assert type(envelope.business_code(code)) is type(kept)


@pytest.mark.parametrize(
    ("body", "kept"),
    [(b'{"code":false,"msg":"quota exceeded","data":"123"}', "false"),
     (b'{"code":0.0,"data":"1"}', "0.0"), (b'{"code":0e0,"data":"1"}', "0.0"),
     (b'{"code":"00","data":"1"}', "00"), (b'{"code":null,"data":"1"}', None)],
)
def test_a_code_that_only_looks_like_0_is_an_api_error(body: bytes, kept: object) -> None:
    with pytest.raises(APIError) as caught:
        envelope.decode_envelope(200, body)
    assert caught.value.code == kept and type(caught.value.code) is type(kept)


def test_a_transient_code_sent_as_a_string_is_still_transient() -> None:
    with pytest.raises(ServerError) as caught:
        envelope.decode_envelope(200, b'{"code":"13000201","msg":"internal invoke failure"}')
    assert caught.value.code == 13000201 and proto.is_retryable(caught.value)


# -- issue 9: the clock learned only from a plausible Date; X-Date never breaks ------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [(float("nan"), "19700101T000000Z"), (float("-inf"), "19700101T000000Z"),
     (-1.0, "19700101T000000Z"), (float("inf"), "99991231T235959Z"),
     (1e20, "99991231T235959Z"), (253402300800.0, "99991231T235959Z"),
     (253402300799.9, "99991231T235959Z"), (0.0, "19700101T000000Z")],
)
def test_x_date_never_raises_and_is_always_16_characters(moment: float, expected: str) -> None:
    assert stamps.format_x_date(moment) == expected


def test_only_a_plausible_date_teaches_an_offset() -> None:
    local = datetime(2025, 11, 3, 7, 1, 40, tzinfo=UTC).timestamp()
    for bad in ("Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0100 00:00:00 GMT",
                "Wed, 31 Dec 1969 23:59:59 GMT",
                "Tue, 11 Nov 2025 07:01:41 GMT",   # 8 days and a second ahead
                "Mon, 27 Oct 2025 07:01:39 GMT"):  # 7 days and a second behind
        assert stamps.server_clock_offset(bad, local) is None, bad
    assert stamps.server_clock_offset("Mon, 10 Nov 2025 07:01:40 GMT", local) == 7 * 86400
    assert stamps.server_clock_offset("Mon, 27 Oct 2025 07:01:40 GMT", local) == -7 * 86400
    assert stamps.MAX_CLOCK_OFFSET == 7 * 86400


def test_an_implausible_date_explains_no_401() -> None:
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z",
                                               "Fri, 31 Dec 9999 23:59:59 GMT")
    assert not stamps.x_date_rejected_for_clock("20251103T070140Z",
                                               "Mon, 01 Jan 0100 00:00:00 GMT")
    assert stamps.x_date_rejected_for_clock("20251103T070140Z", "Sun, 02 Nov 2025 07:01:40 GMT")


# -- issue 9: the client's secrets never quoted back -------------------------------------

TOKEN = "tok-SECRET-4e1f9c"
SIG = "ab" * 32
HMAC = f"HMAC-SHA256 AppId=a,SignedHeaders=host;x-date;x-user-id,Signature={SIG}"


def test_secrets_to_redact_finds_the_credential_inside_the_authorization() -> None:
    assert redact.secrets_to_redact("Bearer+" + TOKEN) == ("Bearer+" + TOKEN, TOKEN)
    assert redact.secrets_to_redact("AT " + TOKEN) == ("AT " + TOKEN, TOKEN)
    assert redact.secrets_to_redact("Tok:" + TOKEN, token_prefix="Tok:") == ("Tok:" + TOKEN, TOKEN)
    assert redact.secrets_to_redact("Bearer+a/b=c+d" + TOKEN) == (  # and percent-encoded
        "Bearer+a/b=c+d" + TOKEN, "a%2Fb%3Dc%2Bd" + TOKEN, "a/b=c+d" + TOKEN,
    )
    assert redact.secrets_to_redact(HMAC, also=["app-secret-1"]) == (HMAC, SIG, "app-secret-1")
    assert redact.secrets_to_redact("Bearer+t") == ("Bearer+t",)  # "t" is too short
    assert redact.secrets_to_redact(None) == ()


def test_secrets_of_a_client() -> None:
    from koodrive_async.auth import AppAuth, TokenAuth

    assert envelope.secrets_of(TokenAuth(TOKEN), None) == ("Bearer+" + TOKEN, TOKEN)
    assert envelope.secrets_of(AppAuth("a", "app-secret-1"), HMAC) == (HMAC, SIG, "app-secret-1")
    # The signature sent is unknown: anything shaped like one stands for it.
    assert envelope.secrets_of(AppAuth("a", "app-secret-1"), None) == (
        "app-secret-1", redact.SIGNATURE_SHAPE,
    )


def test_error_texts_are_redacted_before_they_are_cut() -> None:
    secrets = redact.secrets_to_redact("Bearer+" + TOKEN)
    long_msg = "m" * 495 + TOKEN  # the 500-character cut would keep "tok-S"
    body = f'{{"code":"Bearer+{TOKEN}","msg":"{long_msg}"}}'.encode()
    error = envelope.api_error(401, body, trace_id=None, retry_after=None, secrets=secrets)
    assert error.code == redact.REDACTED  # the whole Authorization value, echoed as a code
    assert error.msg == "m" * 495 + "<reda"
    page = b" " * 4090 + TOKEN.encode()  # across the 4096-byte window
    error = envelope.api_error(502, page, trace_id=None, retry_after=None, secrets=secrets)
    assert error.msg is None or "tok" not in error.msg
    page = b"<p>" + b"y" * 190 + TOKEN.encode()  # across the 200-character cut
    error = envelope.api_error(502, page, trace_id=None, retry_after=None, secrets=secrets)
    assert error.msg is not None and "tok" not in error.msg


def test_decode_envelope_redacts_what_it_quotes() -> None:
    from koodrive_async.auth import TokenAuth

    auth, sent = TokenAuth(TOKEN), "Bearer+" + TOKEN
    for status, body in [(401, b'{"code":1,"msg":"bad Bearer+' + TOKEN.encode() + b'"}'),
                         (200, b"<html>" + TOKEN.encode()),
                         (200, b'{"code":"' + TOKEN.encode() + b'"}')]:
        with pytest.raises((APIError, ResponseDecodeError)) as caught:
            envelope.decode_envelope(status, body, authorization=sent, auth=auth)
        assert TOKEN not in str(caught.value) + repr(caught.value.__dict__)
        assert redact.REDACTED in str(caught.value)
        assert caught.value.__context__ is None  # the JSON error holds the whole body


# -- issue 9: an answer about another job -------------------------------------------------


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


# -- issue 9: "terminal" said once, on the model ------------------------------------------


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
