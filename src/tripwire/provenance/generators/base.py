"""What every generator parser shares: the input it reads, the normalised facts it returns, bounded values.

Each tool writes its parameters its own way (a text block, a JSON graph, EXIF fields, alpha-channel bits). The
parsers turn them into one shape so a report, a CSV column or a query never needs to know the tool:

``{tool, tool_version, model, model_hash, seed, steps, sampler, cfg, size, prompt, negative_prompt, mode,
carrier, model_ref, loras, embeddings, vae, prompt_template, raw}``

``model`` and ``model_hash`` are the strings as written; ``model_ref``/``loras``/``embeddings``/``vae`` are the
validated model facts and ``prompt_template`` the normalised prompt (see models.py; the registry fills them in
for a parser that gave none).

``mode`` is ``txt2img``, ``img2img`` or ``inpaint`` when the metadata says (an img2img/inpaint workflow started
from an existing picture, which may be a real photograph: the verdict calls that ``ai_edited``). ``carrier``
names where the facts were found (``png:parameters``, ``exif:UserComment``, ``stealth:alpha``...). ``raw``
keeps the original fields, each cut to a bounded size, so nothing the tool wrote is lost to normalisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..containers import MetadataBundle

#: prompts longer than this are cut (the full text stays in ``raw`` up to MAX_RAW_VALUE)
MAX_PROMPT = 8000
#: one raw field is cut at this many characters
MAX_RAW_VALUE = 16 * 1024
#: all raw fields of one parse together
MAX_RAW_TOTAL = 64 * 1024
#: JSON payloads above this size are not parsed
MAX_JSON = 8 * 1024 * 1024

FIELDS = (
    "tool",
    "tool_version",
    "model",
    "model_hash",
    "seed",
    "steps",
    "sampler",
    "cfg",
    "size",
    "prompt",
    "negative_prompt",
    "mode",
    "carrier",
)


@dataclass
class ParseInput:
    """Everything a generator parser may look at for one file."""

    bundle: MetadataBundle
    #: decoded EXIF free-text fields (``UserComment``, ``Software``, ``Make`` ...)
    exif_text: dict[str, str] = field(default_factory=dict)
    #: merged XMP facts (see xmp.parse_xmp), or empty
    xmp: dict[str, Any] = field(default_factory=dict)
    #: returns the decoded pixel grid (numpy array, H x W x C) or None; decoded at most once, only on demand
    pixels: Callable[[], Any] | None = None
    #: ``[provenance]`` settings (e.g. NovelAI verify keys)
    settings: dict[str, Any] = field(default_factory=dict)
    #: pixel-channel payloads already found (stealth), filled by the registry before the tool parsers run
    stealth: list[dict[str, Any]] = field(default_factory=list)


def bounded(value: Any, limit: int = MAX_PROMPT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value[:limit] if value else None


def to_int(value: Any) -> int | None:
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        text = str(value).strip()
        return int(text) if text and len(text) < 40 else None
    except (TypeError, ValueError):
        return None


def to_float(value: Any) -> float | None:
    try:
        if isinstance(value, bool):
            return None
        out = float(str(value).strip())
        return out if out == out and abs(out) < 1e9 else None  # no NaN
    except (TypeError, ValueError):
        return None


def size_of(width: Any, height: Any) -> str | None:
    w, h = to_int(width), to_int(height)
    return f"{w}x{h}" if w and h else None


def load_json(text: str | None) -> Any:
    """json.loads that returns None instead of raising (and refuses oversized payloads)."""
    if not text or len(text) > MAX_JSON:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def raw_fields(pairs: dict[str, Any]) -> dict[str, str]:
    """Original fields as bounded strings (JSON for structures), within the total budget."""
    out: dict[str, str] = {}
    left = MAX_RAW_TOTAL
    for key, value in pairs.items():
        if value is None or left <= 0:
            continue
        if not isinstance(value, str):
            try:
                value = json.dumps(value, ensure_ascii=False)
            except (TypeError, ValueError):
                value = str(value)
        value = value[: min(MAX_RAW_VALUE, left)]
        left -= len(value)
        out[str(key)[:100]] = value
    return out


def make_facts(tool: str, carrier: str, raw: dict[str, Any], **values: Any) -> dict[str, Any]:
    """A normalised facts dict: every field present (None when unknown), strings bounded."""
    facts: dict[str, Any] = {name: None for name in FIELDS}
    facts["tool"] = tool
    facts["carrier"] = carrier
    for key, value in values.items():
        if key in ("seed", "steps"):
            facts[key] = to_int(value)
        elif key == "cfg":
            facts[key] = to_float(value)
        elif key in ("prompt", "negative_prompt"):
            facts[key] = bounded(value)
        elif key in FIELDS:
            facts[key] = bounded(value, 512)
        else:
            facts[key] = value
    facts["raw"] = raw_fields(raw)
    return facts
