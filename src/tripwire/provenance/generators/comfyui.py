"""ComfyUI: the API-format ``prompt`` graph and the UI ``workflow`` graph.

PNG: ``prompt`` and ``workflow`` text chunks (JSON). WebP/JPEG (SaveAnimatedWEBP and friends): EXIF
``Model`` (0x0110) = ``prompt:{...}`` and ``Make`` (0x010F) = ``workflow:{...}``, other tags may carry
further ``key:{json}`` entries.

The ``prompt`` graph maps node ids to ``{"class_type", "inputs"}``; an input that is a ``[node_id, slot]``
pair is a link. The sampler node (KSampler, KSamplerAdvanced, SamplerCustom...) gives seed/steps/cfg/sampler;
its ``model`` link leads to the checkpoint loader, ``positive``/``negative`` to the text encoders, and
``latent_image`` tells txt2img (EmptyLatentImage) from img2img (VAEEncode of a LoadImage) and inpaint.

Model facts: the checkpoint loader's name; ``LoraLoader``/``LoraLoaderModelOnly`` (and other nodes with a
``lora_name`` input) give each LoRA with ``strength_model`` as its weight (``strength`` for some custom
nodes); LoRA stacks (``lora_name_N`` + ``model_weight_N``/``lora_wt_N``/``strength_N``, ``switch_N`` "Off"
skipped) and rgthree's Power Lora Loader (``lora_N: {"on", "lora", "strength"}``); ``VAELoader``'s
``vae_name``; ``embedding:name`` in the prompt texts. Hashes come only from custom nodes that write them as
inputs (``hash``, ``sha256``, ``model_hash``, ``lora_hash``...). Nodes are read in id order; the API graph
holds only nodes that ran (muted and bypassed ones are left out by ComfyUI), the UI graph skips them by mode.
"""

from __future__ import annotations

import re
from typing import Any

from .base import ParseInput, load_json, make_facts
from .models import ModelFacts

TOOL = "ComfyUI"
_MAX_HOPS = 24
_TEXT_KEYS = ("text", "text_g", "text_l", "string", "value", "prompt", "positive", "wildcard_text", "populated_text")
_INPAINT = ("inpaint", "setlatentnoisemask", "vaeencodeforinpaint")
_CKPT_KEYS = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name", "checkpoint")
_HASH_KEYS = ("sha256", "hash", "model_hash", "lora_hash", "ckpt_hash", "lora_sha256", "model_sha256")
_STACK = re.compile(r"^lora_name_(\d{1,3})$")
#: at most this many graph nodes are read for model facts
_MAX_NODES = 5000
#: UI-graph node modes that did not run (2 = muted, 4 = bypassed)
_SKIPPED_MODES = (2, 4)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


def _node(graph: dict[str, Any], link: Any) -> dict[str, Any] | None:
    if not _is_link(link):
        return None
    node = graph.get(str(link[0]))
    return node if isinstance(node, dict) else None


def _inputs(node: dict[str, Any] | None) -> dict[str, Any]:
    value = (node or {}).get("inputs")
    return value if isinstance(value, dict) else {}


def _text(graph: dict[str, Any], link: Any, hops: int = 0) -> str | None:
    """Follow a conditioning link back to the text that produced it (through combine/concat/... nodes)."""
    node = _node(graph, link)
    if node is None or hops > _MAX_HOPS:
        return None
    inputs = _inputs(node)
    texts = []
    for key in _TEXT_KEYS:
        value = inputs.get(key)
        if isinstance(value, str) and value.strip():
            texts.append(value)
        elif _is_link(value):
            t = _text(graph, value, hops + 1)
            if t:
                texts.append(t)
        if texts:
            break
    if texts:
        return texts[0]
    for key, value in inputs.items():  # conditioning passes through other nodes
        if _is_link(value) and ("condition" in key.lower() or key in ("positive", "negative", "conditioning_1", "clip")):
            t = _text(graph, value, hops + 1)
            if t:
                return t
    return None


def _model(graph: dict[str, Any], link: Any, hops: int = 0) -> str | None:
    node = _node(graph, link)
    if node is None or hops > _MAX_HOPS:
        return None
    inputs = _inputs(node)
    for key in _CKPT_KEYS:
        if isinstance(inputs.get(key), str):
            return inputs[key]
    for key in ("model", "unet"):
        if _is_link(inputs.get(key)):
            return _model(graph, inputs[key], hops + 1)
    return None


