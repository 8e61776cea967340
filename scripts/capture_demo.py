"""Capture a screenshot-like text of ``koodrive-async demo`` (or any command) run in a pty.

    .venv/bin/python scripts/capture_demo.py [--width 100] [--height 40] [-- COMMAND ...]

The command runs in a pseudo-terminal (pexpect), so it draws its live bars as for a person;
the bytes it writes are replayed through a small terminal model (printable text, CR, LF,
cursor up/down/column, erase line/screen; colours dropped) and the final screen is printed.
``render`` and ``run_in_pty`` are also used by the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import pexpect

_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])|\x1b[()][A-Za-z0-9]|\x1b[=>]|\x1b\][^\x07]*\x07")


def render(raw: str, width: int) -> str:
    """The screen left by ``raw`` terminal output, scrollback included, trailing blanks cut."""
    lines: list[list[str]] = [[]]
    row = col = 0
    pos = 0
    for match in _CSI.finditer(raw + "\x1b[0m"):
        for ch in raw[pos : match.start()]:
            if ch == "\n":
                row, col = row + 1, 0
            elif ch == "\r":
                col = 0
            elif ch == "\b":
                col = max(col - 1, 0)
            elif ch >= " ":
                if col >= width:
                    row, col = row + 1, 0
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                line.extend(" " * (col + 1 - len(line)))
                line[col] = ch
                col += 1
            while len(lines) <= row:
                lines.append([])
        pos = match.end()
        params, command = match.group(1) or "", match.group(2)
        count = int(params) if params.isdigit() else 1
        if command == "A":
            row = max(row - count, 0)
        elif command == "B":
            row += count
        elif command == "G":
            col = count - 1
        elif command == "K":
            while len(lines) <= row:
                lines.append([])
            mode = int(params) if params.isdigit() else 0
            if mode == 2:
                lines[row] = []
            elif mode == 0:
                del lines[row][col:]
        elif command == "J" and (int(params) if params.isdigit() else 0) == 0:
            del lines[row + 1 :]
            if row < len(lines):
                del lines[row][col:]
    text = "\n".join("".join(line).rstrip() for line in lines)
    return text.strip("\n")


def run_in_pty(
    command: Sequence[str], *, width: int = 100, height: int = 40, timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run ``command`` in a pseudo-terminal; return its exit status and all it wrote."""
    settings = dict(os.environ if env is None else env)
    settings.update(TERM="xterm-256color", COLUMNS=str(width), LINES=str(height))
    settings.pop("NO_COLOR", None)
    child = pexpect.spawn(
        command[0], list(command[1:]), env=settings, dimensions=(height, width),
        encoding="utf-8", codec_errors="replace", timeout=timeout,
    )
    chunks = []
    while True:
        try:
            chunks.append(child.read_nonblocking(65536, timeout=timeout))
        except pexpect.EOF:
            break
    child.close()
    status = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return status, "".join(chunks)


def _default_command() -> list[str]:
    script = shutil.which("koodrive-async", path=str(Path(sys.executable).parent))
    if script is None:
        raise SystemExit("koodrive-async is not installed next to this python")
    return [script, "demo"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--height", type=int, default=40)
    parser.add_argument("--raw", action="store_true", help="print the raw bytes instead")
    parser.add_argument("command", nargs="*", help="default: koodrive-async demo")
    args = parser.parse_args()
    status, raw = run_in_pty(args.command or _default_command(), width=args.width,
                             height=args.height)
    print(repr(raw) if args.raw else render(raw, args.width))
    return status


if __name__ == "__main__":
    sys.exit(main())
