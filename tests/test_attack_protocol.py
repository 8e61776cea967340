"""Attacks on the protocol layer over real sockets: hostile servers of the tests' own on
127.0.0.1, and the emulator. Issue 9, points 4 and 8 (A to G below)."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading
import traceback
import warnings
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

import koodrive_async as kd
from koodrive_async import _redact as redact
from koodrive_async import _stamps as stamps
from koodrive_async.testing import KooDriveEmulator

from .conftest import Answer, Hostile, VirtualTime, make_client

X_DATE = re.compile(r"\d{8}T\d{6}Z")
# 2025-11-03T07:01:40Z: our wall clock in the clock tests.
OUR_NOW = 1_762_153_300.0


def envelope(data: Any = None, *, status: int = 200, date: str | None = None,
             code: Any = 0) -> web.Response:
    headers = {"Content-Type": "application/json"}
    if date is not None:
        headers["Date"] = date
    return web.Response(body=json.dumps({"code": code, "msg": "OK", "data": data}),
                        status=status, headers=headers)


def job(job_id: str, status: int = 2, **fields: Any) -> dict[str, Any]:
    return {"jobInfo": {"taskId": job_id, "status": status, **fields}}


class SteppingWall:
    """A wall clock one second later at every reading: time passes between the answer that
    taught an offset and the next X-Date (so a Date of 9999-12-31T23:59:59 overflows)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


# -- A. an implausible Date is not learned; X-Date never breaks ---------------------------


async def test_a_date_in_year_9999_or_100_is_ignored_and_a_normal_one_learned(
    hostile: Callable[[Answer], Awaitable[Hostile]],
) -> None:
    dates = iter([
        "Fri, 31 Dec 9999 23:59:59 GMT",   # X-Date would overflow into year 10000
        "Mon, 01 Jan 0100 00:00:00 GMT",   # X-Date would be 1000101T000000Z
        formatdate(OUR_NOW + 123, usegmt=True),  # a server 2 minutes ahead: learn it
    ])
    last = formatdate(OUR_NOW + 123, usegmt=True)

    def answer(request: web.Request, body: bytes) -> web.Response:
        return envelope(job("1"), date=next(dates, last))

    server = await hostile(answer)
    wall = SteppingWall(OUR_NOW)
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 wall_clock=wall, retry=kd.RetryPolicy.disabled()) as client:
        for _ in range(5):
            detail = await client.get_job("1")  # every call works
            assert detail.status is kd.JobStatus.COMPLETED
        offset = client.clock_offset
    x_dates = [headers["X-Date"] for _, _, headers, _ in server.requests]
    assert len(x_dates) == 5
    assert all(len(x) == 16 and X_DATE.fullmatch(x) for x in x_dates), x_dates
    sent = [stamps.parse_x_date(x) for x in x_dates]
    assert all(s is not None for s in sent)
    # The first three went out on our own clock: neither bad Date was learned ...
    for moment in sent[:3]:
        assert moment is not None and OUR_NOW <= moment <= OUR_NOW + 20
    # ... the normal one was: the server is 123 s ahead (less the seconds our clock stepped
    # between its Date and the reading that learned it).
    assert 110 <= offset <= 123
    for moment in sent[3:]:
        assert moment is not None and OUR_NOW + 110 <= moment <= OUR_NOW + 150


# -- B. success is exactly 0 or "0" ------------------------------------------------------

CREATE = {"src_container_id": "s", "dst_container_id": "d", "files": ["f"]}


@pytest.mark.parametrize(
    ("raw_code", "kept"),
    [(b"false", "false"), (b"0.0", "0.0"), (b"0e0", "0.0"), (b'"00"', "00"),
     (b'" 0"', " 0"), (b"null", None), (b"true", "true"), (b'"-0"', "-0")],
)
async def test_create_job_with_a_code_that_only_looks_like_0_is_an_api_error(
    hostile: Callable[[Answer], Awaitable[Hostile]], raw_code: bytes, kept: str | None,
) -> None:
    body = b'{"code": ' + raw_code + b', "msg": "quota exceeded", "data": "123"}'

    def answer(request: web.Request, _: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    server = await hostile(answer)
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.APIError) as caught:
            await client.create_job(kd.TaskType.COPY, **CREATE)  # type: ignore[arg-type]
    error = caught.value
    assert error.code == kept and type(error.code) is type(kept)
    assert error.code != 0 and error.code is not False
    assert (error.http_status, error.msg) == (200, "quota exceeded")
    assert len(server.requests) == 1


