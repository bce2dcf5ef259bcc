"""Provenance evidence of a video container (MP4, MOV, WebM, MKV ...), for the same verdict rules as images.

* **C2PA**: c2pa-python reads manifests in BMFF (MP4/MOV) as it does in JPEG (:func:`.c2pa.c2pa_evidence`).
* **XMP** packets (IPTC DigitalSourceType, CreatorTool), wherever the container put them (an MP4 ``uuid``
  box, a MOV ``XMP_`` atom, an MKV tag): found by their ``<x:xmpmeta`` markers, bounded in size and number.
* **Container tags**, read with PyAV (format and stream metadata):

  - ComfyUI's VideoHelperSuite writes the generation graph into the ``comment`` tag as JSON
    (``{"prompt": ..., "workflow": ...}``): handed to the ComfyUI parser as if it were PNG text;
  - the names of AI video tools in the ``encoder``, ``software``, ``comment``, ``title`` or ``description``
    tags (:data:`AI_VIDEO_TOOLS`): generator evidence (strong, like generator metadata in an image);
  - phone and camera make/model tags (``com.apple.quicktime.make``/``model``, ``com.android.manufacturer``
    /``model``, ``make``/``model``) with the creation time and whether a location is recorded: camera
    evidence (supporting, like EXIF: tags can be copied).

Everything is bounded and never raises: an unreadable container gives fewer facts and a note.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from .containers import MetadataBundle
from .generators import ParseInput, parse_all
from .generators.base import make_facts
from .generators.models import complete

#: XMP packets looked at per file, and the largest one read
MAX_XMP_PACKETS = 4
MAX_XMP_BYTES = 1 << 20
#: longest tag value kept (a ComfyUI workflow is tens of kilobytes)
MAX_TAG_CHARS = 512 * 1024
#: most tags read from one container (format and streams together)
MAX_TAGS = 256

#: AI video tools by the names they leave in container tags (regular expressions, case-insensitive, whole words)
AI_VIDEO_TOOLS: tuple[tuple[str, str], ...] = (
    ("Sora", r"\bsora\b"),
    ("Runway", r"\brunway(?:ml)?\b"),
    ("Pika", r"\bpika(?:\s*labs)?\b"),
    ("Kling", r"\bkling\b"),
    ("Luma Dream Machine", r"\bdream machine\b|\bluma ai\b"),
    ("Google Veo", r"\bveo\s*\d?\b"),
    ("Hailuo (MiniMax)", r"\bhailuo\b|\bminimax\b"),
    ("Stable Video Diffusion", r"\bstable video diffusion\b|\bsvd(?:_xt)?\b"),
    ("AnimateDiff", r"\banimatediff\b"),
    ("Wan", r"\bwan\s?2\.\d\b|\bwanvideo\b"),
    ("HunyuanVideo", r"\bhunyuan\s?video\b"),
    ("LTX-Video", r"\bltx-?video\b|\bltxv\b"),
    ("CogVideoX", r"\bcogvideox?\b"),
    ("Mochi", r"\bmochi[- ]1\b"),
    ("Deforum", r"\bdeforum\b"),
)
_TOOL_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in AI_VIDEO_TOOLS]
_TOOL_TAGS = ("encoder", "software", "comment", "title", "description", "com.apple.quicktime.software",
              "com.apple.quicktime.description", "com.apple.quicktime.comment")
_MAKE_TAGS = ("com.apple.quicktime.make", "com.android.manufacturer", "make", "manufacturer")
_MODEL_TAGS = ("com.apple.quicktime.model", "com.android.model", "model")
_LOCATION_TAGS = ("location", "com.apple.quicktime.location.iso6709", "location-eng")
_XMP_START = b"<x:xmpmeta"
_XMP_END = b"</x:xmpmeta>"


def container_tags(data: bytes, notes: list[str]) -> dict[str, str]:
    """Format-level and stream-level metadata tags (lowercase keys; a format tag wins over a stream's)."""
    import av

    tags: dict[str, str] = {}
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            sources = [container.metadata, *(s.metadata for s in list(container.streams)[:16])]
            for metadata in sources:
                for key, value in list((metadata or {}).items())[:MAX_TAGS]:
                    if len(tags) < MAX_TAGS:
                        tags.setdefault(str(key).lower(), str(value)[:MAX_TAG_CHARS])
    except Exception as exc:  # an unreadable container: the decoder reports it; here it is only a note
        notes.append(f"container tags not read: {type(exc).__name__}: {exc}"[:300])
    return tags


def xmp_packets(data: bytes) -> list[str]:
    """XMP packets found anywhere in the file (bounded)."""
    packets: list[str] = []
    at = 0
    while len(packets) < MAX_XMP_PACKETS:
        start = data.find(_XMP_START, at)
        if start < 0:
            break
        end = data.find(_XMP_END, start, start + MAX_XMP_BYTES)
        if end < 0:
            break
        packets.append(data[start : end + len(_XMP_END)].decode("utf-8", "replace"))
        at = end
    return packets


def _first(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = (tags.get(key) or "").strip()
        if value:
            return value[:200]
    return None


def camera_entry(tags: dict[str, str]) -> dict[str, Any] | None:
    """Phone/camera make and model tags as an ``exif``-source evidence entry (the verdict's camera rule)."""
    make, model = _first(tags, _MAKE_TAGS), _first(tags, _MODEL_TAGS)
    if not (make or model):
        return None
    return {"source": "exif", "carrier": "video container tags", "make": make, "model": model,
            "software": _first(tags, ("com.apple.quicktime.software", "software")),
            "capture_time": _first(tags, ("com.apple.quicktime.creationdate", "creation_time")),
            "gps_present": _first(tags, _LOCATION_TAGS) is not None, "camera": True}


def tool_facts(tags: dict[str, str]) -> list[dict[str, Any]]:
    """Generator facts for every known AI video tool named in a tag (one per tool)."""
    found: list[dict[str, Any]] = []
    for key in _TOOL_TAGS:
        value = tags.get(key)
        if not value:
            continue
        for tool, pattern in _TOOL_PATTERNS:
            if pattern.search(value[:4096]) and not any(f["tool"] == tool for f in found):
                found.append(complete(make_facts(tool, f"video tag {key}", {key: value[:4096]})))
    return found


def comfyui_bundle(tags: dict[str, str], media_type: str) -> MetadataBundle:
    """VideoHelperSuite's ``comment`` JSON as the ``prompt``/``workflow`` texts ComfyUI's parser reads."""
    bundle = MetadataBundle(media_type=media_type)
    try:
        comment = json.loads(tags.get("comment") or "null")
    except (ValueError, RecursionError):
        return bundle
    if isinstance(comment, dict):
        for key in ("prompt", "workflow"):
            value = comment.get(key)
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            if isinstance(value, str):
                bundle.text[key] = value[:MAX_TAG_CHARS]
    return bundle


def video_evidence(data: bytes, media_type: str, settings: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(evidence entries except C2PA, generator facts, notes) of one video container."""
    from .xmp import parse_xmp, xmp_evidence

    notes: list[str] = []
    tags = container_tags(data, notes)
    evidence: list[dict[str, Any]] = []
    packets = xmp_packets(data)
    xmp_entry = xmp_evidence(packets)
    if xmp_entry is not None:
        evidence.append(xmp_entry)
    camera = camera_entry(tags)
    if camera is not None:
        evidence.append(camera)
    xmp_facts: dict[str, Any] = {}
    for packet in packets:
        for key, value in parse_xmp(packet).items():
            xmp_facts.setdefault(key, value)
    generators, errors = parse_all(ParseInput(bundle=comfyui_bundle(tags, media_type), xmp=xmp_facts, settings=settings))
    notes.extend(errors)
    generators += [f for f in tool_facts(tags) if not any(g["tool"] == f["tool"] for g in generators)]
    return evidence, generators, notes
