"""The one JSON-lines reader: streaming, one line at a time, bounded line length, errors that name the line.

Every JSONL input tripwire takes (post feeds, reviewer decisions, seed accounts, prompt batches, shared-signal
files, its own scan outputs) goes through :func:`read_jsonl`, so a bad line is reported the same way
everywhere ("line 7: invalid JSON: ...") and a runaway line (a file without newlines, a binary file passed by
mistake) costs at most ``max_line`` characters of memory instead of the whole file.

Blank lines are skipped. A bad line does not stop the reader: it yields a :class:`JsonlError` in place of the
value, and the caller decides whether to skip it (feeds, batches) or to stop (configuration-like inputs,
:func:`strict`).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, TextIO

__all__ = ["DEFAULT_MAX_LINE", "JsonlError", "read_jsonl", "strict"]

#: longest line read, in characters (16 Mi); longer lines are reported and skipped without being held
DEFAULT_MAX_LINE = 16 * 1024 * 1024


class JsonlError(ValueError):
    """One unusable line: ``line`` is its 1-based number, ``str(error)`` the reason without the number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _lines(stream: TextIO, max_line: int) -> Iterator[tuple[int, str | None]]:
    """``(number, text)`` per physical line; ``None`` text for a line longer than ``max_line`` (drained)."""
    number = 0
    while True:
        line = stream.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith("\n"):
            while True:  # skip the rest of the overlong line in bounded pieces
                rest = stream.readline(max_line)
                if not rest or rest.endswith("\n"):
                    break
            yield number, None
        else:
            yield number, line


def read_jsonl(stream: TextIO, *, max_line: int = DEFAULT_MAX_LINE) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for every non-blank line; a bad line yields ``(n, JsonlError)``."""
    for number, line in _lines(stream, max_line):
        if line is None:
            yield number, JsonlError(number, f"line longer than {max_line:,} characters")
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, JsonlError(number, f"invalid JSON: {exc.msg} (column {exc.colno})")


def strict(lines: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """:func:`read_jsonl`'s lines, raising the first :class:`JsonlError` instead of yielding it."""
    for number, value in lines:
        if isinstance(value, JsonlError):
            raise value
        yield number, value
