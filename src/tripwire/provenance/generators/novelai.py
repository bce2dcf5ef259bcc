"""NovelAI: PNG ``Title``/``Description``/``Software``/``Source``/``Comment``, the alpha-LSB gzip copy, and the
Ed25519 ``signed_hash`` that proves an image came out of NovelAI.

Carriers:

- PNG text chunks ``Title`` ("NovelAI generated image" / "AI generated image"), ``Description`` (prompt),
  ``Software`` ("NovelAI"), ``Source`` (model and hash, "Stable Diffusion 1D44365E"), ``Comment`` (JSON: steps,
  sampler, seed, scale, uc = negative prompt, signed_hash ...);
- WebP EXIF: ``DocumentName``=Title, ``ImageDescription``=Description, ``Software``=Source, ``UserComment``
  (ASCII) = Comment;
- the alpha channel's LSBs (``stealth_pngcomp``, gzip of a JSON object with the same keys), which survives
  stripping of text chunks.

Signature (NovelAI's published scheme, github NovelAI/novelai-image-metadata ``nai_sig.py``): ``signed_hash`` is
a base64 Ed25519 signature over the image's RGB bytes (row-major, alpha dropped) followed by
``json.dumps(comment)`` of the Comment object *without* its ``signed_hash`` key, verified with NovelAI's
public key ``Y2JcQAOhLwzwSDUJPNgL04nS0Tbqm7cSRc4xk0vRMic=``. A verifying signature is definitive evidence that
NovelAI generated these exact pixels; one that fails means the pixels or the metadata were changed (or forged).
Extra keys can be configured (``[provenance] novelai_verify_keys = [...]``) without dropping the default.

Model facts: NovelAI runs only its own models, so ``model_ref`` has the name from ``Source`` and no hash forms
(the 8 hex after it are NovelAI's model id, not the AutoV1 of a file); there are no LoRAs or embeddings.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from .base import ParseInput, load_json, make_facts
from .models import clean_name

TOOL = "NovelAI"
#: NovelAI's published Ed25519 verify key (base64 of the raw 32-byte public key)
NOVELAI_VERIFY_KEY = "Y2JcQAOhLwzwSDUJPNgL04nS0Tbqm7cSRc4xk0vRMic="
_HASH_TAIL = re.compile(r"^(.*?)\s+([0-9A-Fa-f]{8})$")
_MODES = {
    "img2imgrequest": "img2img",
    "nativeinfillingrequest": "inpaint",
    "infill": "inpaint",
    "img2img": "img2img",
    "generateimagerequest": "txt2img",
    "promptgeneraterequest": "txt2img",
}


def verify_keys(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, base64 key) pairs: NovelAI's own key first, then any configured extras."""
    keys = [("novelai", NOVELAI_VERIFY_KEY)]
    for i, key in enumerate(settings.get("novelai_verify_keys") or []):
        if isinstance(key, str) and key and key != NOVELAI_VERIFY_KEY:
            keys.append((f"configured-{i + 1}", key))
    return keys


def _messages(rgb: bytes, comment_text: str, comment: dict[str, Any]) -> list[bytes]:
    """The signed message, rebuilt as nai_sig.py does (and, as a fallback, by cutting the field from the text)."""
    stripped = {k: v for k, v in comment.items() if k != "signed_hash"}
    msgs = [rgb + json.dumps(stripped).encode("utf-8")]
    surgery = re.sub(r',\s*"signed_hash"\s*:\s*"[^"]*"', "", comment_text, count=1)
    surgery = re.sub(r'"signed_hash"\s*:\s*"[^"]*"\s*,\s*', "", surgery, count=1)
    if surgery != comment_text:
        alt = rgb + surgery.encode("utf-8")
        if alt != msgs[0]:
            msgs.append(alt)
    return msgs


