"""The envelope and the errors it becomes (``_envelope``), with literals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import koodrive_async as kd
from koodrive_async import _envelope as envelope
from koodrive_async import _protocol as proto
from koodrive_async import _redact as redact
from koodrive_async.errors import (
    APIError,
    ResponseDecodeError,
    ServerError,
)

TOKEN = "tok-SECRET-4e1f9c"

SIG = "ab" * 32

HMAC = f"HMAC-SHA256 AppId=a,SignedHeaders=host;x-date;x-user-id,Signature={SIG}"



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


def test_secrets_of_a_client() -> None:
    from koodrive_async.auth import AppAuth, TokenAuth

    assert envelope.secrets_of(TokenAuth(TOKEN), None) == ("Bearer+" + TOKEN, TOKEN)
    assert envelope.secrets_of(AppAuth("a", "app-secret-1"), HMAC) == (HMAC, SIG, "app-secret-1")
    # The signature sent is unknown: anything shaped like one stands for it.
    assert envelope.secrets_of(AppAuth("a", "app-secret-1"), None) == (
        "app-secret-1", redact.SIGNATURE_SHAPE,
    )


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



# -- skim_unfinished: an unfinished job's jobInfo from the head of the answer --------------

_INFO = b'{"taskId":"1","status":1,"progress":40}'


@pytest.mark.parametrize("body", [
    b'{"data":{"jobInfo":' + _INFO + b',"taskInfos":[{"id":"1"}]},"code":0,"msg":"OK"}',
    b'{ "code" : "0", "msg" : "a \\" }", "data" : { "jobInfo" : ' + _INFO + b' , "x": [1]}}',
    b'{"code":500,"data":{"jobInfo":' + _INFO + b'},"code":0}',  # the last code counts
    b'{"data":{"jobInfo":' + _INFO + b',"taskInfos":[{{{ broken'  # the rest is not read
    b' },"code":0,"msg":"OK"}\n',
])
def test_skim_takes_the_job_info_of_an_unfinished_job(body: bytes) -> None:
    assert envelope.skim_unfinished(body) == {
        "jobInfo": {"taskId": "1", "status": 1, "progress": 40}
    }


@pytest.mark.parametrize("body", [
    b'{"data":{"jobInfo":{"status":2,"progress":100}},"code":0}',  # terminal: read in full
    b'{"data":{"jobInfo":{"status":3}},"code":0}',
    b'{"data":{"jobInfo":{"status":"1"}},"code":0}',  # not the usual type
    b'{"data":{"jobInfo":{"progress":5}},"code":0}',  # no status
    b'{"data":{"jobInfo":{"status":1}},"code":5}',  # an error
    b'{"data":{"jobInfo":{"status":1}},"code":0,"code":13000102}',
    b'{"data":{"jobInfo":{"status":1}},"msg":"OK"}',  # no code
    b'{"data":{"jobInfo":{"status":1}},"code":false}',
    b'{"data":{"taskInfos":[],"jobInfo":{"status":1}},"code":0}',  # jobInfo not first
    b'{"data":{"jobInfo":{"status":1,"x":{"y":1}}},"code":0}',  # not scalars only
    b'{"data":{"jobInfo":{"status":1,"taskName":"a}b"}},"code":0}',
    b'{"data":{"jobInfo":{"status":1}},"code":0,"extra":{"a":1}}',  # a member not scalar
    b'{"data":{"jobInfo":{"status":1}},"code":0',  # no closing brace
    b'[{"data":{"jobInfo":{"status":1}},"code":0}]',
    b'',
])
def test_skim_leaves_every_other_answer_to_the_full_parse(body: bytes) -> None:
    assert envelope.skim_unfinished(body) is None


def test_skim_seeks_the_head_in_its_first_kilobytes_only() -> None:
    # Past them (a 24 MiB msg before data stalled each poll 20 s) the full parse reads it.
    def answer(msg: bytes) -> bytes:
        return b'{"code":0,"msg":"' + msg + b'","data":{"jobInfo":' + _INFO + b"}}"

    assert envelope.skim_unfinished(answer(b'a\\"' * 1000)) is not None  # 3,000 bytes
    assert envelope.skim_unfinished(answer(b"a" * 5000)) is None
    assert envelope.skim_unfinished(answer(b"a" * 24 * 2**20)) is None


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(
    info=st.dictionaries(st.sampled_from(["taskId", "progress", "taskName", "endTime"]),
                         _scalars),
    status=st.one_of(st.integers(-1, 8), st.sampled_from(["1", None])),
    before=st.dictionaries(st.sampled_from(["code", "msg", "traceId"]), _scalars, max_size=2),
    after=st.dictionaries(st.sampled_from(["code", "msg"]), _scalars, max_size=2),
    rest=st.lists(st.dictionaries(st.sampled_from(["id", "status", "code"]), _scalars),
                  max_size=3),
    indent=st.booleans(),
)
def test_skim_agrees_with_the_full_parse(
    info: dict[str, object], status: object, before: dict[str, object],
    after: dict[str, object], rest: list[object], indent: bool,
) -> None:
    """Whatever it takes, a full parse of the same answer says: a success, and this jobInfo
    of a job that is not over. And it takes the usual answer of one."""
    info = {**info, "status": status}
    document = {**before, "data": {"jobInfo": info, "taskInfos": rest},
                **{k: v for k, v in after.items() if k not in before}}
    body = json.dumps(document, indent=2 if indent else None).encode()
    skimmed = envelope.skim_unfinished(body)
    parsed = json.loads(body)
    success = envelope.is_success_code(parsed.get("code"))
    unfinished = type(status) is int and not kd.JobStatus.is_terminal(status)
    if skimmed is not None:
        assert success and unfinished
        assert skimmed == {"jobInfo": parsed["data"]["jobInfo"]}
    plain = not any(isinstance(v, str) and "}" in v for v in info.values())
    if success and unfinished and plain and type(parsed.get("code")) is not bool:
        assert skimmed is not None