@pytest.mark.parametrize("raw_code", [b"0", b'"0"'])
async def test_create_job_with_code_0_or_string_0_succeeds(
    hostile: Callable[[Answer], Awaitable[Hostile]], raw_code: bytes
) -> None:
    body = b'{"code": ' + raw_code + b', "msg": "OK", "data": "123"}'
    server = await hostile(lambda r, b: web.Response(body=body, content_type="application/json"))
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t")) as client:
        assert await client.create_job(kd.TaskType.COPY, **CREATE) == "123"  # type: ignore[arg-type]


# -- C. the client's own secrets are never quoted back ------------------------------------

TOKEN = "tok-SECRET-4e1f9c0b7d2a"
APP_SECRET = "app-SECRET-93cd1e"
PAD = "x" * 30


def _echoing_answers(auth_value: str, credential: str) -> list[tuple[str, web.Response]]:
    """Answers that quote back what the client sent, each in another place."""
    both = f"{auth_value} / {credential}"
    plain = {"Content-Type": "text/html"}
    return [
        ("401 msg", web.json_response(
            {"code": 13000401, "msg": f"token {both} is invalid"}, status=401)),
        ("400 old template", web.json_response(
            {"error_code": auth_value, "error_msg": f"rejected: {both}"}, status=400)),
        # The secret across the 200-character cut of a snippet, and across the window.
        ("502 page", web.Response(
            text="<html>" + "y" * 170 + f" {both} " + "</html>", status=502, headers=plain)),
        ("502 long page", web.Response(
            text=" " * 4090 + credential + "</html>", status=502, headers=plain)),
        ("200 not json", web.Response(
            text="z" * 60 + f" {both} {PAD}", status=200, headers=plain)),
        ("200 code echo", web.json_response({"code": credential, "msg": both})),
        ("200 bad data", web.json_response(
            {"code": 0, "data": {"jobInfo": {"status": credential, "progress": auth_value,
                                             "taskInfos": credential}}})),
        ("200 other job", web.json_response(
            {"code": 0, "data": {"jobInfo": {"taskId": credential, "status": 2}}})),
    ]


def _texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), repr(error.__dict__), repr(error.args),
            "".join(traceback.format_exception(error))]


@pytest.mark.parametrize("kind", ["token", "provider", "prefixed", "app"])
async def test_a_server_echoing_the_credentials_gets_them_redacted(
    hostile: Callable[[Answer], Awaitable[Hostile]], kind: str,
) -> None:
    names: list[str] = []
    sent: list[str] = []

    def answer(request: web.Request, _: bytes) -> web.Response:
        # One case per call (a provider's 401 is asked again, and answered the same).
        value = request.headers["Authorization"]
        sent.append(value)
        credential = value.rsplit("Signature=", 1)[-1] if kind == "app" else TOKEN
        return _echoing_answers(value, credential)[len(names) - 1][1]

    async def provider() -> str:
        return TOKEN

    auth = {
        "token": kd.TokenAuth(TOKEN),
        "provider": kd.TokenAuth(provider),
        "prefixed": kd.TokenAuth("Bearer+" + TOKEN),
        "app": kd.AppAuth("app-1", APP_SECRET),
    }[kind]
    server = await hostile(answer)
    errors: list[kd.KooDriveError] = []
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=auth,
                                 retry=kd.RetryPolicy.disabled()) as client:
        for name, _ in _echoing_answers("a", "b"):
            names.append(name)
            with pytest.raises(kd.KooDriveError) as caught:
                await client.get_job("1")
            errors.append(caught.value)
    credentials = {TOKEN, APP_SECRET}
    credentials |= {value.rsplit("Signature=", 1)[-1] for value in sent if "Signature=" in value}
    secrets = credentials | set(sent)
    assert len(errors) == 8
    for name, error in zip(names, errors, strict=True):
        texts = _texts(error)
        for secret in secrets:
            for text in texts:
                assert secret not in text, (name, secret, text)
        for credential in credentials:  # not even the start of one, cut at some length
            assert credential[:12] not in str(error), (name, credential)
        if name != "502 long page":  # its window dropped the credential before redaction
            assert "<redacted" in str(error), (name, str(error))  # maybe cut itself
    kinds = [type(e) for e in errors]
    assert kinds[:4] == [kd.AuthenticationError, kd.BadRequestError, kd.ServerError,
                         kd.ServerError]
    assert kinds[4] is kd.ResponseDecodeError and kinds[6:] == [kd.ResponseDecodeError] * 2
    assert isinstance(errors[5], kd.APIError) and errors[5].code == redact.REDACTED


