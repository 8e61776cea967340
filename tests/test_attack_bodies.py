"""Attacks on the body cap: decompression bombs from a hostile server on 127.0.0.1.

Issue 9.1: ``max_response_bytes`` was compared with the compressed ``Content-Length``, then
``read()`` inflated without limit: 1,617 bytes of brotli of a 1 GiB body took the client from
36 MiB to 2.1 GiB of memory, and a bombed 500 was inflated again on every retry. The cap now
holds on decoded bytes, for every encoding aiohttp decodes, with or without a length, for
error statuses too; an over-cap answer is a ResponseDecodeError and is not retried.

Memory is measured where it matters: the peak RSS of a client in a process of its own (one
subprocess runs every case in turn and reports a JSON line), against a server in this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
from aiohttp import web

import koodrive_async as kd

from .conftest import Answer, Hostile

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak RSS from /proc (Linux)"
)

REPO = Path(__file__).resolve().parents[1]
SEED_BYTES = (Path(__file__).parent / "data" / "seed_job_detail.json").read_bytes()
SEED_TASK_ID = b"1309243162258308352"
MiB = 1 << 20
BOMB_MIB = 1024  # decoded size of every bomb: 1 GiB
PEAK_LIMIT_MIB = 250  # against the 2.1 GiB of the bug; the cap itself is 32 MiB
REPEATS = 3  # calls made on the bombed 500 that is asked for again

# -- the bombs: 1 GiB of zeros, built without ever holding 1 GiB ---------------------------


def zlib_bomb(mib: int, wbits: int) -> bytes:
    """gzip (wbits 31), zlib-wrapped deflate (15) or raw deflate (-15) of ``mib`` MiB of zeros.

    Compressing 1 GiB takes seconds; after a full flush, each further MiB of zeros compresses
    to the same bytes, so one segment is repeated and the trailer's checksum computed.
    """
    block = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) == segment
    end = compressor.flush(zlib.Z_FINISH)  # the last block, then the trailer for 3 MiB
    size = mib * MiB
    if wbits > 15:  # gzip: CRC-32 and size, little-endian
        crc = 0
        for _ in range(mib):
            crc = zlib.crc32(block, crc)
        end = end[:-8] + struct.pack("<II", crc, size & 0xFFFFFFFF)
    elif wbits > 0:  # zlib: Adler-32 (of zeros: a stays 1, b counts the bytes), big-endian
        end = end[:-4] + struct.pack(">I", (size % 65521) << 16 | 1)
    return first + segment * (mib - 1) + end


def stream_bomb(mib: int, compressor: Any) -> bytes:
    """Brotli or zstd of ``mib`` MiB of zeros, fed one MiB at a time."""
    block = bytes(MiB)
    feed = getattr(compressor, "process", None) or compressor.compress
    parts = [feed(block) for _ in range(mib)]
    parts.append(compressor.finish() if hasattr(compressor, "finish") else compressor.flush())
    return b"".join(parts)


def build_bomb(encoding: str, mib: int) -> bytes:
    if encoding == "gzip":
        return zlib_bomb(mib, 31)
    if encoding == "deflate":
        return zlib_bomb(mib, 15)
    if encoding == "rawdeflate":
        return zlib_bomb(mib, -15)
    if encoding == "br":
        return stream_bomb(mib, brotli.Compressor(quality=5))
    assert encoding == "zstd"
    return stream_bomb(mib, zstd.ZstdCompressor(level=1))


def compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return zlib.compress(data, wbits=31)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "rawdeflate":
        return zlib.compress(data, wbits=-15)
    if encoding == "br":
        return bytes(brotli.compress(data))
    assert encoding == "zstd"
    return zstd.compress(data)


def decompress(encoding: str, data: bytes) -> bytes:
    if encoding in ("gzip", "deflate", "rawdeflate"):
        wbits = {"gzip": 31, "deflate": 15, "rawdeflate": -15}[encoding]
        return zlib.decompress(data, wbits)
    if encoding == "br":
        return bytes(brotli.decompress(data))
    return zstd.decompress(data)


ENCODINGS = ("gzip", "deflate", "rawdeflate", "br", "zstd")
WIRE_NAME = {"rawdeflate": "deflate"}  # raw deflate is what some servers send as "deflate"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_bombs_are_what_they_claim(encoding: str) -> None:
    small = build_bomb(encoding, 5)
    assert decompress(encoding, small) == bytes(5 * MiB)
    assert decompress(encoding, compress(encoding, SEED_BYTES)) == SEED_BYTES


# -- the hostile server --------------------------------------------------------------------

# A case is the job id asked for: kind-encoding-status-framing, e.g. "bomb-br-500-chunked".
# kind: bomb (1 GiB decoded), again (the same bomb, asked for REPEATS times), valid (the seed
# GetJobDetail answer), missing (the same, to a client without the decoder), warmup (the
# same, once, before measuring).
# framing: "length" (Content-Length) or "chunked" (no length).
BOMB_CASES = [
    f"bomb-{encoding}-{status}-{framing}"
    for encoding in (*ENCODINGS, "identity")
    for status in (200, 500)
    for framing in ("length", "chunked")
] + ["again-gzip-500-length", "again-br-500-length"]  # the bug's two figures
VALID_CASES = [
    f"valid-{encoding}-200-{framing}"
    for encoding in (*ENCODINGS, "identity")
    for framing in ("length", "chunked")
]


class HostileServer:
    """Answers each case as named, counting requests per case; never reads past headers."""

    def __init__(self, bombs: dict[str, bytes]) -> None:
        self.bombs = bombs
        self.hits: Counter[str] = Counter()
        self.base_url = ""

    def _body(self, case: str) -> Iterator[bytes]:
        kind, encoding, _, _ = case.split("-")
        if kind in ("valid", "missing", "warmup"):  # the seed answer, about the job asked for
            whole = SEED_BYTES.replace(SEED_TASK_ID, case.encode())
            if encoding != "identity":
                whole = compress(encoding, whole)
        elif encoding == "identity":  # 1 GiB of zeros, made as it is sent
            yield from (bytes(64 * 1024) for _ in range(BOMB_MIB * 16))
            return
        else:
            whole = self.bombs[encoding]
        for start in range(0, len(whole), 64 * 1024):
            yield whole[start : start + 64 * 1024]

    def _length(self, case: str) -> int:
        kind, encoding, _, _ = case.split("-")
        if kind in ("bomb", "again") and encoding == "identity":
            return BOMB_MIB * MiB
        return sum(map(len, self._body(case)))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            case = head.split(b" ", 2)[1].decode().rsplit("/", 1)[1]
            self.hits[case] += 1
            _, encoding, status, framing = case.split("-")
            lines = [f"HTTP/1.1 {status} Whatever", "Content-Type: application/json",
                     "Connection: close"]
            if encoding != "identity":
                lines.append(f"Content-Encoding: {WIRE_NAME.get(encoding, encoding)}")
            if framing == "length":
                lines.append(f"Content-Length: {self._length(case)}")
            else:
                lines.append("Transfer-Encoding: chunked")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            for piece in self._body(case):
                if framing == "chunked":
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                writer.write(piece)
                await writer.drain()
            if framing == "chunked":
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what it should do with a bomb
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[HostileServer]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()


# -- the client, in a process of its own ---------------------------------------------------

CLIENT = r"""
import asyncio, gc, json, sys, time

