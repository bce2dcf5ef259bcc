"""Which names in EXIF/XMP are software rather than a camera, and which are editing software.

EXIF ``Make``/``Model`` are meant for the camera, but games, console screenshot features and image programs
write their own names there ("Polyphony Digital Inc." / "Gran Turismo 5"), and ``Software``/``CreatorTool``
name the program that last wrote the file ("GIMP 2.4.5", "Adobe Photoshop Lightroom"). The first must not
count as camera evidence; the second is editing evidence: the pixels were changed after capture. The names
are a curated list in ``data/software.toml`` (data, not code: a name is added without touching this
module), matched case-insensitively on whole words.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["editor_name", "not_camera_reason"]


def _pattern(names: list[str]) -> re.Pattern[str]:
    """One case-insensitive whole-word alternation, longest names first (so "Adobe Photoshop" beats "Photoshop")."""
    alternatives = sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)
    body = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in alternatives)
    return re.compile(rf"(?<![\w.])(?:{body})(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class _Lists:
    makers: re.Pattern[str]
    words: re.Pattern[str]
    editors: re.Pattern[str]


@lru_cache(maxsize=1)
def _lists() -> _Lists:
    data = tomllib.loads(resources.files("tripwire.provenance").joinpath("data/software.toml").read_text(encoding="utf-8"))
    not_camera = data.get("not_camera") or {}
    return _Lists(_pattern(not_camera.get("makers") or []), _pattern(not_camera.get("words") or []),
                  _pattern((data.get("editors") or {}).get("names") or []))


def not_camera_reason(make: str | None, model: str | None) -> str | None:
    """Why EXIF ``make``/``model`` name software or a game rather than a camera, or None when they may be one."""
    lists = _lists()
    shown = " ".join(x for x in (make, model) if x)
    for field_name, value in (("Make", make), ("Model", model)):
        if not value:
            continue
        hit = lists.makers.search(value)
        if hit:
            return f"EXIF {field_name} names {hit.group(0)}, a software or game maker, not a camera ({shown})"
        hit = lists.words.search(value)
        if hit:
            return f"EXIF {field_name} reads as software or a game (\"{hit.group(0)}\"), not a camera ({shown})"
    return None


def editor_name(software: str | None) -> str | None:
    """The editing program named in an EXIF ``Software`` / XMP ``CreatorTool`` value, or None."""
    if not software:
        return None
    hit = _lists().editors.search(software)
    return hit.group(0) if hit else None
