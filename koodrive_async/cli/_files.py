"""The files of a download on disk: the target, the partial file and its metadata.

Only a regular file is ever replaced: a symlink, a FIFO or a device at the target
(``-o /dev/null``) is refused, ``--force`` or not, and the partial file and its metadata are
opened without following a symlink planted at their names. The server's file name is never
trusted as a path: only a safe base name of it is used, inside the target directory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import unicodedata
from pathlib import Path
from typing import Final

import attrs
import yarl

from ._exit import EXIT_USAGE, CliError, UsageError

__all__ = [
    "Target",
    "file_hash",
    "finish",
    "open_private",
    "read_meta",
    "refuse_existing",
    "safe_name",
    "target",
    "write_meta",
]

_MAX_NAME: Final = 200
_PART_SUFFIX: Final = ".koodrive-part"

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
class Target:
    directory: Path
    name: str | None  # None: the server's name, known once it answers
    part: Path
    meta: Path


def target(url: yarl.URL, output: Path | None, key: str | None) -> Target:
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
    return Target(directory, name, part, part.with_name(part.name + ".json"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def refuse_existing(path: Path, force: bool) -> None:
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


def open_private(path: Path, flags: int) -> int:
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


def read_meta(target: Target, url: yarl.URL) -> str | None:
    """The ETag of the partial file, or None; drop a partial file of another URL."""
    try:
        with os.fdopen(open_private(target.meta, os.O_RDONLY), "rb") as file:
            meta = json.loads(file.read(64 * 1024))
    except (OSError, ValueError, CliError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("url") != str(url.with_query(None)):
        target.part.unlink(missing_ok=True)
        return None
    etag = meta.get("etag")
    return etag if isinstance(etag, str) else None


def write_meta(target: Target, url: yarl.URL, etag: str | None) -> None:
    document = json.dumps({"url": str(url.with_query(None)), "etag": etag}).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(open_private(target.meta, flags), "wb") as file:
        file.write(document)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finish(target: Target, force: bool, name: str) -> Path:
    """Move the complete partial file to its final name (the server's ``name`` unless one was
    given); returns that path."""
    final = target.directory / (target.name or name)
    refuse_existing(final, force)
    os.replace(target.part, final)
    target.meta.unlink(missing_ok=True)
    return final