def _latent(graph: dict[str, Any], link: Any, hops: int = 0) -> tuple[str, str | None]:
    """(mode, size) from the latent's origin."""
    node = _node(graph, link)
    if node is None or hops > _MAX_HOPS:
        return "txt2img", None
    ctype = str(node.get("class_type", "")).lower()
    inputs = _inputs(node)
    if any(tag in ctype for tag in _INPAINT):
        return "inpaint", None
    if "emptylatent" in ctype or "empty" in ctype and "latent" in ctype:
        w, h = inputs.get("width"), inputs.get("height")
        return "txt2img", f"{w}x{h}" if isinstance(w, int) and isinstance(h, int) else None
    if "vaeencode" in ctype:
        return "img2img", None
    for key in ("samples", "latent", "latent_image", "samples_from", "samples_to"):
        if _is_link(inputs.get(key)):
            return _latent(graph, inputs[key], hops + 1)
    return "txt2img", None


def _hash_input(inputs: dict[str, Any]) -> Any:
    for key in _HASH_KEYS:
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _node_order(key: str) -> tuple[int, int, str]:
    return (0, int(key), "") if key.isdigit() and len(key) < 12 else (1, 0, key)


def _number(inputs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = inputs.get(key)
        if isinstance(value, int | float | str) and not _is_link(value):
            return value
    return None


def _node_models(collected: ModelFacts, ctype: str, inputs: dict[str, Any]) -> None:
    """LoRAs and the VAE one API-graph node loads."""
    if "lora_name" in inputs and not _is_link(inputs["lora_name"]):
        collected.loras.add(inputs.get("lora_name"), _number(inputs, "strength_model", "strength", "lora_strength"))
        collected.loras.hash_for(inputs.get("lora_name"), _hash_input(inputs))
    for key, value in list(inputs.items())[:256]:
        stack = _STACK.match(key)
        if stack:
            n = stack.group(1)
            if str(inputs.get(f"switch_{n}", "On")).lower() != "off":
                collected.loras.add(value, _number(inputs, f"model_weight_{n}", f"lora_wt_{n}", f"strength_{n}"))
        elif isinstance(value, dict) and "lora" in value and key.lower().startswith("lora"):
            if value.get("on", True) is not False:
                collected.loras.add(value.get("lora"), _number(value, "strength", "strength_model"))
    if "vaeloader" in ctype and isinstance(inputs.get("vae_name"), str):
        collected.set_vae(inputs["vae_name"], _hash_input(inputs))


def _prompt_models(graph: dict[str, Any], nodes: dict[str, dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    collected = ModelFacts()
    model = values.get("model")
    for key in sorted(nodes, key=_node_order)[:_MAX_NODES]:
        node = nodes[key]
        inputs = _inputs(node)
        ctype = str(node.get("class_type", "")).lower()
        if model is not None and any(inputs.get(k) == model for k in _CKPT_KEYS):
            collected.set_model(model, _hash_input(inputs))
        _node_models(collected, ctype, inputs)
    collected.set_model(model)
    for key in ("prompt", "negative_prompt"):
        collected.add_prompt_tags(values.get(key))
    return collected.values()


def facts_from_prompt(graph: dict[str, Any], carrier: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    nodes = {k: v for k, v in graph.items() if isinstance(v, dict) and "class_type" in v}
    if not nodes:
        return None
    samplers = [
        n
        for n in nodes.values()
        if "sampler" in str(n.get("class_type", "")).lower()
        and "select" not in str(n.get("class_type", "")).lower()
        and any(k in _inputs(n) for k in ("positive", "model", "seed", "noise_seed"))
    ]
    samplers.sort(key=lambda n: 0 if "ksampler" in str(n.get("class_type", "")).lower() else 1)
    values: dict[str, Any] = {}
    mode = "txt2img"
    size = None
    if samplers:
        inputs = _inputs(samplers[0])
        seed = inputs.get("seed", inputs.get("noise_seed"))
        if _is_link(seed):
            seed = _inputs(_node(graph, seed)).get("seed")
        values.update(
            seed=seed,
            steps=inputs.get("steps") if not _is_link(inputs.get("steps")) else None,
            cfg=inputs.get("cfg") if not _is_link(inputs.get("cfg")) else None,
            sampler=" ".join(
                str(inputs[k]) for k in ("sampler_name", "scheduler") if isinstance(inputs.get(k), str)
            )
            or None,
            model=_model(graph, inputs.get("model")),
            prompt=_text(graph, inputs.get("positive")),
            negative_prompt=_text(graph, inputs.get("negative")),
        )
        mode, size = _latent(graph, inputs.get("latent_image"))
        denoise = inputs.get("denoise")
        if mode == "txt2img" and isinstance(denoise, int | float) and denoise < 1 and any(
            "loadimage" in str(n.get("class_type", "")).lower() for n in nodes.values()
        ):
            mode = "img2img"
    if not values.get("model"):
        for n in nodes.values():
            for key in _CKPT_KEYS:
                if isinstance(_inputs(n).get(key), str):
                    values["model"] = _inputs(n)[key]
                    break
            if values.get("model"):
                break
    if any(any(tag in str(n.get("class_type", "")).lower() for tag in _INPAINT) for n in nodes.values()):
        mode = "inpaint"
    return make_facts(TOOL, carrier, raw, size=size, mode=mode, **values, **_prompt_models(graph, nodes, values))


def facts_from_workflow(workflow: dict[str, Any], carrier: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    """UI-format graph only (no API prompt saved): widget values of the usual nodes."""
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        return None
    values: dict[str, Any] = {}
    texts: list[str] = []
    mode = "txt2img"
    collected = ModelFacts()
    for node in nodes[:_MAX_NODES]:
        if not isinstance(node, dict):
            continue
        ntype = str(node.get("type", "")).lower()
        widgets = node.get("widgets_values")
        widgets = widgets if isinstance(widgets, list) else []
        if node.get("mode") not in _SKIPPED_MODES and widgets:
            if "loraloader" in ntype:
                collected.loras.add(widgets[0], widgets[1] if len(widgets) > 1 else None)
            elif "vaeloader" in ntype:
                collected.set_vae(widgets[0])
        if "checkpointloader" in ntype and widgets and isinstance(widgets[-1], str):
            values.setdefault("model", widgets[-1])
        elif ntype.startswith("ksampler") and len(widgets) >= 6:
            values.setdefault("seed", widgets[0])
            values.setdefault("steps", widgets[2])
            values.setdefault("cfg", widgets[3])
            values.setdefault("sampler", f"{widgets[4]} {widgets[5]}")
        elif "cliptextencode" in ntype and widgets and isinstance(widgets[0], str):
            texts.append(widgets[0])
        elif "emptylatentimage" in ntype and len(widgets) >= 2:
            values.setdefault("size", f"{widgets[0]}x{widgets[1]}")
        if any(tag in ntype for tag in _INPAINT):
            mode = "inpaint"
        elif "vaeencode" in ntype and mode == "txt2img":
            mode = "img2img"
    if texts:
        values["prompt"] = texts[0]  # UI graphs do not say which encoder is positive without following links
    collected.set_model(values.get("model"))
    for text in texts[:16]:
        collected.add_prompt_tags(text)
    return make_facts(TOOL, carrier, raw, mode=mode, **values, **collected.values())


def _exif_payloads(inp: ParseInput) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for field, text in inp.exif_text.items():
        head, sep, rest = text.partition(":")
        if sep and head.strip().lower() in ("prompt", "workflow") and rest.lstrip().startswith("{"):
            out.setdefault(head.strip().lower(), (f"exif:{field}", rest))
    return out


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    sources: dict[str, tuple[str, str]] = {}
    # PNG text chunks; in a video, VideoHelperSuite's ``comment`` tag (provenance/video.py)
    carrier = "png" if not inp.bundle.media_type.startswith("video/") else "video comment"
    for key in ("prompt", "workflow"):
        if key in inp.bundle.text:
            sources[key] = (f"{carrier}:{key}", inp.bundle.text[key])
    for key, value in _exif_payloads(inp).items():
        sources.setdefault(key, value)
    prompt = load_json(sources["prompt"][1]) if "prompt" in sources else None
    workflow = load_json(sources["workflow"][1]) if "workflow" in sources else None
    raw = {k: v[1] for k, v in sources.items()}
    if isinstance(prompt, dict):
        facts = facts_from_prompt(prompt, sources["prompt"][0], raw)
        if facts:
            if isinstance(workflow, dict) and isinstance(workflow.get("version"), int | float | str):
                facts["tool_version"] = f"workflow {workflow.get('version')}"
            return [facts]
    if isinstance(workflow, dict):
        facts = facts_from_workflow(workflow, sources["workflow"][0], raw)
        if facts:
            return [facts]
    return []