def verify_signed_hash(pixels: Any, comment_text: str, comment: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Check ``signed_hash`` against the pixels; returns {"present", "verified", "key"?, "error"?}."""
    signed = comment.get("signed_hash")
    if not isinstance(signed, str):
        return {"present": False}
    result: dict[str, Any] = {"present": True, "verified": False}
    try:
        signature = base64.b64decode(signed, validate=False)
    except ValueError:
        result["error"] = "signed_hash is not base64"
        return result
    if len(signature) != 64:
        result["error"] = f"signed_hash is {len(signature)} bytes, an Ed25519 signature is 64"
        return result
    try:
        import numpy as np

        arr = pixels() if callable(pixels) else pixels
        if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[2] < 3:
            result["error"] = "pixels unavailable or not RGB(A)"
            return result
        rgb = np.ascontiguousarray(arr[:, :, :3]).tobytes()
    except Exception as exc:
        result["error"] = f"cannot decode pixels ({type(exc).__name__})"
        return result
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    for name, key in verify_keys(settings):
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key))
        except ValueError:
            continue
        for msg in _messages(rgb, comment_text, comment):
            try:
                public.verify(signature, msg)
            except InvalidSignature:
                continue
            result.update(verified=True, key=name)
            return result
    return result


def _is_novelai(fields: dict[str, str], comment: Any) -> bool:
    software = fields.get("Software", "")
    source = fields.get("Source", "")
    title = fields.get("Title", "")
    if "novelai" in software.lower() or "novelai" in source.lower():
        return True
    if isinstance(comment, dict) and "signed_hash" in comment:
        return True
    return title in ("NovelAI generated image", "AI generated image") and isinstance(comment, dict) and (
        "uc" in comment or "scale" in comment
    )


def _facts(fields: dict[str, str], carrier: str, inp: ParseInput) -> dict[str, Any] | None:
    comment_text = fields.get("Comment", "")
    comment = load_json(comment_text)
    if isinstance(comment, dict) and isinstance(comment.get("Comment"), str):  # doubly wrapped (alpha copies)
        comment_text = comment["Comment"]
        comment = load_json(comment_text)
    if not _is_novelai(fields, comment):
        return None
    comment = comment if isinstance(comment, dict) else {}
    source = fields.get("Source", "")
    match = _HASH_TAIL.match(source.strip())
    model, model_hash = (match.group(1), match.group(2)) if match else (source or None, None)
    negative = comment.get("uc")
    v4neg = comment.get("v4_negative_prompt")
    if not negative and isinstance(v4neg, dict):
        negative = (v4neg.get("caption") or {}).get("base_caption")
    prompt = comment.get("prompt") or fields.get("Description")
    request = str(comment.get("request_type", "")).lower()
    facts = make_facts(
        TOOL,
        carrier,
        {**fields},
        tool_version=fields.get("Software") if fields.get("Software") != "NovelAI" else None,
        model=model,
        model_hash=model_hash,
        seed=comment.get("seed"),
        steps=comment.get("steps"),
        sampler=comment.get("sampler"),
        cfg=comment.get("scale"),
        size=f"{comment['width']}x{comment['height']}"
        if isinstance(comment.get("width"), int) and isinstance(comment.get("height"), int)
        else None,
        prompt=prompt,
        negative_prompt=negative,
        mode=_MODES.get(request),
        # the Source tail is NovelAI's own model id, not a hash of any file anyone else can hold
        model_ref={"name": clean_name(model), "hashes": {}} if clean_name(model) else None,
    )
    facts["signature"] = verify_signed_hash(inp.pixels, comment_text, comment, inp.settings) if comment else {"present": False}
    return facts


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    found = []
    text = inp.bundle.text
    keys = ("Title", "Description", "Software", "Source", "Comment", "Generation time")
    png_fields = {k: text[k] for k in keys if k in text}
    if png_fields:
        facts = _facts(png_fields, "png:Comment" if "Comment" in png_fields else "png:Software", inp)
        if facts:
            found.append(facts)
    ex = inp.exif_text
    exif_fields = {
        name: ex[tag]
        for name, tag in (
            ("Title", "DocumentName"),
            ("Description", "ImageDescription"),
            ("Source", "Software"),
            ("Comment", "UserComment"),
        )
        if tag in ex
    }
    if "Comment" in exif_fields:
        facts = _facts(exif_fields, "exif:UserComment", inp)
        if facts:
            found.append(facts)
    for stealth in inp.stealth:
        payload = stealth.get("payload")
        data = load_json(payload.decode("utf-8", errors="replace")) if isinstance(payload, bytes) else None
        if isinstance(data, dict):
            fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if k in keys}
            facts = _facts(fields, f"stealth:{stealth['signature']}", inp)
            if facts:
                found.append(facts)
    return found
