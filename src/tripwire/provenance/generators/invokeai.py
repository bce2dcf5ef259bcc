"""InvokeAI: v3+ ``invokeai_metadata`` / ``invokeai_graph`` / ``invokeai_workflow``; v2 ``sd-metadata`` / ``Dream``.

- v3+ ``invokeai_metadata`` is a flat JSON object: positive_prompt, negative_prompt, seed, steps, cfg_scale,
  scheduler, width, height, model {model_name|name, base_model|base, hash}, generation_mode
  ("txt2img", "img2img", "inpaint", "outpaint", "sdxl_txt2img" ...), app_version.
- ``invokeai_graph`` (the node graph that ran) and ``invokeai_workflow`` (the editor's workflow) alone still
  identify the tool; a few facts are read from the usual nodes.
- v2 ``sd-metadata``: {"model_weights", "model_hash", "app_id": "invoke-ai/InvokeAI", "app_version", "image":
  {"prompt": [{"prompt", "weight"}] | str, "steps", "cfg_scale", "seed", "width", "height", "sampler", "type"}};
  ``Dream``: ``"prompt [negative]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms`` (command-line style).

Model facts: ``model {name|model_name, hash}`` (v4 hashes are ``blake3:<64 hex>`` by default or
``sha256:<64 hex>``), ``vae`` likewise, ``loras [{"model"|"lora": {name|model_name, hash, key}, "weight"}]``
(v4 / v3) in the metadata, ``lora_loader`` nodes in a graph, and v2.3's ``withLora(name, weight)`` prompt syntax.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .base import ParseInput, load_json, make_facts, size_of
from .models import ModelFacts

TOOL = "InvokeAI"
_WITH_LORA = re.compile(r"withLora\(\s*([^,()]{1,256}?)\s*(?:,\s*([-+]?[\d.]{1,16})\s*)?\)")


def _mode(generation_mode: Any) -> str | None:
    text = str(generation_mode or "").lower()
    if not text:
        return None
    if "inpaint" in text or "outpaint" in text or "canvas" in text:
        return "inpaint"
    if "img2img" in text:
        return "img2img"
    if "txt2img" in text:
        return "txt2img"
    return None


def _model(model: Any) -> tuple[str | None, str | None]:
    if isinstance(model, dict):
        name = model.get("model_name") or model.get("name")
        return (str(name) if name else None), (str(model["hash"]) if model.get("hash") else None)
    if isinstance(model, str):
        return model, None
    return None, None


def _ref(value: Any) -> tuple[Any, Any]:
    """(name, hash) of a v3/v4 model identifier (a dict with name/model_name and hash), without str()."""
    if isinstance(value, dict):
        return value.get("name") or value.get("model_name"), value.get("hash")
    return (value if isinstance(value, str) else None), None


def _v3_models(meta: dict[str, Any], prompt: Any) -> dict[str, Any]:
    collected = ModelFacts()
    collected.set_model(*_ref(meta.get("model")))
    collected.set_vae(*_ref(meta.get("vae")))
    loras = meta.get("loras")
    for item in loras[:256] if isinstance(loras, list) else []:
        if isinstance(item, dict):
            name, digest = _ref(item.get("model") if "model" in item else item.get("lora"))
            collected.loras.add(name, item.get("weight"))
            collected.loras.hash_for(name, digest)
    collected.add_prompt_tags(prompt)
    return collected.values()


def _from_v3(meta: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    model, model_hash = _model(meta.get("model"))
    return make_facts(
        TOOL,
        "png:invokeai_metadata",
        raw,
        tool_version=meta.get("app_version"),
        model=model,
        model_hash=model_hash,
        seed=meta.get("seed"),
        steps=meta.get("steps"),
        sampler=meta.get("scheduler"),
        cfg=meta.get("cfg_scale"),
        size=size_of(meta.get("width"), meta.get("height")),
        prompt=meta.get("positive_prompt"),
        negative_prompt=meta.get("negative_prompt"),
        mode=_mode(meta.get("generation_mode")),
        **_v3_models(meta, meta.get("positive_prompt")),
    )


def _from_graph(graph: dict[str, Any], carrier: str, raw: dict[str, Any]) -> dict[str, Any]:
    nodes = graph.get("nodes")
    if isinstance(nodes, dict):
        nodes = list(nodes.values())
    values: dict[str, Any] = {}
    mode = "txt2img"
    collected = ModelFacts()
    for node in (nodes if isinstance(nodes, list) else [])[:5000]:
        if not isinstance(node, dict):
            continue
        wrapped = node.get("data")
        data = wrapped if isinstance(wrapped, dict) else node  # workflow nodes wrap in "data"
        ntype = str(data.get("type", "")).lower()
        node_inputs = data.get("inputs")
        inputs = node_inputs if isinstance(node_inputs, dict) else data

        def val(key: str) -> Any:
            v = inputs.get(key)
            return v.get("value") if isinstance(v, dict) and "value" in v else v

        if ntype == "noise" or "seed" in ntype:
            values.setdefault("seed", val("seed"))
        elif "denoise_latents" in ntype:
            values.setdefault("steps", val("steps"))
            values.setdefault("cfg", val("cfg_scale"))
            values.setdefault("sampler", val("scheduler"))
            denoise = val("denoising_start")
            if isinstance(denoise, int | float) and denoise > 0:
                mode = "img2img"
        elif "lora" in ntype and "loader" in ntype or ntype == "lora_selector":
            name, digest = _ref(val("lora"))
            collected.loras.add(name, val("weight"))
            collected.loras.hash_for(name, digest)
        elif "vae_loader" in ntype:
            collected.set_vae(*_ref(val("vae_model")))
        elif "model_loader" in ntype:
            name, model_hash = _model(val("model"))
            values.setdefault("model", name)
            values.setdefault("model_hash", model_hash)
            collected.set_model(*_ref(val("model")))
        elif "compel" in ntype or "prompt" in ntype:
            prompt = val("prompt")
            if isinstance(prompt, str):
                values.setdefault("prompt", prompt)
        elif "inpaint" in ntype or "mask" in ntype:
            mode = "inpaint"
    collected.set_model(values.get("model"))
    collected.add_prompt_tags(values.get("prompt"))
    return make_facts(TOOL, carrier, raw, mode=mode, **{k: v for k, v in values.items() if v is not None}, **collected.values())


def _dream(text: str) -> dict[str, Any]:
    """Parse a v2 ``Dream`` command line."""
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    out: dict[str, Any] = {}
    if parts and not parts[0].startswith("-"):
        prompt = parts[0]
        neg = re.findall(r"\[([^\]]*)\]", prompt)
        out["prompt"] = re.sub(r"\s*\[[^\]]*\]", "", prompt).strip()
        out["negative_prompt"] = ", ".join(n.strip() for n in neg) or None
        parts = parts[1:]
    flags = {"-s": "steps", "-S": "seed", "-W": "width", "-H": "height", "-C": "cfg", "-A": "sampler", "-m": "model",
             "-f": "strength", "-I": "init"}
    for i, part in enumerate(parts[:-1]):
        for flag, name in flags.items():
            if part == flag:
                out[name] = parts[i + 1]
            elif part.startswith(flag) and len(part) > len(flag) and flag in ("-s", "-S", "-W", "-H", "-C", "-A"):
                out.setdefault(name, part[len(flag):])
    return out


def _from_v2(meta: Any, dream: str | None, raw: dict[str, Any]) -> dict[str, Any]:
    meta = meta if isinstance(meta, dict) else {}
    image = meta.get("image") if isinstance(meta.get("image"), dict) else {}
    prompt = image.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
    negative = None
    if isinstance(prompt, str) and "[" in prompt:
        negative = ", ".join(n.strip() for n in re.findall(r"\[([^\]]*)\]", prompt)) or None
        prompt = re.sub(r"\s*\[[^\]]*\]", "", prompt).strip()
    d = _dream(dream) if dream else {}
    kind = str(image.get("type", "")).lower() or ("img2img" if d.get("init") else "")
    collected = ModelFacts()
    collected.set_model(meta.get("model_weights") or d.get("model"), meta.get("model_hash"))
    for text in (prompt, d.get("prompt")):
        if isinstance(text, str):
            for match in _WITH_LORA.finditer(text[:32768]):
                collected.loras.add(match.group(1), match.group(2) or 1.0)
    return make_facts(
        TOOL,
        "png:sd-metadata" if meta else "png:Dream",
        raw,
        tool_version=meta.get("app_version"),
        model=meta.get("model_weights") or d.get("model"),
        model_hash=meta.get("model_hash"),
        seed=image.get("seed", d.get("seed")),
        steps=image.get("steps", d.get("steps")),
        sampler=image.get("sampler", d.get("sampler")),
        cfg=image.get("cfg_scale", d.get("cfg")),
        size=size_of(image.get("width", d.get("width")), image.get("height", d.get("height"))),
        prompt=prompt or d.get("prompt"),
        negative_prompt=negative or d.get("negative_prompt"),
        mode=_mode(kind) or ("txt2img" if kind else None),
        **collected.values(),
    )


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    text = inp.bundle.text
    raw: dict[str, Any] = {k: text[k] for k in ("invokeai_metadata", "invokeai_graph", "invokeai_workflow", "sd-metadata", "Dream") if k in text}
    if not raw:
        return []
    meta = load_json(text.get("invokeai_metadata"))
    if isinstance(meta, dict):
        return [_from_v3(meta, raw)]
    for key in ("invokeai_graph", "invokeai_workflow"):
        graph = load_json(text.get(key))
        if isinstance(graph, dict):
            return [_from_graph(graph, f"png:{key}", raw)]
    if "sd-metadata" in text or "Dream" in text:
        sd = load_json(text.get("sd-metadata"))
        if sd is None and "Dream" not in text:
            return []
        return [_from_v2(sd, text.get("Dream"), raw)]
    return []
