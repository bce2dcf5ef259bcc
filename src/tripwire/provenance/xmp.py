"""XMP / IPTC: the digital source type a tool declared, and the generator hints XMP commonly carries.

``Iptc4xmpExt:DigitalSourceType`` is how Midjourney, Google, Adobe, Shutterstock and others label output as
``trainedAlgorithmicMedia``; cameras and newsrooms use ``digitalCapture``. Values come as full IPTC vocabulary
URIs (http or https, sometimes with a trailing slash) or bare codes; they are normalised to the bare code.

XMP is attacker-controlled XML, so it is parsed with defusedxml (no DTDs, no entity expansion, no external
references) after a size cap.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as SafeET

from .software import editor_name

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

MAX_XMP_BYTES = 2 * 1024 * 1024

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "exifEX": "http://cipa.jp/exif/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "dcterms": "http://purl.org/dc/terms/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
}

#: the IPTC Digital Source Type vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/)
DIGITAL_SOURCE_TYPES = {
    "digitalCapture": "camera_original",
    "computationalCapture": "camera_original",
    "negativeFilm": "camera_original",
    "positiveFilm": "camera_original",
    "print": None,
    "minorHumanEdits": None,
    "humanEdits": None,
    "compositeCapture": None,
    "algorithmicallyEnhanced": None,
    "digitalCreation": None,
    "digitalArt": None,  # older name of digitalCreation
    "dataDrivenMedia": None,
    "trainedAlgorithmicMedia": "ai_generated",
    # "created purely by an algorithm not based on any sampled training data" (fractals, renders): synthetic,
    # but not AI; it says nothing either way about a camera, so it implies no label
    "algorithmicMedia": None,
    "compositeWithTrainedAlgorithmicMedia": "ai_edited",
    "compositeSynthetic": None,  # a composite with synthetic (not necessarily AI) elements
    "screenCapture": None,
    "virtualRecording": None,
    "composite": None,
    "softwareImage": None,
}
_LOWER = {k.lower(): k for k in DIGITAL_SOURCE_TYPES}
_URI = re.compile(r"^(?:https?://)?cv\.iptc\.org/newscodes/digitalsourcetype/", re.IGNORECASE)


def normalise_source_type(value: Any) -> str | None:
    """``http(s)://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` -> ``trainedAlgorithmicMedia``.

    Unknown codes are kept as written (minus the vocabulary prefix) so nothing is silently dropped.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    code = _URI.sub("", text).strip("/ ")
    code = code.rsplit("/", 1)[-1] if code.startswith("http") else code
    return _LOWER.get(code.lower(), code) or None


def label_for_source_type(code: str | None) -> str | None:
    """The verdict label a digital source type implies (None: says nothing about AI vs camera)."""
    return DIGITAL_SOURCE_TYPES.get(code or "")


def _qname(prefix: str, local: str) -> str:
    return "{%s}%s" % (NS[prefix], local)


def _values(root: Element, prefix: str, local: str) -> list[str]:
    """All values of a property, whether written as an attribute or an element (with rdf:Alt/Seq/Bag)."""
    name = _qname(prefix, local)
    out: list[str] = []
    for desc in root.iter(_qname("rdf", "Description")):
        if name in desc.attrib:
            out.append(desc.attrib[name])
    for el in root.iter(name):
        resource = el.attrib.get(_qname("rdf", "resource"))
        if resource:
            out.append(resource)
        items = [li.text for li in el.iter(_qname("rdf", "li")) if li.text and li.text.strip()]
        if items:
            out.extend(items)
        elif el.text and el.text.strip():
            out.append(el.text)
    return [v.strip() for v in out if v and v.strip()]


def _first(root: Element, prefix: str, local: str, limit: int = 8192) -> str | None:
    vals = _values(root, prefix, local)
    return vals[0][:limit] if vals else None


def _strip_packet(text: str) -> str:
    """Drop the xpacket wrapper and anything before the first element (BOMs, padding)."""
    start = text.find("<x:xmpmeta")
    if start < 0:
        start = text.find("<rdf:RDF")
    if start < 0:
        start = text.find("<")
    end_meta = text.rfind("</x:xmpmeta>")
    if end_meta >= 0:
        return text[start : end_meta + len("</x:xmpmeta>")]
    end_rdf = text.rfind("</rdf:RDF>")
    if end_rdf >= 0:
        return text[start : end_rdf + len("</rdf:RDF>")]
    return text[start:]


def parse_xmp(packet: str) -> dict[str, Any]:
    """Facts from one XMP packet; ``{"error": ...}`` when it does not parse."""
    if len(packet) > MAX_XMP_BYTES:
        return {"error": f"XMP packet larger than {MAX_XMP_BYTES} bytes, not parsed"}
    try:
        root = SafeET.fromstring(_strip_packet(packet))
    except Exception as exc:  # defusedxml raises on DTDs/entities; ParseError on junk
        return {"error": f"XMP does not parse ({type(exc).__name__})"}
    raw_types = _values(root, "Iptc4xmpExt", "DigitalSourceType")
    types = []
    for raw in raw_types:
        code = normalise_source_type(raw)
        if code and code not in types:
            types.append(code)
    facts: dict[str, Any] = {
        "digital_source_types": types,
        "creator_tool": _first(root, "xmp", "CreatorTool", 256),
        "ai_system": _first(root, "Iptc4xmpExt", "AISystemUsed", 256),
        "ai_system_version": _first(root, "Iptc4xmpExt", "AISystemVersionUsed", 128),
        "ai_prompt": _first(root, "Iptc4xmpExt", "AIPromptInformation"),
        "description": _first(root, "dc", "description"),
        "credit": _first(root, "photoshop", "Credit", 256),
        "make": _first(root, "tiff", "Make", 128),
        "model": _first(root, "tiff", "Model", 128),
        "user_comment": _first(root, "exif", "UserComment"),
        "provenance": _first(root, "dcterms", "provenance", 1024),
    }
    return {k: v for k, v in facts.items() if v not in (None, [], "")}


def xmp_evidence(packets: list[str]) -> dict[str, Any] | None:
    """The ``xmp`` evidence entry merged over all packets of a file, or None when there is no XMP."""
    if not packets:
        return None
    merged: dict[str, Any] = {"source": "xmp", "digital_source_types": []}
    errors = []
    for packet in packets[:16]:
        facts = parse_xmp(packet)
        if "error" in facts:
            errors.append(facts["error"])
            continue
        for code in facts.pop("digital_source_types", []):
            if code not in merged["digital_source_types"]:
                merged["digital_source_types"].append(code)
        for key, value in facts.items():
            merged.setdefault(key, value)
    if errors:
        merged["errors"] = errors
    editor = editor_name(merged.get("creator_tool") if isinstance(merged.get("creator_tool"), str) else None)
    if editor:
        merged["editor"] = editor  # editing evidence (see .software)
    labels = [label_for_source_type(c) for c in merged["digital_source_types"]]
    merged["implies"] = next((lab for lab in labels if lab in ("ai_generated", "ai_edited")), None) or next(
        (lab for lab in labels if lab), None
    )
    return merged
