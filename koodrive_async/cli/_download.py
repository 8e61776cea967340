"""Stream a package download to disk: a partial file renamed when complete, resumed by Range.

The download URL is a pre-signed link to object storage, not an API endpoint: it gets no
credentials (sending the token to another host would leak it), so it has an aiohttp session
of its own. The server's file name is never trusted as a path: only a safe base name of it is
used, inside the target directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, Protocol

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

Sleep = Callable[[float], Awaitable[None]]


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
        path: Where the file now is.
        size: Its size in bytes.
        resumed_from: Bytes already on disk when the last request started (0: from scratch).
        requests: Requests made, resumed ones included.
        sha256: Hex digest of the file.
    """

    path: Path
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


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise CliError(f"{path} already exists: pass --force to overwrite it", EXIT_USAGE)
    if path.is_dir():
        raise CliError(f"{path} is a directory", EXIT_USAGE)


def _read_meta(target: _Target, url: yarl.URL) -> str | None:
    """The ETag of the partial file, or None; drop a partial file of another URL."""
    try:
        meta = json.loads(target.meta.read_text())
    except (OSError, ValueError):
        meta = {}
    if meta.get("url") != str(url.with_query(None)):
        target.part.unlink(missing_ok=True)
        return None
    etag = meta.get("etag")
    return etag if isinstance(etag, str) else None


def _write_meta(target: _Target, url: yarl.URL, etag: str | None) -> None:
    target.meta.write_text(json.dumps({"url": str(url.with_query(None)), "etag": etag}))


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
    try:
        async with session.get(url, headers=headers) as response:
            total = _check_status(response, offset, target)
            if total is None and response.status == 416:
                return _finish(target, force, _name(response, url)), offset
            if response.status == 200:
                offset = 0
            name = target.name or _name(response, url)
            _refuse_existing(target.directory / name, force)
            _write_meta(target, url, response.headers.get("ETag"))
            if progress is not None:
                progress.start(name, total, offset)
            with target.part.open("r+b" if offset else "wb") as file:
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


def _check_status(response: aiohttp.ClientResponse, offset: int, target: _Target) -> int | None:
    """The total size to expect (None: unknown or already complete, for a 416)."""
    status = response.status
    if status == 416 and offset:
        match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is not None and int(match[1]) == offset:
            return None  # the partial file is the whole file: an earlier run got every byte
        target.part.unlink(missing_ok=True)
        raise _Interrupted("the partial file does not match the server's: starting again")
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            target.part.unlink(missing_ok=True)
            raise _Interrupted("the server resumed at another offset: starting again")
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


async def download(
    url: str,
    *,
    output: Path | None = None,
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
            current directory.
        key: Names the partial file (e.g. the job id), so a later run resumes it; default a
            hash of the URL without its query (pre-signed queries change between runs).
        force: Overwrite an existing file.
        retries: Resumed attempts after an interruption within this call.
        read_timeout: Seconds without a byte before an attempt is given up.
        progress: Told how the transfer goes.
        sleep: Waits between attempts (injectable for tests).

    Raises:
        UsageError: A bad URL or output directory.
        CliError: The file exists (without ``force``), or the download failed (the partial
            file stays for a later run to resume).
    """
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"not an http(s) URL: {parsed.with_query(None)}")
    target = _target(parsed, output, key)
    if target.name is not None:
        _refuse_existing(target.directory / target.name, force)
    timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT, sock_read=read_timeout)
    # No decompression: the bytes on disk must be the bytes a Range request counts.
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        for attempt in range(retries + 1):
            try:
                path, resumed_from = await _attempt(
                    session, parsed, target, force=force, progress=progress
                )
            except _Interrupted as exc:
                have = target.part.stat().st_size if target.part.exists() else 0
                if attempt == retries:
                    raise CliError(
                        f"download interrupted ({exc}) with {have} bytes saved:"
                        " run the same command again to resume"
                    ) from None
                await sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
            else:
                return Download(
                    path=path, size=path.stat().st_size, resumed_from=resumed_from,
                    requests=attempt + 1, sha256=_hash(path),
                )
    raise AssertionError("unreachable: the loop returns or raises")
