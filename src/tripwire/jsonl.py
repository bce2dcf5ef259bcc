"""The one JSON-lines reader: streaming, one line at a time, bounded line length, errors that name the line.

Every JSONL input tripwire takes (post feeds, reviewer decisions, seed accounts, prompt batches, shared-signal
files, its own scan outputs) goes through :func:`read_jsonl`, so a bad line is reported the same way
everywhere ("line 7: invalid JSON: ...") and a runaway line (a file without newlines, a binary file passed by
mistake) costs at most ``max_line`` characters of memory instead of the whole file.

Nesting is capped too (:data:`MAX_DEPTH`): a JSON line is checked before it is parsed, and the streaming JSON
readers (VICS bank and case import) read through :func:`parse_events`, which stops at the cap. Without it a
200 KB file of ``[[[[…]]]]`` 100,000 deep made ijson build a path string per level (tens of gigabytes).

Blank lines are skipped. A bad line does not stop the reader: it yields a :class:`JsonlError` in place of the
value, and the caller decides whether to skip it (feeds, batches) or to stop (configuration-like inputs,
:func:`strict`).
"""

from __future__ import annotations

import json
import re
from typing import IO, Any, Iterator, TextIO

__all__ = ["DEFAULT_MAX_LINE", "MAX_DEPTH", "JsonDepthError", "JsonlError", "nesting_error", "parse_events", "read_jsonl",
           "strict"]

#: longest line read, in characters (16 Mi); longer lines are reported and skipped without being held
DEFAULT_MAX_LINE = 16 * 1024 * 1024
#: deepest nesting of arrays and objects accepted in any JSON tripwire reads (real inputs nest under 10)
MAX_DEPTH = 64
#: longest object key kept in a :func:`parse_events` prefix (a longer one is cut: prefixes are only compared
#: with short known names, and a huge key would otherwise be copied into every event below it)
_MAX_KEY_IN_PREFIX = 256
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonDepthError(ValueError):
    """JSON nested deeper than :data:`MAX_DEPTH`: reading stopped there, nothing deeper was built."""


class JsonlError(ValueError):
    """One unusable line: ``line`` is its 1-based number, ``str(error)`` the reason without the number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def nesting_error(text: str, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``text`` (one JSON document) nests too deep, naming the column, or ``None`` when it does not."""
    if text.count("[") + text.count("{") <= max_depth:
        return None  # cannot be deeper than it has brackets: the common case costs two C-level counts
    depth = 0
    for m in _TOKENS.finditer(text):
        token = m.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels (column {m.start() + 1})"
        elif token in ("]", "}"):
            depth -= 1
    return None


def parse_events(stream: IO[bytes], *, max_depth: int = MAX_DEPTH, use_float: bool = True) -> Iterator[tuple[str, str, Any]]:
    """``ijson.parse``'s ``(prefix, event, value)`` events with nesting capped at ``max_depth``.

    Built on ``ijson.basic_parse`` (which keeps no paths) so that no prefix deeper than the cap is ever made;
    past the cap it raises :class:`JsonDepthError` (ijson's own errors, ``ijson.JSONError``, pass through).

    ijson's fast C backend refuses a number beyond 64 bits ("integer overflow") and cannot go on after it.
    When ``stream`` can be rewound, reading then starts again with ijson's pure-Python backend (any integer,
    slower), skipping the events already delivered, so one such number costs a slower read, not the rest of
    the file; the caller sees the number as a Python ``int`` and judges it like any other value.
    """
    path: list[str] = []
    for event, value in _basic_events(stream, use_float):
        if event == "map_key":
            prefix = ".".join(path[:-1])
            path[-1] = value if len(value) <= _MAX_KEY_IN_PREFIX else value[:_MAX_KEY_IN_PREFIX] + "\u2026"
        elif event in ("start_map", "start_array"):
            if len(path) >= max_depth:
                raise JsonDepthError(f"nested deeper than {max_depth} levels")
            prefix = ".".join(path)
            path.append("" if event == "start_map" else "item")
        elif event in ("end_map", "end_array"):
            path.pop()
            prefix = ".".join(path)
        else:
            prefix = ".".join(path)
        yield prefix, event, value


def _basic_events(stream: IO[bytes], use_float: bool) -> Iterator[tuple[str, Any]]:
    """ijson's basic events; bytes that are not UTF-8 raise ``ijson.JSONError`` like any other invalid JSON.

    (ijson's C backend lets the ``UnicodeDecodeError`` of a bad string out as it is, also for an escaped
    lone surrogate; its Python backend wraps that one but lets ``json.JSONDecodeError`` out for a raw control
    character in a string. JSON text is UTF-8 (RFC 8259), so the readers stop there and say where, as for any
    other invalid JSON.)
    """
    import ijson

    try:
        yield from _any_backend_events(stream, use_float)
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
        raise ijson.JSONError(f"invalid UTF-8 in a string (byte 0x{bad}; JSON text is UTF-8, and an escaped lone "
                              "surrogate such as \\ud800 is not text either)") from exc
    except ValueError as exc:  # the Python backend's json.JSONDecodeError ("Invalid control character at ...")
        raise ijson.JSONError(" ".join(str(exc).split())) from exc


def _any_backend_events(stream: IO[bytes], use_float: bool) -> Iterator[tuple[str, Any]]:
    import ijson

    delivered = 0
    try:
        events = ijson.basic_parse(stream, use_float=use_float)
        for item in _no_surrogates(events) if ijson.backend == "python" else events:
            delivered += 1
            yield item
        return
    except ijson.JSONError as exc:
        if "overflow" not in str(exc) or ijson.backend == "python" or not _rewind(stream):
            raise
    python = ijson.get_backend("python")
    for n, item in enumerate(_no_surrogates(python.basic_parse(stream, use_float=use_float))):
        if n >= delivered:
            yield item


def _no_surrogates(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """The Python backend decodes an escaped lone surrogate (``"\\ud800"``) into a str no database or
    encoder takes; refuse it as the C backend does (a ``UnicodeDecodeError``, turned into ``JSONError``)."""
    import ijson

    for item in events:
        if isinstance(item[1], str) and _SURROGATE.search(item[1]):
            raise ijson.JSONError("invalid UTF-8 in a string (an escaped lone surrogate such as \\ud800 is not text)")
        yield item


def _rewind(stream: IO[bytes]) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.seek(0)
        return True
    except (OSError, ValueError):
        return False


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
        too_deep = nesting_error(line)
        if too_deep:
            yield number, JsonlError(number, too_deep)
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
