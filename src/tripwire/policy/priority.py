"""Triage priority: which item should a person look at first?

The point of provenance in tripwire is to put the possibly-real victim first. The default order, highest
first (every number is configurable under ``[priority]`` in the TOML config):

===============================  =======  ===================================================================
case                             default  why
===============================  =======  ===================================================================
matches a hash bank              100      known material: confirmed abuse imagery, act now
made with a banked model         90       its metadata names a model file in a bank (a person-LoRA may
                                          depict a real, identifiable child though every pixel is
                                          synthetic); above camera evidence because a bank entry is a
                                          person's or hotline's decision, while EXIF can be forged
camera evidence, no AI evidence  80       most likely a photograph of a real person
AI-edited (img2img, inpaint,     70       an input picture was used, and it may be a real photograph
composite)
no provenance evidence at all    60       unknown origin: must be treated as possibly real
AI, supporting only (detector)   50       a pixel score is weak evidence; do not deprioritise much
AI-generated, strong             30       generator metadata, IPTC label, watermark or untrusted C2PA
AI-generated, definitive         20       trusted C2PA or a verified NovelAI signature
not an image / not analysed      10       nothing to look at in this item itself (archives, text)
===============================  =======  ===================================================================

Adjustments: ``conflict`` (default +5) when the provenance evidence disagrees (AI and camera evidence together,
a C2PA manifest that fails validation, a signature that does not verify) — somebody may have tried to dress a
real photograph as synthetic, or the reverse; ``error`` (default 40) for an image that could not be analysed
(corrupt, truncated), which is ranked like an unknown-origin image minus a little because a person may still
be able to open it. A bank match with ``negative`` (allow-list) entries only does not count as a match. A match by a model hash
(a signal type that ``describes`` a model, not the item) is not a match of the item itself: it ranks
``model_match``, and the reason names the model reference (``lora:style-alpha``), the form it matched by
(AutoV2, AutoV3, SHA256; "ambiguous" when a short prefix fits several banked models) and the bank.

**Videos** (and animated GIF/WebP) follow the same story as images, never "last because video": a vPDQ match, or
a sampled frame matching an image bank, ranks ``match`` (the reason says which time ranges matched and the
match percentages); phone make/model tags rank ``camera_original``, generator tags ``ai_generated``; a video
with no provenance evidence ranks ``unknown`` like an image, and one that could not be decoded ``error``.

The rule never lowers an item below zero and never *drops* anything: it only orders the queue.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..media.sniff import is_video
from ..records import BankMatch, ItemRecord

DEFAULT_WEIGHTS: dict[str, float] = {
    "match": 100.0,
    "model_match": 90.0,
    "camera_original": 80.0,
    "ai_edited": 70.0,
    "unknown": 60.0,
    "ai_generated_supporting": 50.0,
    "ai_generated_strong": 30.0,
    "ai_generated_definitive": 20.0,
    "not_image": 10.0,
    "error": 40.0,
    "conflict": 5.0,
}


def _weights(settings: Mapping[str, Any] | None) -> dict[str, float]:
    from ..errors import UsageError

    weights = dict(DEFAULT_WEIGHTS)
    for key, value in (settings or {}).items():
        if key not in DEFAULT_WEIGHTS:
            raise UsageError(f"unknown setting priority.{key} (known: {', '.join(sorted(DEFAULT_WEIGHTS))})")
        try:
            weights[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"priority.{key}: expected a number, got {value!r}") from exc
    return weights


def _positive_matches(record: Mapping[str, Any]) -> list[BankMatch]:
    matches = record.get("matches") or []
    if not isinstance(matches, list):
        return []
    return [m for m in matches if not (isinstance(m, dict) and m.get("negative"))]


def _about_model(match: Mapping[str, Any]) -> bool:
    from ..signals.registry import registry

    name = str(match.get("signal_type") or "")
    return name in registry and registry.get(name).describes == "model"


def _model_reason(matches: list[BankMatch]) -> str:
    """``made with banked model(s): lora:style-alpha (AutoV3, bank models-a: style-alpha.safetensors); ...``"""
    seen: dict[tuple[str, str], str] = {}
    for m in matches:
        ref = str(m.get("variant") or "model")
        what = f"{m.get('form') or m.get('signal_type')}{', ambiguous prefix' if m.get('ambiguous') else ''}"
        where = f"bank {m.get('bank', '?')}" + (f": {m['source_id']}" if m.get("source_id") else "")
        seen.setdefault((ref, str(m.get("bank"))), f"{ref} ({what}, {where})")
    listed = list(seen.values())
    more = f"; and {len(listed) - 5} more" if len(listed) > 5 else ""
    return f"made with banked model{'s' if len(listed) > 1 else ''}: {'; '.join(listed[:5])}{more}"


def _video_reason(matches: list[BankMatch]) -> str:
    """``; video 100%/80% of frames at 0-9 s; frame at 4 s`` for vPDQ matches and video frames in image banks."""
    notes: list[str] = []
    for m in matches:
        if "query_match_percent" in m:
            ranges = ", ".join(f"{a:g}-{b:g} s" for a, b in (m.get("matched_ranges") or [])[:3])
            notes.append(f"video {m['query_match_percent']:g}%/{m.get('compared_match_percent', 0):g}% of frames"
                         + (f" at {ranges}" if ranges else ""))
        elif str(m.get("variant") or "").startswith("frame@"):
            notes.append(f"frame at {str(m['variant'])[6:]} s")
    return "; " + "; ".join(dict.fromkeys(notes)) if notes else ""


def prioritise(record: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> tuple[float, str]:
    """(priority, reason) for one item record; higher = look sooner. ``settings`` = the ``[priority]`` table."""
    w = _weights(settings)
    matches = _positive_matches(record)
    provenance = record.get("provenance") if isinstance(record.get("provenance"), dict) else None
    conflicts = (provenance or {}).get("conflicts") or []
    bonus = w["conflict"] if conflicts else 0.0
    conflict_note = f"; {len(conflicts)} provenance conflict(s)" if conflicts else ""

    models = [m for m in matches if isinstance(m, dict) and _about_model(m)]
    matches = [m for m in matches if not (isinstance(m, dict) and _about_model(m))]
    model_note = f"; {_model_reason(models)}" if models else ""
    if matches:
        banks = sorted({str(m.get("bank", "?")) for m in matches if isinstance(m, dict)})
        video_note = _video_reason(matches)
        return w["match"] + bonus, f"matches {len(matches)} bank entr{'y' if len(matches) == 1 else 'ies'} ({', '.join(banks) or 'bank'}){video_note}{model_note}{conflict_note}"
    if models:
        return w["model_match"] + bonus, _model_reason(models) + conflict_note

    media_type = str(record.get("media_type") or "")
    error = record.get("error")
    what = "video" if is_video(media_type) or record.get("video") else "image"
    if provenance is None:
        if error and (media_type.startswith("image/") or what == "video"):
            return w["error"], f"{what} could not be analysed ({error.get('code') if isinstance(error, dict) else error})"
        if not media_type.startswith("image/") and what != "video":
            return w["not_image"], f"not an image or video ({media_type or 'unknown type'})"
        return w["unknown"], f"{what} without provenance facts: origin unknown"

    label = provenance.get("label") or "unknown"
    confidence = provenance.get("confidence")
    tool = provenance.get("tool")
    by = f" by {tool}" if tool else ""
    editors = sorted({str(e["editor"]) for e in provenance.get("evidence") or [] if isinstance(e, dict) and e.get("editor")})
    if label == "camera_original":
        edited = f"; edited with {', '.join(editors)}" if editors else ""
        value, reason = w["camera_original"], (f"camera evidence and no AI evidence ({confidence}{by}{edited}): possibly a "
                                               f"real {'recording' if what == 'video' else 'photograph'}")
    elif label == "ai_edited":
        value, reason = w["ai_edited"], f"AI-edited{by} ({confidence}): the input picture may be a real photograph"
    elif label == "ai_generated":
        key = {"definitive": "ai_generated_definitive", "strong": "ai_generated_strong"}.get(str(confidence), "ai_generated_supporting")
        value, reason = w[key], f"AI-generated{by} ({confidence} evidence)"
    else:  # the verdict says why no origin is known (what evidence there is, or that there is none)
        why = provenance.get("reason") or "no provenance evidence"
        value, reason = w["unknown"], f"origin unknown ({why}): treat as possibly real"
    if error and label == "unknown":
        value, reason = w["error"], f"{what} could not be fully analysed ({error.get('code') if isinstance(error, dict) else error}); origin unknown"
    return max(0.0, value + bonus), reason + conflict_note


class PriorityStage:
    """Pipeline stage: sets ``priority`` and ``priority_reason`` on every record (after matching)."""

    name = "priority"

    def __init__(self, config: Any | None = None) -> None:
        sections = getattr(config, "sections", None) or {}
        self.settings = dict(sections.get("priority") or {})
        _weights(self.settings)  # fail fast on a bad config, not on the first record

    def apply(self, record: ItemRecord) -> None:
        record["priority"], record["priority_reason"] = prioritise(record, self.settings)
