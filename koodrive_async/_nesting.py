"""How deep an archive listing may nest: bounded before anything recurses through it.

Structuring, comparing and writing a listing back recurse once or more per ``subFileList``
level, and orjson reads up to 1,024 levels of JSON: a hostile listing could exhaust the
interpreter's stack (a bare RecursionError, outside the error tree, ending a fan-out).
"""

from __future__ import annotations

from typing import Any, Final

from .errors import ResponseDecodeError

__all__ = ["MAX_FILE_DEPTH", "check_file_depth"]

#: Levels of ``subFileList`` an archive listing may nest (an archive's directories).
MAX_FILE_DEPTH: Final = 100


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