# -- D. a base_url path is kept as the prefix of every request, and signed ----------------


@pytest.mark.parametrize("kind", ["token", "app"])
async def test_every_endpoint_goes_under_the_base_url_prefix(vt: VirtualTime, kind: str) -> None:
    async with KooDriveEmulator(clock=vt.clock, path_prefix="/gw/kd") as emu:
        assert emu.base_url.endswith("/gw/kd")
        auth = kd.AppAuth(emu.app_id, emu.app_secret) if kind == "app" else kd.TokenAuth(emu.token)
        odd = emu.add_job(job_id="job:1@x", duration=1)
        async with make_client(emu, vt, auth=auth) as client:
            assert client.base_url == emu.base_url
            job_id = await client.create_job(kd.TaskType.COPY, **CREATE)  # type: ignore[arg-type]
            assert (await client.get_job(job_id)).job_info.task_id == job_id  # type: ignore[union-attr]
            assert (await client.get_job(odd)).job_info.task_id == odd  # type: ignore[union-attr]
            listed = [info.task_id async for info in client.list_jobs(status="pending")]
            assert job_id in listed
            await client.cancel_job(job_id)
            assert (await client.get_job(job_id)).status is kd.JobStatus.CANCELED
        paths = [(r.method, r.path) for r in emu.requests]
        assert paths == [
            ("POST", "/gw/kd/koodrive/ose/v1/jobs"),
            ("GET", f"/gw/kd/koodrive/ose/v1/{job_id}"),
            ("GET", "/gw/kd/koodrive/ose/v1/job:1@x"),
            ("GET", "/gw/kd/koodrive/ose/v1/jobs"),
            ("POST", "/gw/kd/koodrive/ose/v1/cancel"),
            ("GET", f"/gw/kd/koodrive/ose/v1/{job_id}"),
        ]
        if kind == "app":  # each one signed, and accepted, with the prefix in the path
            assert all(r.headers["Authorization"].startswith("HMAC-SHA256 ")
                       for r in emu.requests)


async def test_a_client_without_the_prefix_does_not_reach_the_api(vt: VirtualTime) -> None:
    async with KooDriveEmulator(clock=vt.clock, path_prefix="/gw") as emu:
        root = emu.base_url.removesuffix("/gw")
        async with kd.KooDriveClient(root, user_id=emu.user_id, auth=kd.TokenAuth(emu.token),
                                     retry=kd.RetryPolicy.disabled()) as client:
            with pytest.raises(kd.NotFoundError):
                await client.get_job(emu.add_job())
        assert emu.requests == []


@pytest.mark.parametrize("url", ["https://gw/koodrive/ose/v1", "https://gw/p/koodrive/ose/v1/"])
def test_a_base_url_with_the_api_path_in_it_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="API path"):
        kd.KooDriveClient(url, user_id="u", auth=kd.TokenAuth("t"))


# -- E. an answer about another job is not believed ---------------------------------------


async def test_an_answer_about_another_job_is_a_decode_error(
    hostile: Callable[[Answer], Awaitable[Hostile]],
) -> None:
    answers = iter([
        envelope(job("1309243162258308353")),  # another job
        envelope({"jobInfo": {"status": 1, "progress": 5}}),  # no taskId: accepted
        envelope({"jobInfo": {"taskId": 1309243162258308352, "status": 2}}),  # as a number
    ])
    server = await hostile(lambda r, b: next(answers))
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.ResponseDecodeError) as caught:
            await client.get_job("1309243162258308352")
        message = str(caught.value)
        assert "1309243162258308353" in message and "1309243162258308352" in message
        assert caught.value.problems == ("$.data.jobInfo.taskId: expected '1309243162258308352'",)
        assert (await client.get_job("1309243162258308352")).progress == 5
        done = await client.get_job("1309243162258308352")
        assert done.job_info is not None and done.job_info.task_id == "1309243162258308352"


