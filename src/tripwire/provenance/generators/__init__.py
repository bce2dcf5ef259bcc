"""Generator metadata: one module per tool, a registry that runs them all, one normalised shape.

Order matters only for choosing the *primary* result when several parsers recognise the same file (a
Fooocus image in A1111 scheme also reads as an infotext; a NovelAI alpha copy also has a stealth signature):
the most specific tool comes first, the generic A1111 infotext last. Every result is kept as evidence.
A parser that crashes on hostile input is recorded as an error; it never loses the item. Every result
carries the model keys (models.py ``complete``), whether or not its tool writes more than a checkpoint name.
"""

from __future__ import annotations

from typing import Any, Callable

from . import a1111, comfyui, fooocus, invokeai, midjourney, novelai, swarmui
from .base import FIELDS, ParseInput, make_facts
from .models import complete
from .stealth import read_stealth

#: (name, parse function), most specific first
PARSERS: list[tuple[str, Callable[[ParseInput], list[dict[str, Any]]]]] = [
    ("novelai", novelai.parse),
    ("comfyui", comfyui.parse),
    ("invokeai", invokeai.parse),
    ("swarmui", swarmui.parse),
    ("fooocus", fooocus.parse),
    ("midjourney", midjourney.parse),
    ("a1111", a1111.parse),
]

#: formats whose pixels can carry a stealth copy (lossless, 8 bits per channel)
STEALTH_TYPES = {"image/png", "image/webp", "image/tiff"}

__all__ = ["FIELDS", "PARSERS", "ParseInput", "parse_all", "read_stealth"]


def _find_stealth(inp: ParseInput) -> list[str]:
    errors: list[str] = []
    if inp.pixels is None or inp.bundle.media_type not in STEALTH_TYPES:
        return errors
    try:
        arr = inp.pixels()
        found = read_stealth(arr) if arr is not None else None
    except Exception as exc:
        errors.append(f"stealth: {type(exc).__name__}: {exc}")
        return errors
    if found:
        inp.stealth.append(found)
    return errors


def parse_all(inp: ParseInput) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every parser; returns (facts list, most specific first; error messages)."""
    errors = _find_stealth(inp)
    found: list[dict[str, Any]] = []
    for name, parse in PARSERS:
        try:
            results = parse(inp)
        except Exception as exc:  # a bug or hostile input in one parser must not hide the others
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for facts in results:
            if not any(f["tool"] == facts["tool"] and f["carrier"] == facts["carrier"] for f in found):
                found.append(complete(facts))
    for stealth in inp.stealth:
        carrier = f"stealth:{stealth['signature']}"
        if not any(f["carrier"] == carrier for f in found):
            # the signature alone is the stealth-pnginfo extension's: report it even when the payload is junk
            facts = make_facts(a1111.TOOL, carrier, {"payload": (stealth.get("payload") or b"")[:4096].decode("utf-8", "replace")})
            facts["error"] = stealth.get("error") or "payload is not a recognised parameter block"
            found.append(complete(facts))
    return found, errors
