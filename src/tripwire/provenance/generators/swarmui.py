"""SwarmUI: ``parameters`` JSON holding ``sui_image_params`` (and ``sui_extra_data``, ``sui_models``).

PNG text chunk ``parameters``, or EXIF ``UserComment`` for JPEG/WebP output. Keys inside ``sui_image_params``:
prompt, negativeprompt, model, seed, steps, cfgscale, width, height, sampler, scheduler, swarm_version;
``initimage``/``initimagecreativity`` mark img2img, ``maskimage``/``maskblur`` inpainting.

Model facts: ``model``, ``vae``, ``loras`` with ``loraweights`` (JSON lists or comma separated strings, in the
same order), ``<lora:name:weight>`` / ``<embed:name>`` in the prompt, and ``sui_models`` =
``[{"name", "param": "model"|"loras"|"vae"|"used_embeddings", "hash": "0x<64 hex>"}]``. Swarm's hash is the
SHA-256 of the tensor data after the safetensors header (``GetOrGenerateTensorHashSha256``, the ModelSpec
``hash_sha256``), the full form of AutoV3, so its first 12 hex are kept as ``autov3``.
"""

from __future__ import annotations

from typing import Any

from .base import ParseInput, load_json, make_facts, size_of
from .models import ModelFacts, as_list

TOOL = "SwarmUI"


def _models(params: dict[str, Any], models: Any) -> dict[str, Any]:
    collected = ModelFacts()
    collected.set_model(params.get("model"))
    vae = params.get("vae")
    collected.set_vae(vae if isinstance(vae, str) else None)
    weights = as_list(params.get("loraweights"))
    for i, name in enumerate(as_list(params.get("loras"))):
        collected.loras.add(name, weights[i] if i < len(weights) else None)
    collected.add_prompt_tags(params.get("prompt"))
    for entry in models[:256] if isinstance(models, list) else []:
        if not isinstance(entry, dict):
            continue
        param, name, digest = str(entry.get("param", "")).lower(), entry.get("name"), entry.get("hash")
        if param == "model":
            collected.set_model(None, digest, scheme="tensor")
        elif param == "vae":
            collected.set_vae(name if collected.vae is None else None, digest, scheme="tensor")
        elif param == "loras":
            collected.loras.add(name, entry.get("weight"))
            collected.loras.hash_for(name, digest, scheme="tensor")
        elif param in ("used_embeddings", "embeddings"):
            collected.embeddings.hash_for(name, digest, scheme="tensor")
    return collected.values()


def _facts(data: dict[str, Any], carrier: str, raw_text: str) -> dict[str, Any] | None:
    params = data.get("sui_image_params")
    if not isinstance(params, dict):
        return None
    mode = "txt2img"
    if any(k in params for k in ("maskimage", "maskblur", "maskshrinkgrow")):
        mode = "inpaint"
    elif any(k in params for k in ("initimage", "initimagecreativity")):
        mode = "img2img"
    models = data.get("sui_models")
    model_hash = None
    if isinstance(models, list):
        for m in models:
            if isinstance(m, dict) and m.get("param") == "model" and m.get("hash"):
                model_hash = str(m["hash"])
    return make_facts(
        TOOL,
        carrier,
        {"parameters": raw_text},
        tool_version=params.get("swarm_version"),
        model=params.get("model"),
        model_hash=model_hash,
        seed=params.get("seed"),
        steps=params.get("steps"),
        sampler=" ".join(str(params[k]) for k in ("sampler", "scheduler") if params.get(k)) or None,
        cfg=params.get("cfgscale"),
        size=size_of(params.get("width"), params.get("height")),
        prompt=params.get("prompt"),
        negative_prompt=params.get("negativeprompt"),
        mode=mode,
        **_models(params, models),
    )


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    found = []
    sources = [(f"png:{k}", v) for k, v in inp.bundle.text.items() if k.split("#")[0] == "parameters"]
    if "UserComment" in inp.exif_text:
        sources.append(("exif:UserComment", inp.exif_text["UserComment"]))
    for carrier, text in sources:
        if "sui_image_params" not in text:
            continue
        data = load_json(text)
        if isinstance(data, dict):
            facts = _facts(data, carrier, text)
            if facts:
                found.append(facts)
    return found
