"""What a hostile document may cost the converter: bounded before it costs it.

An archive listing's depth: structuring, comparing and writing a listing back recurse once
or more per ``subFileList`` level, and orjson reads up to 1,024 levels of JSON, so a deep
listing could exhaust the interpreter's stack (a bare RecursionError, outside the error
tree, ending a fan-out). And the problems of a list: each bad item costs the full path and
a message, so a 1 MiB answer of 100,000 bad taskInfos held the event loop for 21 s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from cattrs.errors import IterableValidationError, IterableValidationNote

from .errors import ResponseDecodeError

__all__ = ["MAX_FILE_DEPTH", "MAX_ITEM_PROBLEMS", "check_file_depth", "structure_items"]

#: Levels of ``subFileList`` an archive listing may nest (an archive's directories).
MAX_FILE_DEPTH: Final = 100
#: Bad items of one list named before reading it stops: the first ones say what is wrong.
MAX_ITEM_PROBLEMS: Final = 10


def check_file_depth(data: Any, what: str, root: str, *, detail: bool) -> None:
    """Refuse an archive listing nested deeper than MAX_FILE_DEPTH, level by level, without
    recursion: the ``uncompressedFileList`` of ``data`` (a JobDetail's JSON) if ``detail``,
    else ``data`` itself (an UncompressedFileInfo's). A list or one object at each level, as
    the full converter takes either.

    Raises:
        ResponseDecodeError: Too deep; the problem names the path from ``root``.
    """
    if detail:
        data = data.get("uncompressedFileList") if type(data) is dict else None
        root += ".uncompressedFileList"
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > MAX_FILE_DEPTH:
            problem = f"{root}: subFileList nested deeper than {MAX_FILE_DEPTH} levels"
            raise ResponseDecodeError(f"{what}: unexpected document: {problem}",
                                      problems=(problem,))
        level = [sub for value in level
                 for entry in (value if type(value) is list else (value,))
                 if type(entry) is dict and (sub := entry.get("subFileList"))]


def structure_items(
    items: list[Any], item: Callable[[Any, Any], Any], item_type: Any, list_type: Any
) -> tuple[Any, ...]:
    """Each of ``items`` structured by ``item``, as cattrs' detailed validation does it (each
    problem noted with its index), but stopping after MAX_ITEM_PROBLEMS bad ones.

    Raises:
        IterableValidationError: The problems, the last one saying where reading stopped.
    """
    done: list[Any] = []
    errors: list[Exception] = []
    for index, value in enumerate(items):
        try:
            done.append(item(value, item_type))
        except Exception as exc:
            errors.append(_noted(exc, list_type, index, item_type))
            if len(errors) == MAX_ITEM_PROBLEMS and index + 1 < len(items):
                stopped = ValueError(f"not read: {MAX_ITEM_PROBLEMS} bad items already, "
                                     f"{len(items) - index - 1} more not checked")
                errors.append(_noted(stopped, list_type, index + 1, item_type))
                break
    if errors:
        raise IterableValidationError(f"While structuring {list_type!r}", errors, list_type)
    return tuple(done)


def _noted(exc: Exception, list_type: Any, index: int, item_type: Any) -> Exception:
    note = IterableValidationNote(f"Structuring {list_type} @ index {index}", index, item_type)
    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
    return exc
