"""Hardening: secrets never shown, TLS verified, no credentials to another host, bounded bodies."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import trustme
from aiohttp import web

import koodrive_async as kd
from koodrive_async.testing import Fault, KooDriveEmulator

from .conftest import VirtualTime, make_client

TOKEN = "tok-SECRET-1f3a9"
PROVIDED = "tok-PROVIDED-77c2"
APP_SECRET = "app-SECRET-b41d"


async def _exercise(client: kd.KooDriveClient, emulator: KooDriveEmulator) -> list[str]:
    """Run the client through successes, retries, 401s and errors; return every message."""
    messages: list[str] = []
    job_id = emulator.add_job(duration=3)
    emulator.inject(Fault.status(503), times=1)
    await client.get_job(job_id)
    result = await client.wait_for_job(job_id, timeout=60)
    messages.append(repr(result))
    for fault in (Fault.status(400), Fault.status(401), Fault.drop(), Fault.business_code(1)):
        emulator.inject(fault, times=2)
        with pytest.raises(kd.KooDriveError) as caught:
            await client.get_job(job_id)
        messages += [str(caught.value), repr(caught.value), repr(caught.value.__dict__)]
    messages += [repr(client), str(client)]
    return messages


@pytest.mark.parametrize("kind", ["token", "provider", "app"])
async def test_secrets_never_in_reprs_errors_or_logs(
    emulator: KooDriveEmulator, vt: VirtualTime, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    emulator.add_token(TOKEN)
    emulator.add_token(PROVIDED)
    emulator.add_app("app-1", APP_SECRET)

    async def provider() -> str:
        return PROVIDED

    auth = {
        "token": kd.TokenAuth(TOKEN),
        "provider": kd.TokenAuth(provider),
        "app": kd.AppAuth("app-1", APP_SECRET),
    }[kind]
    caplog.set_level(logging.DEBUG)
    async with make_client(emulator, vt, auth=auth) as client:
        messages = await _exercise(client, emulator)
    secrets = {TOKEN, PROVIDED, APP_SECRET}
    # Every signature the client sent is a secret too: it authorises a request.
    for request in emulator.requests:
        value = request.headers.get("Authorization", "")
        if "Signature=" in value:
            secrets.add(value.rsplit("Signature=", 1)[1])
    assert len(secrets) > 3 or kind != "app"
    logged = [record.getMessage() for record in caplog.records]
    assert logged, "the exercise must have produced log records to check"
    for text in messages + logged + [repr(auth), str(auth)]:
        for secret in secrets:
            assert secret not in text, (secret, text)


async def test_plain_http_is_refused_unless_loopback_or_asked() -> None:
    good = {"user_id": "u", "auth": kd.TokenAuth("t")}
    for url in ("http://intl.myhuaweicloud-koodrive.com", "http://10.0.0.8:8080"):
        with pytest.raises(ValueError, match="not https"):
            kd.KooDriveClient(url, **good)  # type: ignore[arg-type]
        assert kd.KooDriveClient(url, allow_insecure_http=True, **good)  # type: ignore[arg-type]
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2", "http://127.9.9.9"):
        assert kd.KooDriveClient(url, **good)  # type: ignore[arg-type]


@pytest.fixture
async def tls_server() -> AsyncIterator[tuple[str, trustme.CA]]:
    """An https server on 127.0.0.1 whose certificate no system trusts."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def job(_: web.Request) -> web.Response:
        return web.json_response({"code": 0, "data": {"jobInfo": {"status": 2}}})

    app = web.Application()
    app.router.add_get("/koodrive/ose/v1/{job_id}", job)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}", ca
    finally:
        await runner.cleanup()


async def test_tls_certificates_are_verified_by_default(
    tls_server: tuple[str, trustme.CA],
) -> None:
    url, ca = tls_server
    async with kd.KooDriveClient(url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=kd.RetryPolicy.disabled()) as client:
        with pytest.raises(kd.TransportError, match=r"(?i)certificate"):
            await client.get_job("1")
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    connector = aiohttp.TCPConnector(ssl=trusting)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        kd.KooDriveClient(url, user_id="u", auth=kd.TokenAuth("t"), session=session) as client,
    ):
        detail = await client.get_job("1")
    assert detail.status is kd.JobStatus.COMPLETED


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed(
    emulator: KooDriveEmulator, client: kd.KooDriveClient, status: int
) -> None:
    async with KooDriveEmulator() as elsewhere:
        target = elsewhere.base_url + "/koodrive/ose/v1/1"
        emulator.inject(Fault.status(status, headers={"Location": target}))
        with pytest.raises(kd.APIError) as caught:
            await client.get_job(emulator.add_job())
        assert caught.value.http_status == status
        await asyncio.sleep(0.05)
        assert elsewhere.requests == [], "no request, and no credentials, to another host"