async def test_a_wait_is_not_ended_by_another_jobs_answer(
    hostile: Callable[[Answer], Awaitable[Hostile]], vt: VirtualTime,
) -> None:
    # A confused cache answers "completed" for someone else's job: the wait does not end
    # on it, and ends once the real answer says so.
    answers = iter([envelope(job("999", 2)), envelope(job("7", 1)), envelope(job("7", 2))])
    server = await hostile(lambda r, b: next(answers))
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 clock=vt.clock, sleep=vt.sleep) as client:
        result = await client.wait_for_job("7", timeout=600)
    assert result.detail.job_info is not None and result.detail.job_info.task_id == "7"
    assert result.polls == 2 and len(server.requests) == 3


# -- F. a client belongs to the event loop that first used it -----------------------------


def _in_another_loop(call: Callable[[], Awaitable[object]]) -> BaseException | None:
    outcome: list[BaseException | None] = []

    def run() -> None:
        async def main() -> None:
            await call()

        try:
            asyncio.run(main())
        except BaseException as exc:  # handed back to the test's loop
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    return outcome[0]


@pytest.mark.parametrize("how", ["used", "entered", "borrowed"])
async def test_a_client_used_from_another_loop_is_refused_before_sending(
    emulator: KooDriveEmulator, vt: VirtualTime, how: str
) -> None:
    job_id = emulator.add_job()
    borrowed = aiohttp.ClientSession() if how == "borrowed" else None
    extra: dict[str, Any] = {"session": borrowed} if borrowed is not None else {}
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        async with make_client(emulator, vt, **extra) as client:
            if how == "used":
                await client.get_job(job_id)
            before = len(emulator.requests)
            error = await asyncio.to_thread(_in_another_loop, lambda: client.get_job(job_id))
            assert isinstance(error, kd.ClientClosedError), error
            assert isinstance(error, kd.KooDriveError) and isinstance(error, RuntimeError)
            assert "event loop" in str(error) and "one client per event loop" in str(error)
            assert len(emulator.requests) == before, "nothing was sent"
            # Still the client of its own loop.
            assert (await client.get_job(job_id)).job_info is not None
        if borrowed is not None:
            await borrowed.close()
        gc.collect()
    leaks = [w for w in caught_warnings if issubclass(w.category, ResourceWarning)]
    assert leaks == []


# -- G. an unknown status is "processing, progress unknown", not "terminal" ---------------


async def test_an_unknown_status_is_polled_like_a_running_job_until_it_really_ends(
    hostile: Callable[[Answer], Awaitable[Hostile]], vt: VirtualTime,
) -> None:
    start = vt.clock()
    seen: list[tuple[float, int]] = []

    def answer(request: web.Request, _: bytes) -> web.Response:
        elapsed = vt.clock() - start
        status = 7 if elapsed < 60 else 2
        seen.append((elapsed, status))
        return envelope(job("7", status, progress=50))

    server = await hostile(answer)
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 clock=vt.clock, sleep=vt.sleep) as client:
        result = await client.wait_for_job("7", timeout=900)
    assert result.status is kd.JobStatus.COMPLETED  # the wait ended only at status 2
    assert [s for _, s in seen[:-1]] == [7] * (len(seen) - 1) and seen[-1][1] == 2
    assert seen[-1][0] >= 60
    # The fallback schedule of a running job: an immediate first poll, then delays 1, 1.5,
    # 2.25 ... (x1.5, capped at 30 s), each within 10 % of that (the default jitter). The
    # first 8 delays add up to 49.3 s (44.3 to 54.2 s jittered), the 9th brings the sum to
    # 74.9 s (at least 67.4 s): so 9 polls see status 7, where a "terminal" 7 was polled
    # every 0.25 s (236 polls in the 60 s).
    polls_at_7 = len(seen) - 1
    assert polls_at_7 == 9, seen
    assert result.polls == len(seen)


# -- an archive listing nested past what can be read back ----------------------------------