plan = json.loads(sys.argv[1])
if plan["no_decoders"]:  # as if neither Brotli nor backports.zstd were installed
    for name in ("brotli", "brotlicffi", "backports.zstd", "compression.zstd"):
        sys.modules[name] = None

import koodrive_async as kd


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak():
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def main():
    report = {"cases": {}}
    retry = kd.RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.01)
    async with kd.KooDriveClient(plan["base_url"], user_id="u", auth=kd.TokenAuth("t"),
                                 retry=retry, timeout=60) as client:
        await client.get_job("warmup-identity-200-length")  # lazy imports, the pool
        gc.collect()
        report["baseline_kib"] = status_kib("VmHWM")
        for case, calls in plan["cases"]:
            gc.collect()
            reset = reset_peak()
            outcomes = []
            started = time.perf_counter()
            for _ in range(calls):
                try:
                    detail = await client.get_job(case)
                    outcomes.append({"task_id": detail.job_info.task_id})
                except kd.KooDriveError as exc:
                    outcomes.append({"error": type(exc).__name__, "message": str(exc)})
            report["cases"][case] = {"outcomes": outcomes, "peak_kib": status_kib("VmHWM"),
                                     "peak_reset": reset,
                                     "seconds": time.perf_counter() - started}
    print(json.dumps(report))


