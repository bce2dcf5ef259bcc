"""One provenance verdict per image, from the evidence list, by the rules in DESIGN.md.

| label             | definitive                                       | strong                                    | supporting |
|-------------------|--------------------------------------------------|-------------------------------------------|------------|
| ``ai_generated``  | trusted C2PA trainedAlgorithmicMedia; NovelAI     | valid-untrusted C2PA; generator metadata;  | detector   |
|                   | signature that verifies                          | IPTC DigitalSourceType in XMP; SD watermark|            |
| ``ai_edited``     | trusted C2PA compositeWithTrainedAlgorithmicMedia | img2img/inpaint generator metadata; valid- |            |
|                   |                                                  | untrusted C2PA composite; XMP composite    |            |
| ``camera_original``| trusted C2PA digitalCapture                     | valid-untrusted C2PA digitalCapture        | EXIF camera, XMP digitalCapture |
| ``unknown``       | (no evidence for any label)                      |                                           |            |

Each piece of evidence becomes a *claim* (label, confidence, tool, basis). The verdict is the strongest claim;
at equal strength an AI label beats ``camera_original`` (a generator chunk in a file with camera EXIF is far
more often a generated image with copied EXIF than the reverse) and ``ai_edited`` beats ``ai_generated``
(it carries the extra fact that an input picture, possibly a real photograph, was used). The one exception:
between two merely *supporting* claims (a pixel-detector score against camera EXIF) the camera reading wins,
so weak evidence never pushes a possibly-real photograph down the queue.

Every verdict carries a one-line ``reason``: for ``unknown``, what the evidence that *is* there says and why
it names no origin (a valid C2PA manifest declaring ``algorithmicMedia`` -- made by an algorithm without
trained AI -- is neither AI nor camera evidence under these rules; EXIF naming a game or an image program is
not a camera); for a weak verdict, that it rests on supporting evidence only. ``edits`` lists editing
evidence (an editing program in EXIF Software or XMP CreatorTool): it is shown, and it does not change the
label, because an edited photograph is still a photograph.

Nothing is resolved silently: every disagreement is listed in ``conflicts``: AI evidence next to camera
evidence, a C2PA manifest that fails validation (tamper evidence, never proof of origin), a NovelAI signature
that does not verify, an embedded camera thumbnail that no longer matches the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RANK = {"definitive": 3, "strong": 2, "supporting": 1}
#: tie-break at equal confidence (higher wins)
LABEL_ORDER = {"ai_edited": 3, "ai_generated": 2, "camera_original": 1}
AI_LABELS = ("ai_generated", "ai_edited")
WATERMARK_TOOLS = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "Stable Diffusion XL"}


@dataclass
class Claim:
    label: str
    confidence: str
    source: str
    basis: str
    tool: str | None = None


def _camera_name(entry: dict[str, Any]) -> str | None:
    make, model = entry.get("make") or "", entry.get("model") or ""
    make_word = make.split(" ")[0].lower() if make else ""
    if make_word and model.lower().startswith(make_word):
        make = ""  # "NIKON CORPORATION" + "NIKON D70" -> "NIKON D70"
    name = f"{make} {model}".strip()
    return name or None


def _claims(evidence: list[dict[str, Any]]) -> tuple[list[Claim], list[dict[str, Any]]]:
    claims: list[Claim] = []
    conflicts: list[dict[str, Any]] = []
    for entry in evidence:
        source = entry.get("source")
        if source == "c2pa":
            state = entry.get("state")
            implies = entry.get("implies")
            origin = entry.get("origin") or {}
            if state in ("valid", "trusted") and implies:
                confidence = "definitive" if state == "trusted" else "strong"
                signer = "trusted signer" if state == "trusted" else "signer not on the trust list"
                claims.append(
                    Claim(
                        implies,
                        confidence,
                        "c2pa",
                        f"C2PA manifest ({state}, {signer}) declares {origin.get('digital_source_type')}",
                        origin.get("tool") or entry.get("claim_generator"),
                    )
                )
            elif state == "invalid":
                codes = [c for c in entry.get("codes") or [] if c != "signingCredential.untrusted"]
                conflicts.append(
                    {
                        "kind": "c2pa_invalid",
                        "detail": "C2PA manifest fails validation ("
                        + (", ".join(codes) or "unknown reason")
                        + "): evidence of tampering or damage, not of origin; its claims are not used",
                    }
                )
        elif source == "xmp":
            implies = entry.get("implies")
            types = ", ".join(entry.get("digital_source_types") or [])
            if implies in AI_LABELS:
                claims.append(
                    Claim(implies, "strong", "xmp", f"XMP IPTC DigitalSourceType {types}", entry.get("ai_system") or entry.get("creator_tool"))
                )
            elif implies == "camera_original":
                claims.append(Claim(implies, "supporting", "xmp", f"XMP IPTC DigitalSourceType {types}", None))
        elif source == "generator":
            mode = entry.get("mode")
            label = "ai_edited" if mode in ("img2img", "inpaint") else "ai_generated"
            signature = entry.get("signature") or {}
            tool = entry.get("tool")
            if signature.get("verified"):
                claims.append(Claim("ai_generated", "definitive", "generator", f"{tool} signature verifies ({signature.get('key')} key)", tool))
            elif signature.get("present"):
                conflicts.append(
                    {
                        "kind": "signature_invalid",
                        "detail": f"{tool} signed_hash does not verify against the pixels: the image or its metadata was changed, or the signature is forged"
                        + (f" ({signature['error']})" if signature.get("error") else ""),
                    }
                )
            what = f"{tool} generation metadata in {entry.get('carrier')}"
            if label == "ai_edited":
                what += f" ({mode} from an input image)"
            claims.append(Claim(label, "strong", "generator", what, tool))
        elif source == "watermark":
            if entry.get("detected"):
                scheme = entry.get("scheme")
                claims.append(
                    Claim(
                        "ai_generated",
                        "strong",
                        "watermark",
                        f"{scheme} invisible watermark decoded (bit accuracy {entry.get('bit_accuracy')}, p={entry.get('p_value')})",
                        WATERMARK_TOOLS.get(str(scheme), str(scheme)),
                    )
                )
        elif source == "detector":
            if entry.get("flagged"):
                claims.append(
                    Claim("ai_generated", "supporting", "detector", f"pixel detector score {entry.get('score')} >= {entry.get('threshold')}", None)
                )
        elif source == "exif":
            if entry.get("camera"):
                name = _camera_name(entry)
                claims.append(Claim("camera_original", "supporting", "exif", f"EXIF camera fields ({name or 'serial'})", name))
                thumb = entry.get("thumbnail") or {}
                if thumb.get("consistent") is False:
                    conflicts.append(
                        {
                            "kind": "thumbnail_mismatch",
                            "detail": "the embedded EXIF thumbnail does not match the image: pixels changed after capture, or EXIF copied from another file",
                        }
                    )
    return claims, conflicts


def _order(claim: Claim) -> tuple[int, int]:
    """Sort key: confidence first; at equal confidence AI beats camera, except between two *supporting*
    claims (a detector score against camera EXIF), where the possibly-real reading wins, because the cost of
    wrongly deprioritising a real victim is far higher than that of looking at a synthetic image early."""
    order = LABEL_ORDER.get(claim.label, 0)
    if claim.confidence == "supporting" and claim.label == "camera_original":
        order = max(LABEL_ORDER.values()) + 1
    return RANK[claim.confidence], order


#: IPTC digital source types the rules above do not turn into a label, and what they mean
_NO_LABEL_SOURCE_TYPES = {
    "algorithmicMedia": "made by an algorithm without trained AI (procedural or test media)",
    "digitalArt": "made by a person with software",
    "virtualRecording": "a recording of a virtual scene",
    "screenCapture": "a screen capture",
    "composite": "a composite of other media",
    "compositeCapture": "a composite of captured media",
    "minorHumanEdits": "edited by a person",
    "dataDrivenMedia": "made from data",
}


def _edits(evidence: list[dict[str, Any]]) -> list[str]:
    """Editing evidence: the editing programs EXIF Software and XMP CreatorTool name (see .software)."""
    out: list[str] = []
    for entry in evidence:
        if entry.get("source") == "exif" and entry.get("editor"):
            out.append(f"edited with {entry['editor']} (EXIF Software {entry.get('software')!r})")
        elif entry.get("source") == "xmp" and entry.get("editor"):
            out.append(f"edited with {entry['editor']} (XMP CreatorTool {entry.get('creator_tool')!r})")
    return out


def _unknown_reason(evidence: list[dict[str, Any]]) -> str:
    """Why the evidence present names no origin (one line)."""
    parts: list[str] = []
    for entry in evidence:
        source = entry.get("source")
        if source == "c2pa":
            state = entry.get("state")
            if state in ("valid", "trusted"):
                dst = (entry.get("origin") or {}).get("digital_source_type")
                signer = "trusted signer" if state == "trusted" else "signer not on the trust list"
                if dst:
                    meaning = _NO_LABEL_SOURCE_TYPES.get(str(dst), "a source type the rules do not map to a label")
                    parts.append(f"the C2PA manifest ({state}, {signer}) declares {dst}: {meaning}, "
                                 "which is neither generative-AI nor camera evidence")
                else:
                    parts.append(f"the C2PA manifest ({state}, {signer}) declares no digital source type")
            elif state == "invalid":
                parts.append("the C2PA manifest fails validation, so its claims are not used")
            elif state == "remote_not_fetched":
                parts.append("the C2PA manifest is remote and was not fetched")
        elif source == "exif":
            if entry.get("not_camera"):
                parts.append(str(entry["not_camera"]))
            elif not entry.get("camera"):
                parts.append("EXIF is present but names no camera make, model or serial")
        elif source == "xmp" and entry.get("digital_source_types"):
            parts.append(f"XMP declares {', '.join(entry['digital_source_types'])}, which names no origin the rules use")
        elif source == "detector" and entry.get("score") is not None and not entry.get("flagged"):
            parts.append(f"pixel detector score {entry.get('score')} is below its threshold {entry.get('threshold')}")
    if not parts:
        return ("no provenance evidence in the file: no C2PA manifest, IPTC source type, camera EXIF, generator "
                "metadata or invisible watermark")
    return "; ".join(parts)


def _reason(top: Claim) -> str:
    if top.confidence == "supporting":
        why = {"exif": "EXIF is easy to write or copy", "xmp": "an XMP label is easy to write",
               "detector": "a pixel score is not proof"}.get(top.source, "nothing stronger was found")
        return f"weak: rests on supporting evidence only ({top.basis}); {why}"
    return f"{top.confidence}: {top.basis}"


def decide(evidence: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``provenance`` field: {label, confidence, tool, reason, evidence, conflicts, basis, edits}."""
    claims, conflicts = _claims(evidence)
    edits = _edits(evidence)
    if not claims:
        return {"label": "unknown", "confidence": None, "tool": None, "reason": _unknown_reason(evidence),
                "evidence": evidence, "conflicts": conflicts, "basis": [], "edits": edits}
    claims.sort(key=_order, reverse=True)
    top = claims[0]
    tool = top.tool or next((c.tool for c in claims if c.label == top.label and c.tool), None)
    ai = [c for c in claims if c.label in AI_LABELS]
    camera = [c for c in claims if c.label == "camera_original"]
    if ai and camera:
        conflicts.insert(
            0,
            {
                "kind": "ai_and_camera",
                "detail": "AI evidence ("
                + "; ".join(c.basis for c in ai)
                + ") and camera evidence ("
                + "; ".join(c.basis for c in camera)
                + ") in the same file",
            },
        )
    return {
        "label": top.label,
        "confidence": top.confidence,
        "tool": tool,
        "reason": _reason(top),
        "evidence": evidence,
        "conflicts": conflicts,
        "basis": [f"{c.confidence}: {c.basis}" for c in claims],
        "edits": edits,
    }