async def test_a_chunked_body_over_the_cap_is_refused_while_reading() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(1000):  # 64 MB if read to the end
            await response.write(b"x" * 65536)
        return response

    app = web.Application()
    app.router.add_get("/koodrive/ose/v1/{job_id}", endless)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with kd.KooDriveClient(f"http://127.0.0.1:{port}", user_id="u",
                                     auth=kd.TokenAuth("t"), max_response_bytes=1 << 20,
                                     retry=kd.RetryPolicy.disabled()) as client:
            with pytest.raises(kd.ResponseDecodeError, match="max_response_bytes"):
                await client.get_job("1")
    finally:
        await runner.cleanup()


async def test_archive_names_are_data_not_paths(
    emulator: KooDriveEmulator, client: kd.KooDriveClient
) -> None:
    body = (b'{"code":0,"data":{"jobInfo":{"status":2},"uncompressedFileList":'
            b'[{"name":"../../etc/passwd","type":1},{"name":"/abs/x","type":1}]}}')
    emulator.inject(Fault.body(body))
    detail = await client.get_job("1")
    # Kept verbatim for display; the library never opens or writes a path from the server.
    assert [e.name for e in detail.uncompressed_file_list] == ["../../etc/passwd", "/abs/x"]


# -- a server that echoes the Authorization it got into answers aiohttp cannot parse --------

_FRAMINGS: dict[str, Callable[[bytes], list[bytes]]] = {
    "status line": lambda auth: [b"HTTP/1.1 2x0 " + auth + b"\r\n\r\n"],
    "header name": lambda auth: [
        b"HTTP/1.1 200 OK\r\nX-Echo " + auth + b": 1\r\nContent-Length: 2\r\n\r\n{}"],
    "header value": lambda auth: [
        b"HTTP/1.1 200 OK\r\nX-Echo: " + auth + b"\x00\r\nContent-Length: 2\r\n\r\n{}"],
    "content length": lambda auth: [b"HTTP/1.1 200 OK\r\nContent-Length: " + auth + b"\r\n\r\n"],
    "first chunk size": lambda auth: [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + auth + b"\r\n"],
    # Sent after the headers were read (aiohttp 3.14 then waits for the body until the
    # attempt's timeout, as for a stalled one).
    "later chunk size": lambda auth: [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
        auth + b"\r\n"],
}


async def _echoing_server(framing: str, sent: list[str]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            auth = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                        if line.lower().startswith(b"authorization:"))
            sent.append(auth.decode())
            for piece in _FRAMINGS[framing](auth):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("kind", ["token", "app"])
@pytest.mark.parametrize("framing", list(_FRAMINGS))
async def test_an_answer_that_is_not_http_and_echoes_the_secret_is_not_quoted(
    caplog: pytest.LogCaptureFixture, kind: str, framing: str
) -> None:
    sent: list[str] = []
    server = await _echoing_server(framing, sent)
    port = server.sockets[0].getsockname()[1]
    auth = kd.TokenAuth(TOKEN) if kind == "token" else kd.AppAuth("app-1", APP_SECRET)
    caplog.set_level(logging.DEBUG)
    try:
        async with kd.KooDriveClient(f"http://127.0.0.1:{port}", user_id="u", auth=auth,
                                     retry=kd.RetryPolicy(max_attempts=2, initial_delay=0.01),
                                     timeout=2) as client:
            with pytest.raises(kd.TransportError) as caught:
                await client.get_job("1309243162258308352")
    finally:
        server.close()
        await server.wait_closed()
    assert len(sent) == 2  # a transport failure: retried
    error = caught.value
    if not isinstance(error, kd.RequestTimeoutError):
        assert "the answer is not valid HTTP" in str(error), str(error)
        assert error.__context__ is None  # aiohttp's exception, which quotes the bytes
    assert error.__cause__ is None
    secrets = {TOKEN, APP_SECRET, *sent}
    secrets |= {value.rsplit("Signature=", 1)[1] for value in sent if "Signature=" in value}
    logged = [record.getMessage() for record in caplog.records]
    for text in [str(error), repr(error), *logged]:
        for secret in secrets:
            assert secret not in text, (secret, text)


_PURE_PYTHON_PARSER = r"""
import asyncio, sys
import koodrive_async as kd

TOKEN = sys.argv[1]

async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    auth = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                if line.lower().startswith(b"authorization:"))
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(auth + b"\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with kd.KooDriveClient(url, user_id="u", auth=kd.TokenAuth(TOKEN), timeout=5,
                                 retry=kd.RetryPolicy.disabled()) as client:
        try:
            await client.get_job("1")
        except BaseException as exc:
            print(type(exc).__name__, isinstance(exc, kd.KooDriveError), str(exc), repr(exc))
    await asyncio.sleep(0.3)  # the handler ends on its own
    server.close()
    await server.wait_closed()

asyncio.run(main())
"""


def test_the_pure_python_parser_s_errors_are_in_the_tree_and_redacted() -> None:
    # Without aiohttp's C extension (PyPy, no wheel), a bad chunk size after the headers is a
    # bare HttpProcessingError, not a ClientError: it was raised as it was, token and all.
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _PURE_PYTHON_PARSER, TOKEN],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    kind, in_tree, message = done.stdout.split(" ", 2)
    assert (kind, in_tree) == ("TransportError", "True"), done.stdout
    assert "the answer is not valid HTTP" in message
    assert TOKEN not in done.stdout