asyncio.run(main())
"""


async def run_client(
    base_url: str, cases: list[tuple[str, int]], *, no_decoders: bool = False,
    cwd: Path = REPO, timeout: float = 120,
) -> dict[str, Any]:
    """Run CLIENT over ``cases`` (job id, calls) in a new interpreter; return its report."""
    plan = {"base_url": base_url, "cases": cases, "no_decoders": no_decoders}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, json.dumps(plan), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:  # timed out, or the other client failed first
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-4000:]
    report: dict[str, Any] = json.loads(stdout)
    return report


def calls_for(case: str) -> int:
    return REPEATS if case.startswith("again-") else 1


async def attack(bombs: dict[str, bytes], cwd: Path = REPO) -> dict[str, Any]:
    """Both clients at once against one hostile server: with the decoders, and without."""
    async with HostileServer(bombs).serving() as server:
        with_decoders, without = await asyncio.gather(
            run_client(server.base_url,
                       [(case, calls_for(case)) for case in VALID_CASES + BOMB_CASES], cwd=cwd),
            run_client(server.base_url,
                       [("missing-br-200-length", 1), ("missing-zstd-200-chunked", 1),
                        ("missing-gzip-200-chunked", 1)], no_decoders=True, cwd=cwd),
        )
    return {"decoders": with_decoders, "no_decoders": without, "hits": dict(server.hits)}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    bombs = {encoding: build_bomb(encoding, BOMB_MIB) for encoding in ENCODINGS}
    assert len(bombs["br"]) < 4096 and len(bombs["gzip"]) < 2 * MiB  # ratios of 1:1000 and more
    return asyncio.run(attack(bombs))


# -- what the client must do ---------------------------------------------------------------


@pytest.mark.parametrize("case", BOMB_CASES)
def test_a_bomb_is_refused_with_bounded_memory(report: dict[str, Any], case: str) -> None:
    result = report["decoders"]["cases"][case]
    for outcome in result["outcomes"]:
        assert outcome.get("error") == "ResponseDecodeError", outcome
        assert "max_response_bytes (33554432)" in outcome["message"], outcome
        assert case.split("-")[2] in outcome["message"]  # the status is named
    peak_mib = result["peak_kib"] / 1024
    assert peak_mib < PEAK_LIMIT_MIB, f"{case}: peak RSS {peak_mib:.0f} MiB"
    # Not retried, not even a 500: each call asked once, and read up to the cap only once.
    assert report["hits"][case] == calls_for(case)


def test_peaks_are_measured_per_case(report: dict[str, Any]) -> None:
    cases = report["decoders"]["cases"]
    assert all(result["peak_reset"] for result in cases.values()), "VmHWM could not be reset"
    baseline_mib = report["decoders"]["baseline_kib"] / 1024
    assert baseline_mib < PEAK_LIMIT_MIB


@pytest.mark.parametrize("case", VALID_CASES)
def test_a_normal_compressed_answer_still_decodes(report: dict[str, Any], case: str) -> None:
    assert report["decoders"]["cases"][case]["outcomes"] == [{"task_id": case}]
    assert report["hits"][case] == 1


@pytest.mark.parametrize(("case", "package"), [("missing-br-200-length", "Brotli"),
                                               ("missing-zstd-200-chunked", "backports.zstd")])
def test_a_missing_decoder_is_a_clear_koodrive_error(
    report: dict[str, Any], case: str, package: str
) -> None:
    # The client script catches KooDriveError only: an aiohttp exception would have failed it.
    (outcome,) = report["no_decoders"]["cases"][case]["outcomes"]
    assert outcome.get("error") == "ResponseDecodeError", outcome
    assert package in outcome["message"] and "does not decode" in outcome["message"], outcome
    # Not retried (the policy allows 4 attempts): the same answer would come again.
    assert report["hits"][case] == 1
    # gzip needs no extra package: it still decodes.
    assert report["no_decoders"]["cases"]["missing-gzip-200-chunked"]["outcomes"] == [
        {"task_id": "missing-gzip-200-chunked"}
    ]


# -- the boundary, in this process ---------------------------------------------------------


def padded_answer(size: int) -> bytes:
    head, tail = b'{"code":0,"data":{"jobInfo":{"status":2}},"pad":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_the_cap_is_on_decoded_bytes_to_the_byte(encoding: str, framing: str) -> None:
    size = 4000
    body = padded_answer(size)
    wire = body if encoding == "identity" else compress(encoding, body)

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={} if encoding == "identity" else {"Content-Encoding": encoding}
        )
        if framing == "length":
            response.content_length = len(wire)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(wire)
        return response

    app = web.Application()
    app.router.add_get("/koodrive/ose/v1/{job_id}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def client(cap: int) -> kd.KooDriveClient:
        return kd.KooDriveClient(f"http://127.0.0.1:{port}", user_id="u", auth=kd.TokenAuth("t"),
                                 max_response_bytes=cap, retry=kd.RetryPolicy.disabled())

    try:
        async with client(size) as exact:
            assert (await exact.get_job("1")).status is kd.JobStatus.COMPLETED
        async with client(size - 1) as short:
            with pytest.raises(kd.ResponseDecodeError, match=r"max_response_bytes \(3999\)"):
                await short.get_job("1")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("encoding", "wire"), [
    ("gzip", b"\x1f\x8b\x08\x00not gzip at all"),
    ("deflate", b"not deflate"),
    ("br", b"\xff\xff not brotli"),
    ("zstd", b"\x28\xb5\x2f\xfd\x00\x00junk"),
])
async def test_a_body_that_does_not_decode_is_one_clear_error_not_retried(
    hostile: Callable[[Answer], Awaitable[Hostile]], encoding: str, wire: bytes
) -> None:
    server = await hostile(
        lambda request, body: web.Response(body=wire, headers={"Content-Encoding": encoding})
    )
    retry = kd.RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.01)
    async with kd.KooDriveClient(server.base_url, user_id="u", auth=kd.TokenAuth("t"),
                                 retry=retry) as client:
        with pytest.raises(kd.ResponseDecodeError, match="body does not decode") as caught:
            await client.get_job("1")
    assert len(server.requests) == 1  # the same answer would come again
    assert caught.value.__cause__ is None and caught.value.__context__ is None
