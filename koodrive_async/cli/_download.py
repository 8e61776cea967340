"""Stream a package download to disk: a partial file renamed when complete, resumed by Range.

The download URL is a pre-signed link to object storage, not an API endpoint: it gets no
credentials (sending the token to another host would leak it), so it has an aiohttp session
of its own. The files on disk, and what may be replaced there, are ``_files``'s. A binary
stream (stdout, for ``-o -``) gets the bytes as they arrive instead, resumed within the one
call only.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Final, NoReturn, Protocol, TypeVar

import aiohttp
import attrs
import yarl

from ._exit import EXIT_ERROR, CliError, UsageError
from ._files import (
    Target,
    file_hash,
    finish,
    open_private,
    read_meta,
    refuse_existing,
    safe_name,
    target,
    write_meta,
)

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRIES",
    "ByteProgress",
    "Download",
    "download",
    "safe_name",
]

#: Seconds without a byte before a download attempt is given up (and resumed, if retries left).
DEFAULT_READ_TIMEOUT: Final = 60.0
#: Resumed attempts after an interruption, within one run.
DEFAULT_RETRIES: Final = 3
_CONNECT_TIMEOUT: Final = 30.0
_CHUNK: Final = 256 * 1024
_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE: Final = re.compile(r"bytes \*/(\d+)")
# Delays between resumed attempts: short, a download link does not rate-limit like the API.
_RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0)

Sleep = Callable[[float], Awaitable[None]]
_T = TypeVar("_T")


class ByteProgress(Protocol):
    """Told how a download goes, to draw a bar (or nothing)."""

    def start(self, name: str, total: int | None, done: int) -> None:
        """A (re)started transfer of ``total`` bytes (None: unknown), ``done`` already there."""
        ...

    def advance(self, count: int) -> None:
        """``count`` more bytes written."""
        ...


@attrs.frozen
class Download:
    """A completed download.

    Attributes:
        path: Where the file now is; None when it was written to a stream.
        size: Its size in bytes.
        resumed_from: Bytes already on disk when the last request started (0: from scratch).
        requests: Requests made, resumed ones included.
        sha256: Hex digest of the file.
    """

    path: Path | None
    size: int
    resumed_from: int
    requests: int
    sha256: str


class _Interrupted(Exception):
    """The transfer stopped early: retry, resuming from what is on disk."""


async def _attempt(
    session: aiohttp.ClientSession,
    url: yarl.URL,
    target: Target,
    *,
    force: bool,
    progress: ByteProgress | None,
) -> tuple[Path, int]:
    """One request; returns the final path and the offset it resumed from."""
    offset = target.part.stat().st_size if target.part.exists() else 0
    etag = read_meta(target, url) if offset else None
    offset = target.part.stat().st_size if target.part.exists() else 0
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if etag:
            headers["If-Range"] = etag

    def start_again(reason: str) -> NoReturn:
        target.part.unlink(missing_ok=True)
        raise _Interrupted(f"{reason}: starting again")

    try:
        async with session.get(url, headers=headers) as response:
            total = _check_status(response, offset, start_again)
            if total is None and response.status == 416:
                return finish(target, force, _name(response, url)), offset
            if response.status == 200:
                offset = 0
            name = target.name or _name(response, url)
            refuse_existing(target.directory / name, force)
            write_meta(target, url, response.headers.get("ETag"))
            if progress is not None:
                progress.start(name, total, offset)
            with os.fdopen(open_private(target.part, os.O_RDWR | os.O_CREAT), "r+b") as file:
                file.seek(offset)
                file.truncate()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    file.write(chunk)
                    if progress is not None:
                        progress.advance(len(chunk))
            size = target.part.stat().st_size
            if total is not None and size != total:
                raise _Interrupted(f"got {size} of {total} bytes")
            return finish(target, force, name), offset
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise _Interrupted(str(exc) or type(exc).__name__) from None


def _check_status(
    response: aiohttp.ClientResponse, offset: int, start_again: Callable[[str], NoReturn]
) -> int | None:
    """The total size to expect (None: unknown or already complete, for a 416).

    ``start_again`` is called, with the reason, when the bytes held do not fit the answer.
    """
    status = response.status
    if status == 416 and offset:
        match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is not None and int(match[1]) == offset:
            return None  # the partial file is the whole file: an earlier run got every byte
        start_again("the partial file does not match the server's")
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            start_again("the server resumed at another offset")
        return int(match[3]) if match[3] != "*" else None
    if status == 200:
        length = response.content_length
        return length
    reason = response.reason or ""
    if 500 <= status < 600:
        raise _Interrupted(f"HTTP {status} {reason}".strip())
    raise CliError(f"download failed: HTTP {status} {reason}".strip(), EXIT_ERROR)


def _name(response: aiohttp.ClientResponse, url: yarl.URL) -> str:
    disposition = response.content_disposition
    raw = disposition.filename if disposition is not None else None
    return safe_name(raw or url.name, "download")


@attrs.define
class _Stream:
    """A binary stream being written, and what a resumed request needs to know of it."""

    sink: BinaryIO
    written: int = 0
    etag: str | None = None
    digest: Any = attrs.field(factory=hashlib.sha256)

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.digest.update(chunk)
        self.written += len(chunk)


async def _stream_attempt(
    session: aiohttp.ClientSession,
    url: yarl.URL,
    stream: _Stream,
    *,
    progress: ByteProgress | None,
) -> int:
    """One request written to the stream; returns the offset it resumed from."""
    offset = stream.written
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if stream.etag:
            headers["If-Range"] = stream.etag

    def cannot_rewind(reason: str) -> NoReturn:
        raise CliError(
            f"download failed: {reason} after {offset} bytes were written, and a stream"
            " cannot be rewound"
        )

    try:
        async with session.get(url, headers=headers) as response:
            total = _check_status(response, offset, cannot_rewind)
            if total is None and response.status == 416:
                return offset
            if response.status == 200 and offset:
                cannot_rewind("the server sent the whole file again")
            if not offset:
                stream.etag = response.headers.get("ETag")
            if progress is not None:
                progress.start(_name(response, url), total, offset)
            async for chunk in response.content.iter_chunked(_CHUNK):
                stream.write(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
            stream.sink.flush()
            if total is not None and stream.written != total:
                raise _Interrupted(f"got {stream.written} of {total} bytes")
            return offset
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise _Interrupted(str(exc) or type(exc).__name__) from None


async def _retrying(
    attempt: Callable[[], Awaitable[_T]],
    *,
    retries: int,
    sleep: Sleep,
    held: Callable[[], str],
) -> tuple[_T, int]:
    """``attempt()``, again after each interruption up to ``retries`` times; returns its
    result and the number of requests. ``held`` says what is kept when it gives up."""
    for number in range(retries + 1):
        try:
            return await attempt(), number + 1
        except _Interrupted as exc:
            if number == retries:
                raise CliError(f"download interrupted ({exc}) with {held()}") from None
            await sleep(_RETRY_DELAYS[min(number, len(_RETRY_DELAYS) - 1)])
    raise AssertionError("unreachable: the loop returns or raises")


def _session(read_timeout: float) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT, sock_read=read_timeout)
    # No decompression: the bytes on disk must be the bytes a Range request counts.
    return aiohttp.ClientSession(timeout=timeout, auto_decompress=False)


async def download(
    url: str,
    *,
    output: Path | BinaryIO | None = None,
    key: str | None = None,
    force: bool = False,
    retries: int = DEFAULT_RETRIES,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    progress: ByteProgress | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Download:
    """Download ``url`` to a file, resuming an interrupted earlier download of it.

    Args:
        url: An http(s) URL, e.g. a job's ``downloadUrl``.
        output: A file path, or a directory for the server's (sanitised) name; default the
            current directory. Or a binary stream (stdout for ``-o -``): the bytes are
            written as they arrive, and an interruption is resumed within this call only.
        key: Names the partial file (e.g. the job id), so a later run resumes it; default a
            hash of the URL without its query (pre-signed queries change between runs).
        force: Overwrite an existing regular file (nothing else is ever replaced).
        retries: Resumed attempts after an interruption within this call.
        read_timeout: Seconds without a byte before an attempt is given up.
        progress: Told how the transfer goes.
        sleep: Waits between attempts (injectable for tests).

    Raises:
        UsageError: A bad URL or output directory.
        CliError: The file exists (without ``force``) or is not a regular file, or the
            download failed (the partial file stays for a later run to resume).
    """
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"not an http(s) URL: {parsed.with_query(None)}")
    if output is not None and not isinstance(output, Path):
        return await _download_to_stream(
            parsed, output, retries=retries, read_timeout=read_timeout, progress=progress,
            sleep=sleep,
        )
    place = target(parsed, output, key)
    if place.name is not None:
        refuse_existing(place.directory / place.name, force)

    def held() -> str:
        have = place.part.stat().st_size if place.part.exists() else 0
        return f"{have} bytes saved: run the same command again to resume"

    async with _session(read_timeout) as session:
        (path, resumed_from), requests = await _retrying(
            lambda: _attempt(session, parsed, place, force=force, progress=progress),
            retries=retries, sleep=sleep, held=held,
        )
    return Download(
        path=path, size=path.stat().st_size, resumed_from=resumed_from, requests=requests,
        sha256=file_hash(path),
    )


async def _download_to_stream(
    url: yarl.URL,
    sink: BinaryIO,
    *,
    retries: int,
    read_timeout: float,
    progress: ByteProgress | None,
    sleep: Sleep,
) -> Download:
    stream = _Stream(sink)
    async with _session(read_timeout) as session:
        resumed_from, requests = await _retrying(
            lambda: _stream_attempt(session, url, stream, progress=progress),
            retries=retries, sleep=sleep, held=lambda: f"{stream.written} bytes written",
        )
    return Download(
        path=None, size=stream.written, resumed_from=resumed_from, requests=requests,
        sha256=stream.digest.hexdigest(),
    )
