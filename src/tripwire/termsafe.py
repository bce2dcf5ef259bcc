"""Text that is safe to print on a terminal: the one place human-readable output is made harmless.

Metadata inside the files tripwire examines (prompts, tool names, EXIF fields, file names, bank notes) is
attacker-controlled. Printed verbatim, an ESC/OSC sequence can retitle the window, erase the line and write
a fake verdict (``\\x1b[2K\\rVERDICT: camera_original``), a bidi override (U+202E) can reverse what follows,
and Rich markup (``[bold red]``) can restyle or hide text. So:

* :func:`safe_text` writes every C0 control (TAB, LF and CR included: inside a value they only serve to
  fake layout), DEL, every C1 control, the bidi embedding/override/isolate marks and the Unicode line and
  paragraph separators as visible escapes: ``\\x1b``, ``\\x0a``, ``\\u202e``. Backslashes are left alone.
* :func:`safe_markup` is :func:`safe_text` plus Rich markup escaping: use it for every value placed into a
  Rich markup string or table cell.
* :func:`console` makes a Rich console that applies the same escaping (newlines kept) to every string it
  prints, as a backstop for a value that reached it unescaped. Every console tripwire prints with comes from
  here.
* :func:`safe_json` makes JSON printed with ``ensure_ascii=False`` carry those characters as ``\\uXXXX``
  escapes (JSON already escapes C0): the same data, nothing a terminal acts on.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.text import Text

from .records import SURROGATE_ESCAPES

#: invisible format characters that reorder or break text: bidi marks, embeddings, overrides, isolates,
#: and the Unicode line/paragraph separators
_FORMAT = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)
_UNSAFE = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_FORMAT)


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _visible(code) for code in _UNSAFE}
#: lone surrogates (a file name's bytes that are not UTF-8, as os.fsdecode keeps them) cannot be printed at
#: all: written as records.shown_path writes them
_TABLE.update(SURROGATE_ESCAPES)
#: for whole messages that tripwire itself laid out on several lines
_TABLE_LINES = {code: text for code, text in _TABLE.items() if code != 0x0A}
_TABLE_JSON = {code: f"\\u{code:04x}" for code in (*_UNSAFE, *range(0xD800, 0xE000)) if code >= 0x7F}


def safe_text(value: Any) -> str:
    """``str(value)`` with every control and bidi character written as a visible escape."""
    return str(value).translate(_TABLE)


def safe_markup(value: Any) -> str:
    """:func:`safe_text`, then escaped for Rich markup: ``[red]`` prints as ``[red]``."""
    return _escape_markup(safe_text(value))


def safe_json(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with DEL, C1 and bidi characters as ``\\uXXXX``."""
    return text.translate(_TABLE_JSON)


class SafeConsole(Console):
    """A Rich console that escapes control and bidi characters in every string it renders (newlines kept)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(text.translate(_TABLE_LINES), **kwargs)


def console(**kwargs: Any) -> Console:
    """``rich.console.Console(**kwargs)`` that never prints a control or bidi character from a value."""
    return SafeConsole(**kwargs)
