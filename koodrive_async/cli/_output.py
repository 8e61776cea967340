"""Where results go: lines and JSON documents on stdout, notes for the person on stderr."""

from __future__ import annotations

import sys

import attrs

from . import _json

__all__ = ["Output"]


@attrs.frozen
class Output:
    """Where and how results are shown.

    Attributes:
        json: One JSON document per job per line on stdout, instead of text.
        fancy: stdout is a terminal: tables drawn by rich.
        bars: stderr is a terminal (and bars were not turned off): live bars.
    """

    json: bool = False
    fancy: bool = False
    bars: bool = False

    def line(self, text: str = "") -> None:
        """A line of results on stdout."""
        print(text, flush=True)

    def note(self, text: str) -> None:
        """A line for the person watching, on stderr (never machine-read)."""
        print(text, file=sys.stderr, flush=True)

    def document(self, document: object) -> None:
        """One JSON document, one line, on stdout."""
        print(_json.dumps(document), flush=True)