def _listing(depth: int, *, as_object: bool) -> bytes:
    """An answer whose one file nests ``depth`` levels of subFileList (a list of one at each
    level, or one object where a list is documented)."""
    files = (b'{"name":"d","subFileList":' + (b"" if as_object else b"[")) * depth
    files += b'{"name":"x"}' + ((b"}" if as_object else b"]}") * depth)
    return (b'{"code":0,"data":{"jobInfo":{"taskId":"1","status":2},"uncompressedFileList":['
            + files + b"]}}")


@pytest.mark.parametrize("as_object", [False, True])
async def test_a_listing_nested_too_deep_is_one_clear_error_not_a_recursion_error(
    hostile: Callable[[Answer], Awaitable[Hostile]], as_object: bool
) -> None:
    # 500 levels is 1,000 of JSON: under orjson's limit of 1,024, past the stack's.
    deep = _listing(500, as_object=as_object)
    server = await hostile(lambda request, body: web.Response(
        body=deep if request.path.endswith("/1") else _listing(0, as_object=False).replace(
            b'"taskId":"1"', b'"taskId":"' + request.path.rsplit("/", 1)[1].encode() + b'"'),
        content_type="application/json"))
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.ResponseDecodeError,
                           match=r"subFileList nested deeper than 100 levels") as caught:
            await client.get_job("1")
        assert caught.value.problems == (
            "$.data.uncompressedFileList: subFileList nested deeper than 100 levels",)
        outcomes = dict([item async for item in client.get_jobs(["2", "1", "3"])])
    assert isinstance(outcomes.pop("1"), kd.ResponseDecodeError)
    assert all(isinstance(o, kd.JobDetail) for o in outcomes.values()) and len(outcomes) == 2
    with pytest.raises(kd.ResponseDecodeError, match="nested deeper than 100"):
        kd.from_wire(kd.JobDetail, orjson.loads(deep)["data"])
    with pytest.raises(kd.ResponseDecodeError, match="nested deeper than 100"):
        kd.from_wire(kd.UncompressedFileInfo,
                     orjson.loads(deep)["data"]["uncompressedFileList"][0])


def test_a_listing_as_deep_as_allowed_reads_and_writes_back() -> None:
    for as_object in (False, True):
        data = json.loads(_listing(99, as_object=as_object))["data"]  # 100 levels of files
        detail = kd.from_wire(kd.JobDetail, data)
        assert kd.from_wire(kd.JobDetail, kd.to_wire(detail)) == detail
        depth, files = 0, detail.uncompressed_file_list
        while files:
            depth, files = depth + 1, files[0].sub_file_list
        assert depth == 100
    built = kd.UncompressedFileInfo(name="x")
    for _ in range(2000):  # deeper than any answer is read: only by hand
        built = kd.UncompressedFileInfo(name="d", sub_file_list=(built,))
    with pytest.raises(ValueError, match="sub_file_list deeper than 100 levels"):
        kd.to_wire(built)


async def test_a_flood_of_bad_items_is_named_by_its_first_ten_not_read_to_the_end(
    hostile: Callable[[Answer], Awaitable[Hostile]],
) -> None:
    # 1 MiB, 100,000 bad taskInfos: each bad item costs the full path and a message (21 s of
    # a blocked event loop when every one was read); a few say what is wrong.
    bad = b'{"code":0,"data":{"jobInfo":{"taskId":"1","status":2},"taskInfos":[' + b",".join(
        [b'{"status":[1]}'] * 100_000) + b"]}}"
    server = await hostile(lambda request, body: web.Response(
        body=bad, content_type="application/json"))
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.ResponseDecodeError) as caught:
            await client.get_job("1")
    problems = caught.value.problems
    assert len(problems) == 11
    assert problems[:2] == ("expected a string, got [1] @ $.data.taskInfos[0].status",
                            "expected a string, got [1] @ $.data.taskInfos[1].status")
    assert problems[-1] == ("not read: 10 bad items already, 99990 more not checked "
                            "@ $.data.taskInfos[10]")
    # Fewer than ten are each named, wherever they are.
    some = orjson.loads(bad.replace(b'{"status":[1]}', b'{"status":"1"}'))["data"]
    for index in (3, 500, 99_999):
        some["taskInfos"][index] = {"status": [1]}
    with pytest.raises(kd.ResponseDecodeError) as caught:
        kd.from_wire(kd.JobDetail, some)
    assert caught.value.problems == tuple(
        f"expected a string, got [1] @ $.taskInfos[{index}].status" for index in (3, 500, 99_999))
