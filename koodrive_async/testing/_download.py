"""Serving a package zip like an object store: plain GET, ``Range: bytes=...`` and 206."""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for one satisfiable range; None to serve it all.

    Raises:
        ValueError: the range is not satisfiable.
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None  # malformed or several ranges: RFC 9110 lets a server ignore Range
    if not match[1]:
        suffix = int(match[2])
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size or last < first:
        raise ValueError("range starts past the end")
    return first, min(last, size - 1)


def package_response(data: bytes, range_header: str | None) -> web.Response:
    """The zip, whole (200) or the requested range (206), or 416 for an unsatisfiable range."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": '"' + hashlib.sha256(data).hexdigest()[:32] + '"',
        "Content-Disposition": 'attachment; filename="package.zip"',
    }
    size = len(data)
    try:
        span = _byte_range(range_header, size) if range_header else None
    except ValueError:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if span is None:
        return web.Response(body=data, content_type="application/zip", headers=headers)
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return web.Response(
        body=data[first : last + 1], status=206, content_type="application/zip", headers=headers
    )
