"""GetJobList paging: page after page, until a short page, the page bound or a repeated page
(the service gives no total)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from . import _convert as convert
from . import _protocol as proto
from ._calls import Caller, Timeout
from .errors import ResponseDecodeError
from .models import JobInfo

__all__ = ["job_list"]


async def job_list(
    caller: Caller,
    filters: Sequence[tuple[str, str]],
    *,
    page_size: int,
    offset: int,
    max_pages: int,
    timeout: Timeout,
) -> AsyncGenerator[JobInfo, None]:
    """Every JobInfo of the pages from ``offset`` on, ``max_pages`` requests at most; a page
    sent twice is a ResponseDecodeError (the paging would otherwise never end)."""
    previous: list[JobInfo] | None = None
    for _ in range(max_pages):
        query = [*filters, ("offset", str(offset)), ("limit", str(page_size))]
        data = await caller.send("GET", proto.JOBS_PATH, query=query, timeout=timeout)
        page = convert.structure_list(
            data, JobInfo, what="GetJobList",
            secrets=caller.secrets,  # worked out only if a page is malformed
        )
        if page and page == previous:
            raise ResponseDecodeError(
                f"GetJobList sent the same page again at offset {offset}: stopping"
            )
        for info in page:
            yield info
        if len(page) < page_size:
            return
        previous = page
        offset += page_size
