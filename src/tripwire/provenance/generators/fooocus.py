"""Fooocus (and forks: FooocusPlus, SimpleSDXL, RuinedFooocus...): ``parameters`` JSON + ``fooocus_scheme``.

PNG: ``parameters`` is JSON (scheme ``fooocus``) or an A1111 infotext (scheme ``a1111``), with
``fooocus_scheme`` naming which. JPEG/WebP: EXIF ``UserComment`` = the same parameters (plain UTF-8),
``Software`` = "Fooocus v2.x", ``MakerNote`` = the scheme name. JSON keys: prompt, negative_prompt,
full_prompt, base_model, base_model_hash, seed (a string), steps, guidance_scale, sampler, scheduler,
resolution "(w, h)", version "Fooocus v2.4.3", performance, styles; input-image tasks add keys such as
``inpaint_method`` / ``uov_method``.

Model facts: ``base_model`` + ``base_model_hash`` (Fooocus hashes are the first 10 hex of the file's SHA-256:
AutoV2), ``vae`` (unless "Default (model)"), ``loras`` = ``[[name, weight, hash], ...]`` (v2.4+) or
``[[name, weight]]``, and older ``lora_combined_N`` = ``"name : weight"`` / ``"True : name : weight"``. The A1111
scheme is read by a1111.py (``Lora hashes`` and ``Lora weights``).
"""

from __future__ import annotations

import re
from typing import Any

from .a1111 import facts_from_infotext
from .base import ParseInput, load_json, make_facts
from .models import ModelFacts

TOOL = "Fooocus"
_RES = re.compile(r"\(?\s*(\d+)\s*[,x]\s*(\d+)\s*\)?")


def _is_fooocus_json(data: dict[str, Any]) -> bool:
    version = str(data.get("version", ""))
    return (
        "fooocus" in version.lower()
        or data.get("metadata_scheme") == "fooocus"
        or ("full_prompt" in data and "base_model" in data)
    )


def _models(data: dict[str, Any]) -> dict[str, Any]:
    collected = ModelFacts()
    collected.set_model(data.get("base_model"), data.get("base_model_hash"))
    vae = data.get("vae")
    collected.set_vae(vae if isinstance(vae, str) else None)
    loras = data.get("loras")
    for item in loras[:256] if isinstance(loras, list) else []:
        if isinstance(item, list | tuple) and item:
            collected.loras.add(item[0], item[1] if len(item) > 1 else None)
            if len(item) > 2:
                collected.loras.hash_for(item[0], item[2])
    for key, value in list(data.items())[:512]:
        if isinstance(key, str) and key.startswith("lora_combined_") and isinstance(value, str):
            parts = [p.strip() for p in value.split(" : ")]
            if len(parts) == 3 and parts[0].lower() == "false":
                continue
            if len(parts) >= 2:
                collected.loras.add(parts[-2], parts[-1])
    collected.add_prompt_tags(data.get("prompt"))
    return collected.values()


def _from_json(data: dict[str, Any], carrier: str, raw: dict[str, Any], software: str | None) -> dict[str, Any]:
    version = str(data.get("version") or software or "")
    res = _RES.match(str(data.get("resolution", "")))
    mode = "txt2img"
    if any(k in data for k in ("inpaint_method", "inpaint_engine_version", "inpaint_additional_prompt")):
        mode = "inpaint"
    elif any(k in data for k in ("uov_method", "image_prompt", "input_image")):
        mode = "img2img"
    return make_facts(
        TOOL,
        carrier,
        raw,
        tool_version=version.split(" ", 1)[-1] if version.lower().startswith("fooocus") else version or None,
        model=data.get("base_model"),
        model_hash=data.get("base_model_hash"),
        seed=data.get("seed"),
        steps=data.get("steps"),
        sampler=" ".join(str(data[k]) for k in ("sampler", "scheduler") if data.get(k)) or None,
        cfg=data.get("guidance_scale"),
        size=f"{res.group(1)}x{res.group(2)}" if res else None,
        prompt=data.get("prompt"),
        negative_prompt=data.get("negative_prompt"),
        mode=mode,
        **_models(data),
    )


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    found = []
    text = inp.bundle.text
    scheme = (text.get("fooocus_scheme") or "").strip().lower()
    software = inp.exif_text.get("Software", "")
    exif_scheme = inp.exif_text.get("MakerNote", "").lower()
    candidates: list[tuple[str, str, str, dict[str, Any]]] = []
    if "parameters" in text:
        candidates.append(("png:parameters", text["parameters"], scheme, {"parameters": text["parameters"], "fooocus_scheme": text.get("fooocus_scheme")}))
    if "UserComment" in inp.exif_text and ("fooocus" in software.lower() or exif_scheme in ("fooocus", "a1111")):
        candidates.append(("exif:UserComment", inp.exif_text["UserComment"], exif_scheme, {"UserComment": inp.exif_text["UserComment"], "Software": software, "MakerNote": exif_scheme}))
    for carrier, payload, sch, raw in candidates:
        data = load_json(payload)
        if isinstance(data, dict):
            if "sui_image_params" in data:
                continue
            if sch == "fooocus" or _is_fooocus_json(data) or "fooocus" in software.lower():
                found.append(_from_json(data, carrier, raw, software or None))
            continue
        if sch == "a1111" or "Version: Fooocus" in payload or "fooocus" in software.lower():
            facts = facts_from_infotext(payload, carrier, tool_override=TOOL)
            if facts is not None:
                if facts.get("tool_version") is None and software:
                    facts["tool_version"] = software
                facts["raw"].update({k: str(v) for k, v in raw.items() if v and k != "parameters"})
                found.append(facts)
    return found
