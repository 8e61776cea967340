"""Python bytecode instructions executed while an awaitable runs: a cost that, unlike CPU
time, does not move with the load of a shared machine.

``sys.settrace`` with opcode events counts every instruction of every Python frame started
while the work runs (asyncio's and aiohttp's included); C code is not counted. Tracing makes
the work about 50x slower: count a few hundred lookups, not thousands.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

#: Whether the instruction at (file, line) is of the part being measured (line may be None).
Part = Callable[[str, int | None], bool]


async def count_instructions(work: Callable[[], Awaitable[object]],
                             part: Part | None = None) -> tuple[int, int]:
    """Instructions executed while ``work()`` runs: in all, and those ``part`` claims
    (decided once per line)."""
    total = claimed = 0
    decided: dict[tuple[str, int | None], bool] = {}

    def local(frame: Any, event: str, arg: object) -> Any:
        nonlocal total, claimed
        if event == "opcode":
            total += 1
            if part is not None:
                key = (frame.f_code.co_filename, frame.f_lineno)
                found = decided.get(key)
                if found is None:
                    found = decided[key] = part(*key)
                claimed += found
        return local

    def call(frame: Any, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        return local

    sys.settrace(call)
    try:
        await work()
    finally:
        sys.settrace(None)
    return total, claimed
