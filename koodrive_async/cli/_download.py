"""Stream a package download to disk: a partial file renamed when complete, resumed by Range.

The download URL is a pre-signed link to object storage, not an API endpoint: it gets no
credentials (sending the token to another host would leak it), so it has an aiohttp session
of its own. The server's file name is never trusted as a path: only a safe base name of it is
used, inside the target directory. Only a regular file is ever replaced: a symlink, a FIFO or
a device at the target (``-o /dev/null``) is refused, ``--force`` or not, and the partial
file is opened without following a symlink planted at its name. A binary stream (stdout, for
``-o -``) gets the bytes as they arrive instead, resumed within the one call only.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Final, NoReturn, Protocol, TypeVar

import aiohttp
import attrs
import yarl

from ._exit import EXIT_ERROR, EXIT_USAGE, CliError, UsageError

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
_MAX_NAME: Final = 200
_PART_SUFFIX: Final = ".koodrive-part"
_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE: Final = re.compile(r"bytes \*/(\d+)")
# Delays between resumed attempts: short, a download link does not rate-limit like the API.
_RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0)

# Open flags for the files of ours in the target directory: never through a symlink planted at
# the name, never blocking on a FIFO planted there (checked to be a regular file once open).
_PRIVATE_OPEN: Final = (
    getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)
# What open(O_NOFOLLOW | O_NONBLOCK) says about a symlink (ELOOP; EMLINK on the BSDs) or a
# FIFO with no reader (ENXIO).
_NOT_REGULAR_ERRNOS: Final = frozenset({errno.ELOOP, errno.EMLINK, errno.ENXIO})
_KINDS: Final = (
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)

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


def safe_name(raw: str | None, fallback: str) -> str:
    """A file name that cannot leave its directory: the last path segment of ``raw``, without
    control characters or leading dots, at most 200 characters; ``fallback`` if nothing is left.
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: _MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else (
            name[:_MAX_NAME]
        )
    return name or fallback


@attrs.define
class _Target:
    directory: Path
    name: str | None  # None: the server's name, known once it answers
    part: Path
    meta: Path


def _target(url: yarl.URL, output: Path | None, key: str | None) -> _Target:
    if output is None:
        directory, name = Path.cwd(), None
    elif output.is_dir() or str(output).endswith(("/", os.sep)):
        directory, name = output, None
    else:
        directory, name = output.parent, output.name
    if not directory.is_dir():
        raise UsageError(f"no such directory: {directory}")
    # The partial file is named before the server answers, so a second run finds it.
    if key is None:
        key = hashlib.sha256(str(url.with_query(None).with_fragment(None)).encode()).hexdigest()
        key = key[:16]
    part = directory / f".{safe_name(key, 'download')}{_PART_SUFFIX}"
    return _Target(directory, name, part, part.with_name(part.name + ".json"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _refuse_existing(path: Path, force: bool) -> None:
    """Refuse to replace anything at ``path`` but a regular file, and that only with force."""
    try:
        mode = path.lstat().st_mode  # lstat: a symlink is judged itself, not its target
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise CliError(f"{path} is a directory", EXIT_USAGE)
    if not stat.S_ISREG(mode):
        raise CliError(
            f"{path} is a {_kind(mode)}, not a regular file: refusing to replace it"
            " (-o - writes to standard output)", EXIT_USAGE,
        )
    if not force:
        raise CliError(f"{path} already exists: pass --force to overwrite it", EXIT_USAGE)


def _open_private(path: Path, flags: int) -> int:
    """A file descriptor of one of our files, refused unless it is a regular file."""
    try:
        fd = os.open(path, flags | _PRIVATE_OPEN, 0o600)
    except OSError as exc:
        if exc.errno in _NOT_REGULAR_ERRNOS:
            raise _not_ours(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_ours(path)
    os.set_blocking(fd, True)
    return fd


def _not_ours(path: Path) -> CliError:
    return CliError(f"{path} is not a regular file: remove it to download here", EXIT_USAGE)


def _read_meta(target: _Target, url: yarl.URL) -> str | None:
    """The ETag of the partial file, or None; drop a partial file of another URL."""
    try:
        with os.fdopen(_open_private(target.meta, os.O_RDONLY), "rb") as file:
            meta = json.loads(file.read(64 * 1024))
    except (OSError, ValueError, CliError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("url") != str(url.with_query(None)):
        target.part.unlink(missing_ok=True)
        return None
    etag = meta.get("etag")
    return etag if isinstance(etag, str) else None


def _write_meta(target: _Target, url: yarl.URL, etag: str | None) -> None:
    document = json.dumps({"url": str(url.with_query(None)), "etag": etag}).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(_open_private(target.meta, flags), "wb") as file:
        file.write(document)


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Interrupted(Exception):
    """The transfer stopped early: retry, resuming from what is on disk."""


async def _attempt(
    session: aiohttp.ClientSession,
    url: yarl.URL,
    target: _Target,
    *,
    force: bool,
    progress: ByteProgress | None,
) -> tuple[Path, int]:
    """One request; returns the final path and the offset it resumed from."""
    offset = target.part.stat().st_size if target.part.exists() else 0
    etag = _read_meta(target, url) if offset else None
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
                return _finish(target, force, _name(response, url)), offset
            if response.status == 200:
                offset = 0
            name = target.name or _name(response, url)
            _refuse_existing(target.directory / name, force)
            _write_meta(target, url, response.headers.get("ETag"))
            if progress is not None:
                progress.start(name, total, offset)
            with os.fdopen(_open_private(target.part, os.O_RDWR | os.O_CREAT), "r+b") as file:
                file.seek(offset)
                file.truncate()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    file.write(chunk)
                    if progress is not None:
                        progress.advance(len(chunk))
            size = target.part.stat().st_size
            if total is not None and size != total:
                raise _Interrupted(f"got {size} of {total} bytes")
            return _finish(target, force, name), offset
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


def _finish(target: _Target, force: bool, name: str) -> Path:
    final = target.directory / (target.name or name)
    _refuse_existing(final, force)
    os.replace(target.part, final)
    target.meta.unlink(missing_ok=True)
    return final


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
    target = _target(parsed, output, key)
    if target.name is not None:
        _refuse_existing(target.directory / target.name, force)

    def held() -> str:
        have = target.part.stat().st_size if target.part.exists() else 0
        return f"{have} bytes saved: run the same command again to resume"

    async with _session(read_timeout) as session:
        (path, resumed_from), requests = await _retrying(
            lambda: _attempt(session, parsed, target, force=force, progress=progress),
            retries=retries, sleep=sleep, held=held,
        )
    return Download(
        path=path, size=path.stat().st_size, resumed_from=resumed_from, requests=requests,
        sha256=_hash(path),
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
