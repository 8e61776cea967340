"""One HTTP attempt, below the retry loop: reading an answer's body within the cap.

The cap (``max_response_bytes``) is on the bytes the client is handed, after aiohttp has
undone any ``Content-Encoding`` (gzip, deflate, br, zstd). A ``Content-Length`` only bounds a
body sent as it is: 1,617 bytes of brotli inflate to 1 GiB. aiohttp inflates in bounded
steps (since its fix of CVE-2025-69223, 3.13.3; read in 3.14's http_parser.DeflateBuffer): each
step hands the stream at most ``read_bufsize`` (64 KiB) of output, and decoding pauses while the
stream's buffer is full. So reading chunk by chunk and stopping at the cap never holds more
than the cap and a chunk, whatever the compressed body says.
"""

from __future__ import annotations

import aiohttp

from .errors import ResponseDecodeError

__all__ = ["read_capped"]


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of ``response``, decoded, refused once it grows past ``limit`` bytes.

    A body sent as it is, with a length, is read in one call (the fast path); any other
    (compressed, or of unknown length) is read chunk by chunk and counted as it is decoded.
    The cap holds for every status: an error page is read like any answer.

    Args:
        response: An answer whose body has not been read.
        limit: The most bytes to accept, once decoded.

    Returns:
        The decoded body.

    Raises:
        ResponseDecodeError: The body is larger than ``limit``. Reading stops there: the
            rest is neither received nor inflated, and the connection is closed, not reused.
            The error is not retried (not even for a 5xx), as a server that sent such a body
            will send it again.
        aiohttp.ClientError: The body could not be received or decoded (the caller maps it).
    """
    length = response.content_length
    encoding = response.headers.get("Content-Encoding")
    if length is not None and (encoding is None or encoding.strip().lower() == "identity"):
        if length > limit:
            raise ResponseDecodeError(
                f"HTTP {response.status} answer of {length} bytes is larger than "
                f"max_response_bytes ({limit}); not read"
            )
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            decoded = f" once decoded ({encoding[:32]})" if encoding else ""
            raise ResponseDecodeError(
                f"HTTP {response.status} answer is larger than max_response_bytes "
                f"({limit}){decoded}; stopped reading"
            )
        chunks.append(chunk)
    return b"".join(chunks)
