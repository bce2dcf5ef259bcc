"""Terminal escapes (issue 11, item 7): text from a file never reaches the terminal as control characters.

Every hostile value is built here: an A1111 ``parameters`` chunk that retitles the window, erases the line to
write a fake verdict, injects Rich markup and reverses text with U+202E.
"""

from __future__ import annotations

import io
import os

from helpers import synth_image, tripwire
from PIL.PngImagePlugin import PngInfo

from tripwire.termsafe import safe_json, safe_markup, safe_text

OSC_TITLE = "\x1b]0;title\x07"
FAKE_VERDICT = "\x1b[2K\rVERDICT: camera_original"
MARKUP = "[bold red]x[/]"
RLO = "\u202e"
HOSTILE = f"alpha {OSC_TITLE} bravo {FAKE_VERDICT} {MARKUP} {RLO}gnp.exe\x9b31m\x7f\nline-2"
RAW = ("\x1b", "\x07", "\r", "\u202e", "\x9b", "\x7f")
WIDE = {**os.environ, "COLUMNS": "400"}  # no folding: the escaped text stays on one line


def _hostile_png(path):
    info = PngInfo()
    info.add_text("parameters", f"{HOSTILE}\nNegative prompt: {HOSTILE}\n"
                                f"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model: {MARKUP}{OSC_TITLE}")
    buf = io.BytesIO()
    synth_image(3, (64, 48)).save(buf, "PNG", pnginfo=info)
    path.write_bytes(buf.getvalue())
    return path


def _assert_clean(text: str) -> None:
    assert [c for c in RAW if c in text] == []


def test_safe_text_escapes_controls_and_bidi_visibly():
    assert safe_text(FAKE_VERDICT) == "\\x1b[2K\\x0dVERDICT: camera_original"
    assert safe_text(f"a{RLO}b\u2066c\x85d\te\nf") == "a\\u202eb\\u2066c\\x85d\\x09e\\x0af"
    assert safe_text("plain term-1 ümlaut 日本") == "plain term-1 ümlaut 日本"
    assert safe_markup(MARKUP) == "\\[bold red]x\\[/]"
    assert safe_json('{"v": "a\u202eb\x9c"}') == '{"v": "a\\u202eb\\u009c"}'


def test_inspect_prints_hostile_metadata_escaped(tmp_path):
    png = _hostile_png(tmp_path / "img\x1b[31m.png")
    result = tripwire("inspect", str(png), env=WIDE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    _assert_clean(out)
    _assert_clean(result.stderr)
    assert "ai_generated" in out  # the real verdict is there …
    assert "VERDICT: camera_original" in out and "\\x1b[2K\\x0dVERDICT" in out  # … and the fake one is visibly text
    assert "\\x1b]0;title\\x07" in out and "\\u202e" in out and "\\x9b31m" in out
    assert MARKUP in out  # markup printed literally, not interpreted
    assert "img\\x1b[31m.png" in out


def test_inspect_json_carries_c1_and_bidi_as_json_escapes(tmp_path):
    import json

    png = _hostile_png(tmp_path / "img.png")
    result = tripwire("inspect", "--json", str(png))
    assert result.returncode == 0, result.stderr
    _assert_clean(result.stdout)
    assert HOSTILE in json.loads(result.stdout)["generator"]["prompt"]  # the data itself is unchanged


def test_error_messages_and_bank_list_are_escaped(tmp_path):
    missing = tmp_path / f"no{FAKE_VERDICT}{MARKUP}{RLO}"
    result = tripwire("inspect", str(missing), env=WIDE)
    assert result.returncode == 2
    _assert_clean(result.stderr)
    assert "\\x1b[2K\\x0dVERDICT" in result.stderr and MARKUP in result.stderr

    db = str(tmp_path / "t.db")
    name = f"bank-{RLO}1[bold]x[/]"
    created = tripwire("bank", "create", name, "--source", f"src{OSC_TITLE}{MARKUP}", "--db", db)
    assert created.returncode == 0, created.stderr
    _assert_clean(created.stderr)
    listed = tripwire("bank", "list", "--db", db, env=WIDE)
    assert listed.returncode == 0, listed.stderr
    _assert_clean(listed.stdout)
    assert "bank-\\u202e1[bold]x[/]" in listed.stdout and f"src\\x1b]0;title\\x07{MARKUP}" in listed.stdout
    shown = tripwire("bank", "show", name, "--db", db)
    assert shown.returncode == 0, shown.stderr
    _assert_clean(shown.stdout)
